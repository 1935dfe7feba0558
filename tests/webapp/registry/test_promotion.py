"""The promotion gate: nothing worse than popularity or the serving version goes live by itself."""

from __future__ import annotations

import random

import pytest

from tests.webapp.conftest import client_for
from webapp.registry.models import ModelVersion
from webapp.registry.promotion import promotion_decide
from webapp.training.attempts import training_job_run
from webapp.training.models import TrainingJob
from webapp.training.services import training_job_create

POPULARITY = {"ndcg@10": 0.0171}


def test_a_version_that_beats_popularity_and_nothing_serving_is_activated():
    decision = promotion_decide(candidate={"ndcg@10": 0.0400}, popularity=POPULARITY)
    assert decision.activate
    assert decision.reason == (
        "activated: validation NDCG@10 0.0400 beats popularity (0.0171); nothing served this dataset before"
    )


def test_a_version_below_popularity_is_held_with_the_comparison():
    decision = promotion_decide(candidate={"ndcg@10": 0.0132}, popularity=POPULARITY)
    assert not decision.activate and decision.decision == "held"
    assert decision.reason == "not activated: validation NDCG@10 0.0132 does not beat popularity's 0.0171"


def test_a_version_below_the_serving_one_is_held_even_when_it_beats_popularity():
    decision = promotion_decide(
        candidate={"ndcg@10": 0.0300},
        popularity=POPULARITY,
        serving={"ndcg@10": 0.0310},
        serving_label="dataset-1-v2",
    )
    assert not decision.activate
    assert "does not beat dataset-1-v2 (serving)'s 0.0310" in decision.reason
    assert decision.to_dict()["serving"] == {
        "name": "dataset-1-v2 (serving)",
        "value": 0.031,
        "version": "dataset-1-v2",
    }
    better = promotion_decide(
        candidate={"ndcg@10": 0.0320}, popularity=POPULARITY, serving={"ndcg@10": 0.0310}, serving_label="v2"
    )
    assert better.activate and "beats popularity (0.0171) and v2 (serving) (0.0310)" in better.reason


def test_a_tie_is_not_better_and_the_margin_and_metric_are_configuration(settings):
    # One item or identical histories: the model only ties popularity's perfect score.
    assert not promotion_decide(candidate={"ndcg@10": 1.0}, popularity={"ndcg@10": 1.0}).activate
    settings.STUDIO_PROMOTION_MARGIN = 0.05
    settings.STUDIO_PROMOTION_METRIC = "hr@10"
    held = promotion_decide(candidate={"hr@10": 0.104}, popularity={"hr@10": 0.100})
    assert not held.activate and held.metric == "hr@10" and "by more than 5.0%" in held.reason
    assert promotion_decide(candidate={"hr@10": 0.106}, popularity={"hr@10": 0.100}).activate


def popular_log(users: int = 40, seed: int = 0) -> str:
    """Half of all events are one item: recommending the most popular items is hard to beat."""
    rng = random.Random(seed)
    lines = ["user,item,timestamp"]
    for u in range(users):
        for t in range(10):
            item = "hit" if rng.random() < 0.5 else f"i{rng.randrange(30)}"
            lines.append(f"u{u},{item},{1_600_000_000 + u * 1000 + t * 10}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def held_version(user, upload, tiny_config, django_capture_on_commit_callbacks):
    """A version whose model barely trained (a learning rate of 1e-9) on a log popularity wins."""
    from webapp.datasets.services import dataset_create, dataset_parse

    with django_capture_on_commit_callbacks():
        dataset = dataset_create(owner=user, upload=upload(popular_log()))
    dataset = dataset_parse(dataset_id=dataset.pk)
    config = {**tiny_config, "train": {**tiny_config["train"], "lr": 1e-9}}
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=user, dataset=dataset, config=config)
    done = training_job_run(job_id=job.pk)
    assert done.status == TrainingJob.Status.SUCCEEDED, done.error
    return ModelVersion.objects.get(job=done)


def test_a_run_worse_than_popularity_is_registered_but_never_served(held_version):
    assert not held_version.is_active and held_version.promotion["decision"] == "held"
    popularity = held_version.job.metrics["popularity"]["valid"]["ndcg@10"]
    assert held_version.promotion["popularity"] == popularity
    assert held_version.promotion["reason"].startswith("not activated: validation NDCG@10 ")
    assert f"does not beat popularity's {popularity:.4f}" in held_version.promotion["reason"]
    api = client_for(held_version.owner)
    answer = api.post(
        "/api/v1/recommend", {"dataset": held_version.dataset_id, "history": ["hit"]}, format="json"
    )
    assert answer.status_code == 503  # nothing serves: better no model than a worse one
    listed = api.get("/api/v1/versions", {"dataset": held_version.dataset_id}).json()["results"][0]
    assert listed["promotion"]["decision"] == "held" and listed["promotion"]["reason"]
    job = api.get(f"/api/v1/jobs/{held_version.job_id}").json()
    assert job["metrics"]["popularity"]["valid"]["ndcg@10"] == popularity


def test_activating_a_held_version_by_hand_needs_an_override_that_is_recorded(held_version):
    api = client_for(held_version.owner)
    refused = api.post(f"/api/v1/versions/{held_version.pk}/activate", format="json")
    assert refused.status_code == 409
    body = refused.json()
    assert "held by the promotion gate" in body["message"] and "does not beat popularity's" in body["message"]
    assert body["extra"]["override_needed"] is True
    held_version.refresh_from_db()
    assert not held_version.is_active

    done = api.post(f"/api/v1/versions/{held_version.pk}/activate", {"override": True}, format="json")
    assert done.status_code == 200 and done.json()["is_active"]
    held_version.refresh_from_db()
    assert held_version.is_active
    assert [o["by"] for o in held_version.promotion["overrides"]] == [held_version.owner.username]
