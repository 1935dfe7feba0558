"""Dashboard pages: the same services as the API, behind a session login; errors shown in words.

Every page needs a login, another user's object is a 404 page, pages show their data, actions come
back with the service's message, and the DOM ids the browser test and the page scripts rely on are
there. The scripts themselves run in the browser test.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.conftest import synthetic_log
from webapp.datasets.models import Dataset
from webapp.registry.models import ModelVersion
from webapp.training.configs import job_config_build
from webapp.training.models import TrainingJob, TrainingPoint

PAGES = ["/", "/datasets/", "/jobs/", "/compare/", "/versions/", "/try/"]


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _point(kind: str, stage: int, blocks: int, t: float, **fields) -> dict:
    return {"kind": kind, "stage": stage, "blocks": blocks, "step": int(t), "epoch": 1, "wall_s": t, **fields}


def _valid(stage: int, blocks: int, t: float, mrr: float) -> dict:
    return _point("valid", stage, blocks, t, metrics={"mrr@5": mrr, "ndcg@10": mrr + 0.05, "hr@10": 0.5})


STACKED_POINTS = [
    _point("loss", 1, 2, 5.0, loss=6.0),
    _point("loss", 1, 2, 10.0, loss=5.5),
    _valid(1, 2, 10.0, 0.10),
    _point("stage", 1, 2, 20.0, metrics={}),
    _point("loss", 2, 4, 25.0, loss=5.0),
    _valid(2, 4, 30.0, 0.20),
    _point("stage", 2, 4, 35.0, metrics={}),
    _valid(3, 8, 40.0, 0.299),  # within 1 % of scratch's best (0.30): reached at 40 s
    _valid(3, 8, 60.0, 0.32),
    _point("stage", 3, 8, 70.0, metrics={}),
]
SCRATCH_POINTS = [
    _point("loss", 1, 8, 20.0, loss=6.0),
    _valid(1, 8, 50.0, 0.20),
    _valid(1, 8, 100.0, 0.30),  # scratch's best, at 100 s
    _valid(1, 8, 120.0, 0.29),
    _point("stage", 1, 8, 130.0, metrics={}),
]
TEST_METRICS = {"hr@5": 0.2, "ndcg@5": 0.15, "mrr@5": 0.13, "hr@10": 0.3, "ndcg@10": 0.18, "mrr@10": 0.14}


@pytest.fixture
def make_job():
    """A training job row as a run leaves it, with its curve points (no training happens)."""

    def make(
        dataset: Dataset,
        *,
        method: str = "adjacent",
        status: str = TrainingJob.Status.SUCCEEDED,
        points: list[dict] = (),
        **fields,
    ) -> TrainingJob:
        schedule = (
            {"final_blocks": 8, "method": "none"}
            if method == "none"
            else {"start_blocks": 2, "final_blocks": 8, "method": method}
        )
        config = job_config_build({"model": "nextitnet", "schedule": schedule}).to_dict()
        job = TrainingJob.objects.create(
            owner=dataset.owner, dataset=dataset, config=config, status=status, **fields
        )
        TrainingPoint.objects.bulk_create([TrainingPoint(job=job, **p) for p in points])
        return job

    return make


@pytest.fixture
def stacked_and_scratch(ready_dataset, make_job):
    stages = [
        {
            "stage": i,
            "blocks": blocks,
            "steps": 100,
            "start_s": start,
            "wall_s": wall,
            "train_s": wall - 1,
            "stopped_by": "plateau" if i < 2 else "patience",
            "best": {"mrr@5": best, "ndcg@10": best + 0.05, "hr@10": 0.5},
            "validations": 2,
            "checkpoint": None,
            "note": "",
        }
        for i, (blocks, start, wall, best) in enumerate(
            [(2, 0, 20, 0.1), (4, 20, 15, 0.2), (8, 35, 35, 0.32)]
        )
    ]
    stacked = make_job(
        ready_dataset,
        points=STACKED_POINTS,
        stages=stages,
        metrics={"valid": TEST_METRICS, "test": TEST_METRICS},
        progress={"stage": 3, "stages": 3, "blocks": 8, "step": 100, "planned_steps": 100, "elapsed_s": 70},
    )
    scratch = make_job(ready_dataset, method="none", points=SCRATCH_POINTS, metrics={"test": TEST_METRICS})
    return stacked, scratch


# -- access -------------------------------------------------------------------------------------


def test_every_page_needs_a_login(client, ready_dataset, make_job):
    job = make_job(ready_dataset)
    for url in [
        *PAGES,
        f"/datasets/{ready_dataset.pk}/",
        f"/jobs/{job.pk}/",
        f"/jobs/{job.pk}/summary",
        "/jobs/table",
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


def test_other_users_objects_are_404_pages(client, other_user, ready_dataset, make_job, make_version):
    job = make_job(ready_dataset)
    second = make_job(ready_dataset, method="none")
    make_version(ready_dataset, active=True)
    client.login(username="bob", password="bob-password")
    for url in [
        f"/datasets/{ready_dataset.pk}/",
        f"/jobs/{job.pk}/",
        f"/jobs/{job.pk}/summary",
        f"/jobs/table?dataset={ready_dataset.pk}",
        f"/compare/?a={job.pk}&b={second.pk}",
        f"/try/?dataset={ready_dataset.pk}",
        "/datasets/999999/",
    ]:
        assert client.get(url).status_code == 404, url
    for url in PAGES:  # bob's own pages work and show none of alice's things
        response = client.get(url)
        assert response.status_code == 200 and b"clicks.csv" not in response.content, url
        assert f"dataset-{ready_dataset.pk}-v1".encode() not in response.content, url


def test_other_users_objects_cannot_be_changed(client, other_user, ready_dataset, make_version, make_job):
    version = make_version(ready_dataset)
    job = make_job(ready_dataset, status=TrainingJob.Status.RUNNING)
    client.login(username="bob", password="bob-password")
    for url in [
        f"/datasets/{ready_dataset.pk}/parse",
        f"/datasets/{ready_dataset.pk}/retrain",
        f"/datasets/{ready_dataset.pk}/rollback",
        f"/versions/{version.pk}/activate",
        f"/versions/{version.pk}/retrain",
        f"/jobs/{job.pk}/cancel",
    ]:
        response = client.post(url, follow=True)
        assert any("not found" in m for m in _messages(response)), url
    version.refresh_from_db()
    job.refresh_from_db()
    assert not version.is_active and job.status == TrainingJob.Status.RUNNING


def test_staff_with_view_permissions_see_every_users_pages(client, staff_user, ready_dataset, make_job):
    from django.contrib.auth.models import Permission

    job = make_job(ready_dataset)
    staff_user.user_permissions.set(
        Permission.objects.filter(codename__in=("view_dataset", "view_trainingjob", "view_modelversion"))
    )
    client.login(username="carol", password="carol-password")
    assert client.get(f"/datasets/{ready_dataset.pk}/").status_code == 200
    assert client.get(f"/jobs/{job.pk}/").status_code == 200
    assert b'href="/admin/"' in client.get("/").content


def test_pages_load_scripts_and_styles_from_this_server_only(browser, stacked_and_scratch, ready_dataset):
    stacked, scratch = stacked_and_scratch
    for url in [
        *PAGES,
        f"/datasets/{ready_dataset.pk}/",
        f"/jobs/{stacked.pk}/",
        f"/compare/?a={stacked.pk}&b={scratch.pk}",
    ]:
        html = browser.get(url).content.decode()
        assert re.search(r'<main data-page="[a-z]+"', html), url
        assets = re.findall(r'<(?:script|link)[^>]* (?:src|href)="([^"]+)"', html)
        assert assets, url
        for asset in assets:
            assert asset.startswith("/static/dashboard/"), (url, asset)
            assert finders.find(asset.removeprefix("/static/")), asset
    job_page = browser.get(f"/jobs/{stacked.pk}/").content.decode()
    assert "vendor/chart.umd.min.js" in job_page and "vendor/htmx.min.js" in job_page


# -- datasets -----------------------------------------------------------------------------------


def test_upload_train_cancel_activate_from_the_pages(
    browser, tiny_config, make_version, django_capture_on_commit_callbacks
):
    assert b'id="upload-form"' in browser.get("/datasets/").content
    with django_capture_on_commit_callbacks() as callbacks:
        response = browser.post(
            "/datasets/upload",
            {"file": SimpleUploadedFile("log.csv", synthetic_log().encode()), "name": "from the page"},
            follow=True,
        )
    assert "uploaded; parsing has started" in _messages(response) and len(callbacks) == 1
    dataset = Dataset.objects.get(name="from the page")
    assert response.redirect_chain[-1][0] == f"/datasets/{dataset.pk}/"
    assert b"this page updates when the log is parsed" in response.content
    from webapp.datasets.services import dataset_parse

    dataset_parse(dataset_id=dataset.pk)
    page = browser.get("/datasets/")
    assert b"from the page" in page.content and b"ready" in page.content

    with django_capture_on_commit_callbacks():
        response = browser.post(
            "/jobs/create",
            {"dataset": dataset.pk, "preset": "custom", "config": json.dumps(tiny_config)},
            follow=True,
        )
    assert "training job queued" in _messages(response)
    job = TrainingJob.objects.get()
    assert response.redirect_chain[-1][0] == f"/jobs/{job.pk}/"
    assert job.config["schedule"]["final_blocks"] == tiny_config["schedule"]["final_blocks"]
    response = browser.post(f"/jobs/{job.pk}/cancel", {"next": f"/jobs/{job.pk}/"}, follow=True)
    assert "cancel requested" in _messages(response)
    job.refresh_from_db()
    assert job.status == "CANCELLED"

    version = make_version(dataset)
    response = browser.post(f"/versions/{version.pk}/activate", follow=True)
    assert "version activated" in _messages(response)
    assert b'<span class="badge status-active">active</span>' in response.content


def test_the_dataset_page_shows_stats_preview_and_forms(browser, ready_dataset, make_version, make_job):
    version = make_version(ready_dataset, active=True)
    ModelVersion.objects.filter(pk=version.pk).update(checkpoint_file="checkpoints/final.pt")  # to retrain
    make_job(ready_dataset)
    response = browser.get(f"/datasets/{ready_dataset.pk}/")
    html = response.content.decode()
    stats = ready_dataset.stats
    assert f"<dd>{stats['n_sequences']}</dd>" in html and f"<dd>{stats['n_events']}</dd>" in html
    assert (
        json.loads(re.search(r'id="histogram-data"[^>]*>(.*?)</script>', html).group(1))
        == (stats["length_histogram"])
    )
    assert "2020-09-13" in html  # the log's time range, as dates (its timestamps start at 1.6e9 s)
    first = ready_dataset.preview["events"][0]
    assert f"<td>{first['user']}</td><td>{first['item']}</td>" in html
    assert 'id="train-form"' in html and 'name="preset"' in html and 'id="retrain-form"' in html
    assert '<option value="scratch">from scratch, 8 blocks</option>' in html
    assert 'id="append-form"' in html and f'name="parent" value="{ready_dataset.pk}"' in html
    assert f"dataset-{ready_dataset.pk}-v1" in html and 'id="jobs-table"' in html
    assert f"/try/?dataset={ready_dataset.pk}" in html


def test_a_failed_dataset_shows_its_error_and_the_reparse_form(
    browser, user, upload, django_capture_on_commit_callbacks
):
    from webapp.datasets.services import dataset_create, dataset_parse

    with django_capture_on_commit_callbacks():
        dataset = dataset_create(owner=user, upload=upload("user,item\nu1,i1\nu2,i2\n"))
    dataset = dataset_parse(dataset_id=dataset.pk)
    assert dataset.status == Dataset.Status.FAILED
    html = browser.get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'id="dataset-error"' in html and "Parsing failed" in html and "too few events" in html.lower()
    assert "u1,i1" in html  # the first lines of the file, to fix the mapping by
    assert f'action="/datasets/{dataset.pk}/parse"' in html
    with django_capture_on_commit_callbacks():
        response = browser.post(
            f"/datasets/{dataset.pk}/parse",
            {"read_options": '{"user_col": 0}', "next": f"/datasets/{dataset.pk}/"},
            follow=True,
        )
    assert "parsing again" in _messages(response)
    assert response.redirect_chain[-1][0] == f"/datasets/{dataset.pk}/"


def test_increments_are_listed_under_their_parent(
    browser, user, ready_dataset, upload, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        response = browser.post(
            "/datasets/upload",
            {
                "file": upload(synthetic_log(users=5, start_user=100)),
                "parent": ready_dataset.pk,
                "name": "more",
            },
            follow=True,
        )
    assert "uploaded; parsing has started" in _messages(response)
    increment = Dataset.objects.get(name="more")
    assert increment.parent_id == ready_dataset.pk
    assert (
        f'href="/datasets/{increment.pk}/">#{increment.pk} more</a>'
        in browser.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    )
    assert (
        f'events appended to <a href="/datasets/{ready_dataset.pk}/"'
        in browser.get(f"/datasets/{increment.pk}/").content.decode()
    )


def test_the_train_form_starts_a_preset(browser, ready_dataset, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        response = browser.post(
            "/jobs/create",
            {"dataset": ready_dataset.pk, "preset": "scratch", "config": "ignored"},
            follow=True,
        )
    assert "training job queued" in _messages(response)
    job = TrainingJob.objects.get()
    assert job.config["schedule"]["method"] == "none" and job.config["schedule"]["final_blocks"] == 8
    with django_capture_on_commit_callbacks():
        browser.post("/jobs/create", {"dataset": ready_dataset.pk, "preset": "paper"})
    stacked = TrainingJob.objects.latest("id").config["schedule"]
    assert (stacked["start_blocks"], stacked["final_blocks"], stacked["method"]) == (2, 8, "adjacent")
    assert stacked["grow"] == "fixed"
    with django_capture_on_commit_callbacks():
        browser.post("/jobs/create", {"dataset": ready_dataset.pk, "preset": "auto"})
    auto = TrainingJob.objects.latest("id").config["schedule"]
    # The default preset: function-preserving, growing while it pays, 16 blocks a ceiling.
    assert (auto["method"], auto["grow"], auto["keep"], auto["final_blocks"]) == (
        "preserving",
        "auto",
        "best",
        16,
    )
    response = browser.post("/jobs/create", {"dataset": ready_dataset.pk, "preset": "deepest"})
    assert response.status_code == 400 and "unknown preset &#x27;deepest&#x27;" in response.content.decode()


def test_errors_are_shown_in_words(browser, ready_dataset):
    response = browser.post("/jobs/create", {"dataset": ready_dataset.pk, "config": '{"trian": 1}'})
    assert "unknown key(s) trian" in response.content.decode()
    response = browser.post("/jobs/create", {"dataset": ready_dataset.pk, "config": "{"})
    assert "not valid JSON" in response.content.decode()
    response = browser.post("/datasets/upload", {"name": "no file"}, follow=True)
    assert "choose a file to upload" in _messages(response)
    response = browser.post(f"/datasets/{ready_dataset.pk}/retrain", follow=True)
    assert any("has no active version to retrain from" in m for m in _messages(response))
    response = browser.post(f"/datasets/{ready_dataset.pk}/rollback", follow=True)
    assert any("no previously active version" in m for m in _messages(response))


def test_retrain_from_the_dataset_and_the_version(
    browser, ready_dataset, make_version, django_capture_on_commit_callbacks
):
    version = make_version(ready_dataset, active=True)
    ModelVersion.objects.filter(pk=version.pk).update(checkpoint_file="checkpoints/final.pt")
    with django_capture_on_commit_callbacks():
        response = browser.post(f"/datasets/{ready_dataset.pk}/retrain", follow=True)
    assert any(m.startswith("retraining with StackRec") for m in _messages(response))
    job = TrainingJob.objects.get()
    assert job.base_version_id == version.pk and job.config["warm_start"] is True
    assert response.redirect_chain[-1][0] == f"/jobs/{job.pk}/"
    assert b"continues <strong>" + version.label.encode() in response.content
    with django_capture_on_commit_callbacks():
        response = browser.post(f"/versions/{version.pk}/retrain", follow=True)
    assert TrainingJob.objects.count() == 2 and response.redirect_chain[-1][0].startswith("/jobs/")


# -- jobs ---------------------------------------------------------------------------------------


def test_the_jobs_table_polls_only_while_a_job_is_active(browser, ready_dataset, make_job):
    done = make_job(ready_dataset)
    html = browser.get("/jobs/").content.decode()
    assert f'data-job="{done.pk}"' in html and 'hx-trigger="every 2s"' not in html
    running = make_job(
        ready_dataset,
        status=TrainingJob.Status.RUNNING,
        progress={"stage": 2, "stages": 3, "blocks": 4, "epoch": 1, "step": 50, "planned_steps": 100},
    )
    html = browser.get("/jobs/").content.decode()
    assert 'hx-get="/jobs/table"' in html and 'hx-trigger="every 2s"' in html
    fragment = browser.get("/jobs/table?limit=10").content.decode()
    assert fragment.lstrip().startswith('<div id="jobs-table"') and "<main" not in fragment
    assert f'data-job="{running.pk}" data-status="RUNNING"' in fragment
    assert 'value="50.0"' in fragment  # (1 stage done + half of stage 2) of 3 stages
    assert 'hx-trigger="every 2s"' in browser.get("/").content.decode()


def test_the_job_page_has_the_live_parts(browser, ready_dataset, make_job):
    job = make_job(
        ready_dataset,
        status=TrainingJob.Status.RUNNING,
        points=STACKED_POINTS[:5],
        progress={
            "stage": 2,
            "stages": 3,
            "blocks": 4,
            "epoch": 1,
            "step": 30,
            "planned_steps": 120,
            "loss": 5.0,
            "stage_eta_s": 42.0,
            "elapsed_s": 25.0,
            "metrics": {"mrr@5": 0.1, "ndcg@10": 0.15},
            "finished_stages": [{"stage": 1, "blocks": 2, "steps": 100, "wall_s": 20.0}],
        },
    )
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert '<main data-page="job">' in html
    assert '<span id="job-status" class="badge status-running" data-status="RUNNING">' in html
    assert '<progress id="stage-progress" max="120" value="30">' in html
    assert '<progress id="run-progress" max="100" value="41.7">' in html  # (1 + 30/120) / 3
    assert (
        '<canvas id="loss-chart" data-points="0"' in html
        and '<canvas id="valid-chart" data-points="0"' in html
    )
    assert f'data-curve-url="/api/v1/jobs/{job.pk}/curve"' in html
    assert f'data-summary-url="/jobs/{job.pk}/summary"' in html
    assert f'action="/jobs/{job.pk}/cancel"' in html
    # the timeline while running: the finished stage and the current one
    timeline = re.search(r'<table id="stage-timeline".*?</table>', html, re.S).group(0)
    assert timeline.count('class="stage-row') == 2 and 'class="stage-row running"' in timeline
    assert "42 s" in html  # the stage ETA


def test_the_curve_the_job_page_polls_answers_the_session(browser, ready_dataset, make_job):
    job = make_job(ready_dataset, status=TrainingJob.Status.RUNNING, points=STACKED_POINTS)
    response = browser.get(f"/api/v1/jobs/{job.pk}/curve", {"after": 0})
    assert response.status_code == 200
    data = response.json()
    assert data["job"]["status"] == "RUNNING" and not data["job"]["finished"]
    assert len(data["points"]) == len(STACKED_POINTS) and data["last"] == data["points"][-1]["id"]
    assert browser.get(f"/api/v1/jobs/{job.pk}/curve", {"after": data["last"]}).json()["points"] == []


def test_a_finished_job_shows_its_timeline_metrics_version_and_partner(
    browser, stacked_and_scratch, make_version
):
    stacked, scratch = stacked_and_scratch
    version = make_version(stacked.dataset)
    ModelVersion.objects.filter(pk=version.pk).update(job=stacked)
    html = browser.get(f"/jobs/{stacked.pk}/").content.decode()
    assert 'data-status="SUCCEEDED"' in html and 'action="/jobs/' not in html  # no cancel button
    assert '<progress id="run-progress" max="100" value="100.0">' in html
    timeline = re.search(r'<table id="stage-timeline".*?</table>', html, re.S).group(0)
    assert timeline.count('class="stage-row"') == 3 and "plateau" in timeline and "0.3200" in timeline
    assert 'id="final-metrics"' in html and "0.1800" in html
    assert f"version {version.label}" in html
    assert f'href="/compare/?a={stacked.pk}&amp;b={scratch.pk}"' in html
    fragment = browser.get(f"/jobs/{stacked.pk}/summary").content.decode()
    assert fragment.lstrip().startswith('<div id="job-summary"') and "stage-timeline" in fragment


def test_a_failed_job_shows_its_error(browser, ready_dataset, make_job):
    job = make_job(ready_dataset, status=TrainingJob.Status.FAILED, error="the log has no items")
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert '<pre class="error" id="job-error">the log has no items</pre>' in html


# -- compare, versions, try it ------------------------------------------------------------------


def test_compare_shows_both_runs_and_the_speedup(browser, stacked_and_scratch):
    stacked, scratch = stacked_and_scratch
    page = browser.get("/compare/").content.decode()
    assert f'name="runs" value="{stacked.pk}"' in page and 'id="speedup"' not in page
    html = browser.get(f"/compare/?a={stacked.pk}&b={scratch.pk}").content.decode()
    speedup = re.search(r'<section class="card headline" id="speedup".*?</section>', html, re.S).group(0)
    text = " ".join(re.sub(r"<[^>]+>", " ", speedup).split())
    assert "2.5× faster" in text
    assert (
        f"StackRec (job #{stacked.pk}) reached scratch's best validation MRR@5 (0.3000, within 1 %) "
        "in 40 s (95 steps) vs 1 min 40 s (100 steps)" in text  # steps over stages: 20 + 35 + 40
    )
    data = json.loads(re.search(r'id="comparison-data"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert [len(run["curve"]) for run in data["runs"]] == [4, 3]
    assert html.count('class="run-figures-row"') == 2 and "1 min 10 s" in html  # stacked total wall time
    same = browser.get(f"/compare/?a={stacked.pk}&b={stacked.pk}").content.decode()
    assert "pick at least two runs to compare" in same


def test_compare_says_when_there_is_no_speedup(browser, ready_dataset, make_job):
    first = make_job(ready_dataset, points=[_valid(1, 2, 10.0, 0.1)])
    second = make_job(ready_dataset, method="none", points=[_valid(1, 8, 10.0, 0.3)])
    html = browser.get(f"/compare/?a={first.pk}&b={second.pk}").content.decode()
    speedup = re.search(r'id="speedup".*?</section>', html, re.S).group(0)
    assert "no speedup" in speedup and "did not reach" in speedup


def test_versions_page_activates_and_rolls_back(browser, ready_dataset, make_version):
    first = make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)
    html = browser.get("/versions/").content.decode()
    rows = {
        version: re.search(rf'<tr id="v-{version.pk}"[^>]*data-version="{version.label}".*?</tr>', html, re.S)
        for version in (first, second)
    }
    assert 'class="activate"' not in rows[first].group(0)  # it serves already
    assert 'class="activate"' in rows[second].group(0)
    assert 'class="rollback"' not in html  # nothing served before the first version
    response = browser.post(f"/versions/{second.pk}/activate", {"next": "/versions/"}, follow=True)
    assert "version activated" in _messages(response) and response.redirect_chain[-1][0] == "/versions/"
    assert f'class="rollback" type="submit" title="re-activate {first.label}' in response.content.decode()
    response = browser.post(f"/datasets/{ready_dataset.pk}/rollback", {"next": "/versions/"}, follow=True)
    assert any("rolled back" in m for m in _messages(response))
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.is_active and not second.is_active
    assert re.search(rf'data-version="{first.label}" data-active="true"', response.content.decode())


def test_try_it_recommends_from_the_active_version(browser, ready_dataset, make_version):
    version = make_version(ready_dataset, active=True)
    page = browser.get("/try/").content.decode()
    assert 'id="try-form"' in page and 'name="history"' in page and 'id="recommendations"' not in page
    example = ready_dataset.preview["events"][0]["item"]
    assert f'data-history="{example}' in page  # the preview's first user's items, clickable
    response = browser.post(
        "/try/", {"dataset": ready_dataset.pk, "history": "i3, i4 i5", "k": 5, "exclude_seen": "on"}
    )
    html = response.content.decode()
    assert html.count('class="rec-row"') == 5 and version.label in html
    items = re.findall(r'<tr class="rec-row" data-item="([^"]+)"', html)
    assert len(set(items)) == 5 and not {"i3", "i4", "i5"} & set(items)  # seen items left out
    assert 'id="fallback-note"' not in html


def test_try_it_shows_dropped_items_fallback_and_errors(browser, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    html = browser.post("/try/", {"dataset": ready_dataset.pk, "history": "nope x9", "k": 3}).content.decode()
    assert 'id="fallback-note"' in html and "nope, x9" in html and html.count('class="rec-row"') == 3
    html = browser.post("/try/", {"dataset": ready_dataset.pk, "history": "i3", "k": 500}).content.decode()
    assert 'id="k-errors"' in html and "at most 10" in html and 'id="recommendations"' not in html
    html = browser.post("/try/", {"dataset": ready_dataset.pk, "history": " , ", "k": 3}).content.decode()
    assert "type at least one item id" in html


def test_try_it_explains_a_dataset_without_an_active_version(browser, ready_dataset, make_version):
    assert b"No dataset has a serving version yet" in browser.get("/try/").content
    html = browser.get("/try/", {"dataset": ready_dataset.pk}).content.decode()
    assert "has no active model version" in html


HELD = {
    "decision": "held",
    "reason": "not activated: validation NDCG@10 0.0132 does not beat popularity's 0.0171",
    "metric": "ndcg@10",
    "margin": 0.0,
    "candidate": 0.0132,
    "popularity": 0.0171,
    "serving": None,
}


def test_a_held_version_says_why_and_activates_only_after_a_confirmation(
    browser, ready_dataset, make_version
):
    serving = make_version(ready_dataset, active=True)
    held = make_version(ready_dataset)
    ModelVersion.objects.filter(pk=held.pk).update(promotion=HELD)
    html = browser.get("/versions/").content.decode()
    row = re.search(rf'<tr id="v-{held.pk}".*?</tr>', html, re.S).group(0)
    assert "does not beat popularity&#x27;s 0.0171" in row and 'data-decision="held"' in row
    assert f'href="/versions/{held.pk}/activate/confirm"' in row and '<button class="activate"' not in row
    # Posting without the confirmation's override is refused with the comparison.
    response = browser.post(f"/versions/{held.pk}/activate", {"next": "/versions/"}, follow=True)
    assert any("held by the promotion gate" in m and "0.0171" in m for m in _messages(response))
    page = browser.get(f"/versions/{held.pk}/activate/confirm").content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "0.0132" in text and "0.0171" in text and f"instead of {serving.label}" in text
    response = browser.post(
        f"/versions/{held.pk}/activate", {"override": "1", "next": "/versions/"}, follow=True
    )
    assert "version activated" in _messages(response)
    held.refresh_from_db()
    assert held.is_active and held.promotion["overrides"][0]["by"] == "alice"


def test_a_finished_job_shows_the_exported_stage_popularity_and_the_gate(
    browser, ready_dataset, make_job, make_version
):
    stages = [
        {"stage": 0, "blocks": 2, "steps": 100, "wall_s": 10.0, "stopped_by": "patience", "kept": False,
         "best": {"mrr@5": 0.10}, "decision": "first stage"},
        {"stage": 1, "blocks": 4, "steps": 50, "wall_s": 8.0, "stopped_by": "patience", "kept": True,
         "best": {"mrr@5": 0.12}, "decision": "kept: 4 blocks gained +20.0% over 2 blocks, more than 1.0%"},
        {"stage": 2, "blocks": 8, "steps": 30, "wall_s": 9.0, "stopped_by": "patience", "kept": False,
         "best": {"mrr@5": 0.1205},
         "decision": "depth stopped paying at 4 blocks: 8 blocks gained +0.4% over 4 blocks"},
    ]  # fmt: skip
    metrics = {
        "valid": TEST_METRICS,
        "test": TEST_METRICS,
        "kept": {"stage": 2, "blocks": 4, "growth": stages[2]["decision"]},
        "popularity": {
            "valid": {**TEST_METRICS, "ndcg@10": 0.0171},
            "test": {**TEST_METRICS, "ndcg@10": 0.0222},
        },
    }
    job = make_job(ready_dataset, stages=stages, metrics=metrics)
    version = make_version(ready_dataset)
    ModelVersion.objects.filter(pk=version.pk).update(job=job, promotion=HELD)
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    timeline = re.search(r'<table id="stage-timeline".*?</table>', html, re.S).group(0)
    assert timeline.count('data-kept="true"') == 1 and 'data-blocks="4" data-kept="true"' in timeline
    assert "depth stopped paying at 4 blocks" in timeline
    result = " ".join(
        re.sub(r"<[^>]+>", " ", re.search(r'id="job-result".*?</section>', html, re.S).group(0)).split()
    )
    assert "stage 2: 4 blocks" in result and "not serving" in result and "0.0171" in result
    assert "test, most popular items" in html and "0.0222" in html
