"""Try-it that explains itself, item titles, and a version's page with its files.

Try-it posts its history (a pasted history of thousands of items is an answer, not "URI Too Long"),
says how much of it the model reads and what a score is, and shows item titles once the dataset has
them. Titles are a small CSV/TSV a user uploads; a bad one is refused in a short sentence. A version
page is its model card; its files download for whoever may act on the version, are refused (403) to
one who may only read it and do not exist (404) for anyone else, and only the files of its own
artifact folder can be named.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.webapp.conftest import client_for
from tests.webapp.dashboard.test_views import HELD
from webapp.core.exceptions import NotFoundError
from webapp.datasets.item_titles import TITLE_MAX_CHARS
from webapp.registry.models import ModelVersion
from webapp.registry.selectors import model_version_file

pytestmark = pytest.mark.django_db

# Every item of the synthetic log (i0 … i29) with a title, plus ids the log does not have.
TITLES_CSV = (
    "item,title\n" + "".join(f"i{n},Film number {n}\n" for n in range(30)) + "x1,Elsewhere\nx2,Gone\n"
)


@pytest.fixture
def view_only(db):
    """A staff account that may read every version (and dataset) but act on none."""
    from django.contrib.auth import get_user_model

    account = get_user_model().objects.create_user("vera", password="vera-password", is_staff=True)
    account.user_permissions.set(
        Permission.objects.filter(codename__in=("view_dataset", "view_modelversion", "view_trainingjob"))
    )
    return account


def _file(data: bytes | str, name: str) -> io.BytesIO:
    body = io.BytesIO(data.encode() if isinstance(data, str) else data)
    body.name = name
    return body


def _upload_titles(api, dataset, data: bytes | str, name: str = "titles.csv"):
    return api.post(f"/api/v1/datasets/{dataset.pk}/items", {"file": _file(data, name)}, format="multipart")


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# -- try-it -------------------------------------------------------------------------------------


def test_try_it_posts_a_long_history_and_says_what_the_model_read(browser, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    page = browser.get(f"/try/?dataset={ready_dataset.pk}").content.decode()
    form = re.search(r'<form id="try-form".*?</form>', page, re.S).group(0)
    assert 'method="post"' in form and "csrfmiddlewaretoken" in form
    assert "reads the last <strong>10</strong> items" in page  # the tiny model's max_len
    history = " ".join(f"i{n % 30}" for n in range(2_000))
    response = browser.post(
        f"/try/?dataset={ready_dataset.pk}",
        {"dataset": ready_dataset.pk, "history": history, "k": 5, "exclude_seen": ""},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="rec-row"') == 5
    note = _text(re.search(r'id="truncated-note".*?</p>', html, re.S).group(0))
    assert "read the last 10 known items" in note and "1990 older ones" in note
    assert "logit" in _text(re.search(r'id="score-note".*?</p>', html, re.S).group(0))
    assert "not probabilities" in html


def test_try_it_needs_the_csrf_token(user, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/try/", {"dataset": ready_dataset.pk, "history": "i1 i2", "k": 3})
    assert response.status_code == 403


def test_try_it_errors_stand_beside_their_field_and_keep_the_input(browser, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    html = browser.post(
        "/try/", {"dataset": ready_dataset.pk, "history": "i3 i4 i5", "k": 0}
    ).content.decode()
    assert "at least 1" in re.search(r'id="k-errors".*?</ul>', html, re.S).group(0)
    assert re.search(r"<textarea[^>]*>\s*i3 i4 i5</textarea>", html) and 'id="recommendations"' not in html
    every = " ".join(f"i{n}" for n in range(30))  # leaving out the history leaves nothing
    html = browser.post(
        "/try/", {"dataset": ready_dataset.pk, "history": every, "k": 3, "exclude_seen": "on"}
    ).content.decode()
    assert 'id="nothing-left"' in html and 'class="rec-row"' not in html
    too_many = " ".join(f"i{n % 30}" for n in range(10_001))
    html = browser.post("/try/", {"dataset": ready_dataset.pk, "history": too_many, "k": 3}).content.decode()
    assert "at most 10,000 item ids" in re.search(r'id="history-errors".*?</ul>', html, re.S).group(0)


def test_try_it_shows_titles_after_an_item_titles_upload(browser, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    page = browser.get(f"/try/?dataset={ready_dataset.pk}").content.decode()
    assert 'id="no-titles"' in page and "Film number" not in page
    response = browser.post(
        f"/datasets/{ready_dataset.pk}/items",
        {"file": _file(TITLES_CSV, "films.csv"), "next": f"/datasets/{ready_dataset.pk}/"},
        follow=True,
    )
    assert any("titles for 30 of 30 items from films.csv" in m and "2 ids not in this dataset" in m
               for m in _messages(response))  # fmt: skip
    assert 'id="item-titles-summary"' in response.content.decode()
    page = browser.get(f"/try/?dataset={ready_dataset.pk}").content.decode()
    first = ready_dataset.preview["events"][0]["item"]
    assert f"Film number {first[1:]}" in re.search(r'class="muted small example-titles">[^<]*', page).group(0)
    html = browser.post("/try/", {"dataset": ready_dataset.pk, "history": "i3 i4", "k": 4}).content.decode()
    rows = re.findall(r'<tr class="rec-row" data-item="i(\d+)">.*?<td class="rec-title">([^<]*)</td>', html)
    assert len(rows) == 4 and all(title == f"Film number {n}" for n, title in rows)


def test_an_increment_shows_its_parents_titles(browser, api, ready_dataset, upload, make_version):
    from webapp.datasets.selectors import dataset_item_titles
    from webapp.datasets.services import dataset_create, dataset_parse

    assert _upload_titles(api, ready_dataset, TITLES_CSV).status_code == 200
    grown = dataset_create(owner=ready_dataset.owner, upload=upload(), parent=ready_dataset)
    grown = dataset_parse(dataset_id=grown.pk)
    assert dataset_item_titles(grown)["i7"] == "Film number 7"
    assert "Uses the titles of" in browser.get(f"/datasets/{grown.pk}/").content.decode()


# -- item titles ---------------------------------------------------------------------------------


def test_a_titles_upload_counts_what_it_leaves_out(api, ready_dataset):
    long = "y" * 300
    data = f"i1,One\ni2,{long}\ni1,One again\ni3,\nzz,Not here\n"  # no header
    response = _upload_titles(api, ready_dataset, data)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert {k: body[k] for k in ("titles", "rows", "unknown", "cut", "duplicates", "empty")} == {
        "titles": 2, "rows": 5, "unknown": 1, "cut": 1, "duplicates": 1, "empty": 1,
    }  # fmt: skip
    ready_dataset.refresh_from_db()
    assert ready_dataset.item_titles["titles"] == 2
    from webapp.datasets.selectors import dataset_item_titles

    titles = dataset_item_titles(ready_dataset)
    assert titles["i1"] == "One" and len(titles["i2"]) == TITLE_MAX_CHARS
    shown = api.get(f"/api/v1/datasets/{ready_dataset.pk}").json()["item_titles"]
    assert shown["source"] == "titles.csv" and shown["titles"] == 2 and "file" not in shown  # no storage path


def test_a_recbole_item_file_is_read_by_its_header(api, ready_dataset):
    header = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    rows = "".join(f"i{n}\tFilm {n}, The\t1995\tDrama Comedy\n" for n in range(29))
    rows += 'i29\t"Quoted" and not\t1996\tDrama\n'  # unquoted TSV: its quotes belong to the title
    response = _upload_titles(api, ready_dataset, header + rows, "ml.item")
    assert response.status_code == 200 and response.json()["titles"] == 30
    from webapp.datasets.selectors import dataset_item_titles

    ready_dataset.refresh_from_db()
    titles = dataset_item_titles(ready_dataset)
    assert titles["i4"] == "Film 4, The" and titles["i29"] == '"Quoted" and not'


@pytest.mark.parametrize(
    ("data", "name", "says"),
    [
        (b"", "empty.csv", "empty"),
        (b" \n\n", "blank.csv", "blank.csv is empty"),
        (b"\x00\x01\x02binary\x00", "blob.csv", "binary data"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "page.csv", "looks like an HTML page"),
        (b"i1\ni2\n", "ids.csv", "line 1: one column; expected two, item id and title"),
        (b"i1,Cat, The\n", "commas.csv", "line 1: 3 columns; expected two, item id and title"),
        (
            b"nope,Film\nnada,Other\n",
            "wrong.csv",
            "none of the 2 ids in wrong.csv is an item of this dataset",
        ),
        (b'i1,"Open quote\ni2,Two\n', "quote.csv", "quote.csv, line 2: unexpected end of data"),
        (b"item,title\n", "header.csv", "no rows of item id and title"),
    ],
)
def test_bad_titles_files_get_a_short_message(api, ready_dataset, data, name, says):
    response = _upload_titles(api, ready_dataset, data, name)
    assert response.status_code == 400, response.json()
    message = response.json()["message"]
    assert says in message and len(message) <= 300 and "/" not in message.replace(" / ", "")
    ready_dataset.refresh_from_db()
    assert ready_dataset.item_titles is None  # nothing stored


def test_titles_are_for_those_who_may_change_the_dataset(client, ready_dataset, other_user, view_only):
    assert _upload_titles(client_for(other_user), ready_dataset, TITLES_CSV).status_code == 404
    refused = _upload_titles(client_for(view_only), ready_dataset, TITLES_CSV)
    assert refused.status_code == 403 and "datasets.change_dataset" in refused.json()["message"]
    client.force_login(view_only)
    html = client.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    assert 'id="item-titles"' in html and 'id="item-titles-form"' not in html


def test_a_bad_titles_file_on_the_dataset_page_says_why(browser, ready_dataset):
    response = browser.post(
        f"/datasets/{ready_dataset.pk}/items", {"file": _file("i1\n", "one.csv")}, follow=True
    )
    assert any("one column" in m for m in _messages(response))
    response = browser.post(f"/datasets/{ready_dataset.pk}/items", {}, follow=True)
    assert "choose a file of item titles" in _messages(response)


# -- the version page ----------------------------------------------------------------------------

METRICS = {"hr@5": 0.2, "ndcg@5": 0.15, "mrr@5": 0.13, "hr@10": 0.3, "ndcg@10": 0.1834, "mrr@10": 0.14}


@pytest.fixture
def held_version(ready_dataset, make_version):
    version = make_version(ready_dataset)
    metrics = {
        "valid": {**METRICS, "ndcg@10": 0.0132},
        "test": METRICS,
        "popularity": {"valid": {**METRICS, "ndcg@10": 0.0171}, "test": {**METRICS, "ndcg@10": 0.0222}},
    }
    ModelVersion.objects.filter(pk=version.pk).update(metrics=metrics, promotion=HELD, training_time_s=42.0)
    version.refresh_from_db()
    return version


def test_the_version_page_is_a_model_card(browser, held_version):
    html = browser.get(f"/versions/{held_version.pk}/").content.decode()
    text = _text(html)
    assert held_version.label in text and 'data-serving="false"' in html and "42 s" in text
    metrics = _text(re.search(r'id="version-metrics".*?</table>', html, re.S).group(0))
    assert "test" in metrics and "0.1834" in metrics and "test, most popular items" in metrics
    assert "0.0222" in metrics
    gate = _text(re.search(r'id="version-promotion".*?</div>', html, re.S).group(0))
    assert "held" in gate and "does not beat popularity" in gate and "0.0171" in gate
    assert "It does not serve now" in gate
    assert "embedding_dim" in html and "batch_size" in html  # configuration from metadata.json
    files = re.findall(r'<tr class="version-file" data-file="([^"]+)"', html)
    assert files == ["model.onnx", "metadata.json"]
    assert f'href="/versions/{held_version.pk}/files/model.onnx"' in html


def test_versions_and_job_results_link_to_the_version_page(
    browser, ready_dataset, make_version, tiny_config, django_capture_on_commit_callbacks
):
    from webapp.training.services import training_job_create

    version = make_version(ready_dataset, active=True)
    assert f'href="/versions/{version.pk}/"' in browser.get("/versions/").content.decode()
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    ModelVersion.objects.filter(pk=version.pk).update(job=job)
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    result = re.search(r'id="job-result".*?</section>', html, re.S).group(0)
    assert f'href="/versions/{version.pk}/"' in result
    card = browser.get(f"/versions/{version.pk}/").content.decode()
    assert f'id="version-job" href="/jobs/{job.pk}/"' in card


def test_the_owner_downloads_the_files(browser, api, held_version):
    for name in ("model.onnx", "metadata.json"):
        expected = (held_version.artifact_path / name).read_bytes()
        response = browser.get(f"/versions/{held_version.pk}/files/{name}")
        assert response.status_code == 200 and b"".join(response.streaming_content) == expected
        assert f'filename="{name}"' in response["Content-Disposition"]
        response = api.get(f"/api/v1/versions/{held_version.pk}/files/{name}")
        assert response.status_code == 200 and b"".join(response.streaming_content) == expected


def test_a_viewer_sees_the_card_but_no_downloads(client, held_version, view_only):
    client.force_login(view_only)
    html = client.get(f"/versions/{held_version.pk}/").content.decode()
    assert held_version.label in html and 'class="download"' not in html and 'id="files-no-download"' in html
    assert client.get(f"/versions/{held_version.pk}/files/model.onnx").status_code == 403
    refused = client_for(view_only).get(f"/api/v1/versions/{held_version.pk}/files/model.onnx")
    assert refused.status_code == 403 and "registry.change_modelversion" in refused.json()["message"]


def test_another_user_finds_no_version(client, held_version, other_user):
    client.force_login(other_user)
    assert client.get(f"/versions/{held_version.pk}/").status_code == 404
    assert client.get(f"/versions/{held_version.pk}/files/model.onnx").status_code == 404
    assert (
        client_for(other_user).get(f"/api/v1/versions/{held_version.pk}/files/model.onnx").status_code == 404
    )


def test_only_the_artifact_folders_own_files_can_be_named(browser, api, user, held_version, media_root):
    folder = held_version.artifact_path
    secret = Path(media_root).parent / "settings.py"
    secret.write_text("SECRET_KEY = 'x'\n")
    os.symlink(secret, folder / "linked.py")  # a link inside the folder to a file outside it
    (folder / ".metadata.json.tmp-1").write_text("{}")  # an export's temporary
    (folder / "vocabulary.json").write_text("[]")  # a sidecar is listed and downloads
    for name in (
        "../../settings.py",
        "..%2F..%2Fsettings.py",
        "..",
        ".",
        "linked.py",
        ".metadata.json.tmp-1",
    ):
        for url in (
            f"/versions/{held_version.pk}/files/{name}",
            f"/api/v1/versions/{held_version.pk}/files/{name}",
        ):
            client = browser if url.startswith("/versions") else api
            response = client.get(url)
            assert response.status_code == 404, url
            assert b"SECRET_KEY" not in b"".join(getattr(response, "streaming_content", [response.content]))
    with pytest.raises(NotFoundError):
        model_version_file(user=user, version_id=held_version.pk, name="../../settings.py")
    assert browser.get(f"/versions/{held_version.pk}/files/vocabulary.json").status_code == 200
    html = browser.get(f"/versions/{held_version.pk}/").content.decode()
    assert re.findall(r'data-file="([^"]+)"', html) == ["model.onnx", "metadata.json", "vocabulary.json"]


def test_a_version_whose_folder_points_outside_the_media_root_has_no_files(browser, held_version):
    ModelVersion.objects.filter(pk=held_version.pk).update(artifact_dir="../../")
    assert browser.get(f"/versions/{held_version.pk}/files/model.onnx").status_code == 404
    assert (
        "the artifact folder of this version is missing"
        in browser.get(f"/versions/{held_version.pk}/").content.decode()
    )
