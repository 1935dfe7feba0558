"""What the pages offer: only actions that can work, to users who may take them, asked for first
where they cannot be taken back; counts with thousands separators and times with their zone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission

from webapp.datasets.models import Dataset
from webapp.registry.models import ModelVersion
from webapp.training.configs import job_config_build
from webapp.training.models import TrainingJob

CONFIG = job_config_build({"model": "nextitnet"}).to_dict()


@pytest.fixture
def alice(client, user):
    client.login(username="alice", password="alice-password")
    return client


@pytest.fixture
def viewer(client, staff_user):
    """carol: may view everyone's datasets, jobs and versions, but change none of them."""
    staff_user.user_permissions.set(
        Permission.objects.filter(codename__in=("view_dataset", "view_trainingjob", "view_modelversion"))
    )
    client.login(username="carol", password="carol-password")
    return client


def _job(dataset: Dataset, status: str = TrainingJob.Status.SUCCEEDED, **fields) -> TrainingJob:
    return TrainingJob.objects.create(
        owner=dataset.owner, dataset=dataset, config=CONFIG, status=status, **fields
    )


def _retrainable(version: ModelVersion) -> ModelVersion:
    ModelVersion.objects.filter(pk=version.pk).update(checkpoint_file="checkpoints/final.pt")
    version.refresh_from_db()
    return version


def _row(html: str, version: ModelVersion) -> str:
    return re.search(rf'<tr id="v-{version.pk}".*?</tr>', html, re.S).group(0)


# -- only actions that can work -----------------------------------------------------------------


def test_a_failed_dataset_offers_only_to_parse_again(alice, ready_dataset):
    Dataset.objects.filter(pk=ready_dataset.pk).update(status=Dataset.Status.FAILED, error="too few events")
    html = alice.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    assert f'action="/datasets/{ready_dataset.pk}/parse"' in html
    for form in ('id="train-form"', 'id="append-form"', 'id="retrain-form"'):
        assert form not in html, form
    listing = alice.get("/datasets/").content.decode()
    assert f'<option value="{ready_dataset.pk}">' not in listing  # not offered to append to


def test_a_dataset_being_parsed_offers_nothing(alice, ready_dataset):
    Dataset.objects.filter(pk=ready_dataset.pk).update(status=Dataset.Status.PARSING)
    html = alice.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    assert "/parse" not in html and 'id="train-form"' not in html and 'id="retrain-form"' not in html


def test_a_ready_dataset_with_nothing_serving_trains_but_says_why_it_cannot_retrain(alice, ready_dataset):
    html = alice.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    assert 'id="train-form"' in html and 'id="append-form"' in html
    assert 'id="retrain-form"' not in html
    assert re.search(r'id="retrain-unavailable">Not yet: dataset #\d+ has no active version to retrain', html)
    assert f'<option value="{ready_dataset.pk}">' in alice.get("/datasets/").content.decode()


def test_a_dataset_with_active_jobs_is_not_offered_a_reparse(alice, ready_dataset):
    _job(ready_dataset, status=TrainingJob.Status.RUNNING)
    html = alice.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    assert f'action="/datasets/{ready_dataset.pk}/parse"' not in html and 'id="train-form"' in html


def test_retrain_is_offered_once_a_version_serves(alice, ready_dataset, make_version):
    version = _retrainable(make_version(ready_dataset, active=True))
    html = alice.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    assert 'id="retrain-form"' in html and 'id="retrain-unavailable"' not in html
    assert f'action="/versions/{version.pk}/retrain"' in _row(html, version)


def test_versions_offer_activate_only_when_not_serving_and_rollback_only_with_an_earlier_one(
    alice, ready_dataset, make_version
):
    first = make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)  # no checkpoint: nothing to stack a retrain from
    html = alice.get("/versions/").content.decode()
    assert '/activate"' not in _row(html, first) and "serving" in _row(html, first)
    assert f'action="/versions/{second.pk}/activate"' in _row(html, second)
    assert "/retrain" not in _row(html, second)
    assert "/rollback" not in html
    alice.post(f"/versions/{second.pk}/activate")
    html = alice.get("/versions/").content.decode()
    assert f'action="/datasets/{ready_dataset.pk}/rollback"' in html
    assert f'action="/versions/{first.pk}/activate"' in _row(html, first)
    assert f'action="/versions/{second.pk}/activate"' not in _row(html, second)


def test_cancel_is_offered_only_while_it_changes_something(alice, ready_dataset):
    for status, offered in [
        (TrainingJob.Status.PENDING, True),
        (TrainingJob.Status.RUNNING, True),
        (TrainingJob.Status.CANCEL_REQUESTED, False),
        (TrainingJob.Status.FAILED, False),
        (TrainingJob.Status.CANCELLED, False),
    ]:
        job = _job(ready_dataset, status=status)
        html = alice.get(f"/jobs/{job.pk}/").content.decode()
        assert (f'action="/jobs/{job.pk}/cancel"' in html) is offered, status


def test_a_user_who_may_only_view_is_offered_no_action(client, viewer, ready_dataset, make_version):
    from webapp.registry.services import model_version_activate

    first = _retrainable(make_version(ready_dataset, active=True))
    second = _retrainable(make_version(ready_dataset))
    model_version_activate(version=second)  # so that a rollback to the first could be offered
    job = _job(ready_dataset, status=TrainingJob.Status.PENDING)

    def offered() -> dict[str, bool]:
        dataset = client.get(f"/datasets/{ready_dataset.pk}/").content.decode()
        TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.RUNNING)
        job_page = client.get(f"/jobs/{job.pk}/").content.decode()
        TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.PENDING)
        versions = client.get("/versions/").content.decode()
        listing = client.get("/datasets/").content.decode()
        return {
            "train": 'id="train-form"' in dataset,
            "append": 'id="append-form"' in dataset and f'<option value="{ready_dataset.pk}">' in listing,
            "retrain": 'id="retrain-form"' in dataset and f"/versions/{first.pk}/retrain" in versions,
            "activate": f"/versions/{first.pk}/activate" in versions,
            "rollback": "/rollback" in versions,
            "cancel": f"/jobs/{job.pk}/cancel" in job_page,
        }

    assert f"v-{first.pk}" in client.get("/versions/").content.decode()  # carol sees alice's versions
    assert not any(offered().values()), offered()
    client.login(username="alice", password="alice-password")
    assert all(offered().values()), offered()  # the owner is offered each of them


# -- confirmations ------------------------------------------------------------------------------


def test_cancel_activate_and_rollback_ask_first_in_words(alice, ready_dataset, make_version):
    running = _job(ready_dataset, status=TrainingJob.Status.RUNNING)
    html = alice.get(f"/jobs/{running.pk}/").content.decode()
    assert (
        f'data-confirm="Cancel job #{running.pk}? A running job stops after its current step; '
        'no version is registered."' in html
    )
    queued = _job(ready_dataset, status=TrainingJob.Status.PENDING)
    assert "It has not started: it ends now" in alice.get(f"/jobs/{queued.pk}/").content.decode()

    first = make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)
    row = _row(alice.get("/versions/").content.decode(), second)
    assert f'data-confirm="Activate {second.label}? It answers every recommend call for dataset #' in row
    alice.post(f"/versions/{second.pk}/activate")
    html = alice.get("/versions/").content.decode()
    assert f'data-confirm="Roll back dataset #{ready_dataset.pk} to {first.label}? It serves again' in html


def test_the_script_asks_for_the_forms_that_carry_a_confirmation():
    from django.contrib.staticfiles import finders

    script = Path(finders.find("dashboard/js/forms.js")).read_text(encoding="utf-8")
    assert 'closest("form[data-confirm]")' in script and "window.confirm(form.dataset.confirm)" in script


def test_a_held_version_still_goes_through_its_confirmation_page(alice, ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    held = make_version(ready_dataset)
    ModelVersion.objects.filter(pk=held.pk).update(promotion={"decision": "held", "reason": "not activated"})
    row = _row(alice.get("/versions/").content.decode(), held)
    assert f'href="/versions/{held.pk}/activate/confirm"' in row and '/activate"' not in row


# -- numbers and times --------------------------------------------------------------------------


def test_counts_have_thousands_separators(alice, ready_dataset):
    stats = {**ready_dataset.stats, "n_events": 1234, "n_items": 56789, "n_sequences": 1234567}
    Dataset.objects.filter(pk=ready_dataset.pk).update(stats=stats)
    listing = alice.get("/datasets/").content.decode()
    assert ">1,234<" in listing and ">56,789<" in listing and ">1,234,567<" in listing
    page = alice.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    assert "<dd>1,234</dd>" in page and "<dd>1,234,567</dd>" in page
    job = _job(
        ready_dataset,
        status=TrainingJob.Status.RUNNING,
        progress={"stage": 1, "stages": 2, "blocks": 2, "epoch": 1, "step": 1500, "planned_steps": 12000,
                  "positions_per_s": 45678.9},
        stages=[],
    )  # fmt: skip
    html = alice.get(f"/jobs/{job.pk}/").content.decode()
    assert "step 1,500 of 12,000" in html and ">45,679<" in html


def test_times_name_their_time_zone(alice, ready_dataset):
    job = _job(ready_dataset)
    for url in ("/datasets/", f"/datasets/{ready_dataset.pk}/", f"/jobs/{job.pk}/", "/jobs/"):
        html = alice.get(url).content.decode()
        assert re.search(
            r'<time datetime="\d{4}-\d\d-\d\dT[^"]+" title="[^"]+ ago">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>',
            html,
        ), url
    page = alice.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    assert re.search(r"2020-09-13 \d\d:\d\d UTC", page)  # the log's own timestamps, in UTC
