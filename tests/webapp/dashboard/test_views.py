"""Dashboard pages: the same services as the API, behind a session login; errors shown in words."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.conftest import synthetic_log
from webapp.datasets.models import Dataset
from webapp.training.models import TrainingJob


@pytest.fixture
def browser(client, user):
    client.login(username="alice", password="alice-password")
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_upload_train_cancel_activate_from_the_page(
    browser, tiny_config, make_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = browser.post(
            "/datasets/upload",
            {"file": SimpleUploadedFile("log.csv", synthetic_log().encode()), "name": "from the page"},
            follow=True,
        )
    assert "uploaded; parsing has started" in _messages(response) and len(callbacks) == 1
    dataset = Dataset.objects.get(name="from the page")
    from webapp.datasets.services import dataset_parse

    dataset_parse(dataset_id=dataset.pk)
    page = browser.get("/")
    assert b"from the page" in page.content and b"ready" in page.content

    with django_capture_on_commit_callbacks():
        response = browser.post(
            "/jobs/create", {"dataset": dataset.pk, "config": json.dumps(tiny_config)}, follow=True
        )
    assert "training job queued" in _messages(response)
    job = TrainingJob.objects.get()
    response = browser.post(f"/jobs/{job.pk}/cancel", follow=True)
    assert "cancel requested" in _messages(response)
    job.refresh_from_db()
    assert job.status == "CANCELLED"

    version = make_version(dataset)
    response = browser.post(f"/versions/{version.pk}/activate", follow=True)
    assert "version activated" in _messages(response)
    assert b"(active)" in response.content


def test_errors_are_shown_in_words(browser, ready_dataset):
    response = browser.post(
        "/jobs/create", {"dataset": ready_dataset.pk, "config": '{"trian": 1}'}, follow=True
    )
    assert any("unknown key(s) trian" in m for m in _messages(response))
    response = browser.post("/jobs/create", {"dataset": ready_dataset.pk, "config": "{"}, follow=True)
    assert any("config is not valid JSON" in m for m in _messages(response))
    response = browser.post("/datasets/upload", {"name": "no file"}, follow=True)
    assert "choose a file to upload" in _messages(response)


def test_other_users_objects_are_not_reachable(client, other_user, ready_dataset):
    client.login(username="bob", password="bob-password")
    response = client.post(f"/datasets/{ready_dataset.pk}/parse", follow=True)
    assert any("not found" in m for m in _messages(response))
    assert b"clicks.csv" not in client.get("/").content
