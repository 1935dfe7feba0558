"""Web app tests: Django settings for everything under tests/webapp (the trainer tests need no Django).

Fixtures: users and API clients, a synthetic log small enough to train on in seconds, a tiny job
configuration, and one exported artifact built once per session for registry and serving tests.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.config.settings.test")

import django

django.setup()  # test modules import the apps' models at collection time

import random  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

TINY_CONFIG = {
    "model": "nextitnet",
    "model_options": {"embedding_dim": 8},
    # A fixed schedule that exports its last stage: these runs are about the job system, not growth.
    "schedule": {
        "start_blocks": 1,
        "final_blocks": 2,
        "method": "adjacent",
        "grow": "fixed",
        "keep": "final",
        "stage_steps": 3,
    },
    "train": {"epochs": 1, "batch_size": 16, "max_len": 10, "patience": 0, "threads": 1, "device": "cpu"},
    "export": {"max_k": 10},
}


def synthetic_log(users: int = 40, items: int = 30, seed: int = 0, start_user: int = 0) -> str:
    """A CSV log (user,item,timestamp) where each user walks through items in a loose cycle."""
    rng = random.Random(seed)
    lines = ["user,item,timestamp"]
    for u in range(start_user, start_user + users):
        item = rng.randrange(items)
        for t in range(rng.randrange(6, 14)):
            item = (item + rng.choice((1, 1, 2, 3))) % items
            lines.append(f"u{u},i{item},{1_600_000_000 + u * 1000 + t * 10}")
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    """Every test writes uploads, checkpoints and artifacts into its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def _fresh_serving():
    from webapp.registry.serving import serving_reset

    serving_reset()
    yield
    serving_reset()


@pytest.fixture
def tiny_config() -> dict:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in TINY_CONFIG.items()}


@pytest.fixture
def log_text() -> str:
    return synthetic_log()


@pytest.fixture
def upload(log_text):
    def make(text: str | bytes | None = None, name: str = "clicks.csv") -> SimpleUploadedFile:
        data = log_text if text is None else text
        return SimpleUploadedFile(name, data.encode() if isinstance(data, str) else data)

    return make


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="alice-password")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", password="bob-password")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user("carol", password="carol-password", is_staff=True)


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    return client_for(user)


@pytest.fixture
def ready_dataset(user, upload, django_capture_on_commit_callbacks):
    """A parsed synthetic dataset of ``user``."""
    from webapp.datasets.services import dataset_create, dataset_parse

    with django_capture_on_commit_callbacks():
        dataset = dataset_create(owner=user, upload=upload())
    return dataset_parse(dataset_id=dataset.pk)


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory) -> Path:
    """One tiny exported model (trained for a few steps on the synthetic log), built once."""
    from trainer.export import ExportConfig, count_items, export_model
    from trainer.models import model_config
    from trainer.runs import DataSpec, prepare_split
    from trainer.schedule import StackingSchedule, run_schedule
    from trainer.training import TrainConfig

    root = tmp_path_factory.mktemp("artifact")
    log = root / "log.csv"
    log.write_text(synthetic_log())
    split = prepare_split(DataSpec(path=str(log)))
    train = TrainConfig.from_dict(TINY_CONFIG["train"])
    result = run_schedule(
        "nextitnet",
        model_config("nextitnet", {"embedding_dim": 8, "blocks": 1}),
        split,
        train,
        StackingSchedule(start_blocks=1, final_blocks=1, method="none"),
    )
    out = root / "model"
    export_model(
        result.model.eval(),
        split.vocab,
        out,
        item_counts=count_items(split.train, split.n_items),
        config=ExportConfig(max_k=10),
        train_config=train.to_dict(),
    )
    return out


@pytest.fixture
def make_version(media_root, artifact_dir):
    """Register a copy of the session's artifact as the next version of a dataset."""
    from webapp.registry.models import ModelVersion

    def make(dataset, *, active: bool = False) -> ModelVersion:
        number = dataset.versions.count() + 1
        relative = f"artifacts/dataset-{dataset.pk}/v{number}"
        shutil.copytree(artifact_dir, Path(media_root) / relative)
        version = ModelVersion.objects.create(
            owner=dataset.owner,
            dataset=dataset,
            number=number,
            model_name="nextitnet",
            depth=1,
            method="none",
            metrics={"test": {"ndcg@10": 0.1}},
            artifact_dir=relative,
        )
        if active:
            from webapp.registry.services import model_version_activate

            model_version_activate(version=version)
        return version

    return make
