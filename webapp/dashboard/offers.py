"""Which actions a page offers: only those the services would accept, to a user allowed to take them.

A button that can only fail (train on a failed dataset, retrain before anything serves, activate the
version already serving, a button on another user's object that the user may only view) teaches
nothing but distrust. Each offer asks the check the action itself runs — the service's check
function, the selector it reads, the model's named states — and the permission rule of
``webapp.core.permissions``, so a page cannot offer what the action would refuse. The action still
checks again when it is posted: the page may be minutes old.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webapp.core.exceptions import ApplicationError
from webapp.core.permissions import may_change
from webapp.datasets.models import Dataset
from webapp.datasets.services import dataset_parse_retry_check
from webapp.registry.models import ModelVersion
from webapp.registry.selectors import model_version_previous
from webapp.training.models import TrainingJob
from webapp.training.services import training_job_retrain_source


def _refusal(check: Callable[[], Any]) -> str:
    """The sentence ``check`` refuses with, or "" when it passes."""
    try:
        check()
    except ApplicationError as exc:
        return exc.message
    return ""


@dataclass(frozen=True)
class DatasetOffers:
    """What a dataset's page offers; ``retrain_refusal`` says why a retrain is not offered."""

    train: bool  # the train and the append forms: a ready dataset
    reparse: bool
    retrain: bool
    retrain_refusal: str


@dataclass(frozen=True)
class VersionOffers:
    """What a version's row offers: ``activate`` a plain button, ``confirm`` the held version's page."""

    activate: bool
    confirm: bool
    retrain: bool


def dataset_offers(*, user: Any, dataset: Dataset) -> DatasetOffers:
    """The dataset page's actions for ``user`` (a viewer who may not change it is offered none)."""
    changes = may_change(Dataset, user=user, owner_id=dataset.owner_id)
    retrain_refusal = _refusal(lambda: training_job_retrain_source(dataset=dataset)) if changes else ""
    return DatasetOffers(
        train=changes and dataset.is_ready,
        reparse=changes and not _refusal(lambda: dataset_parse_retry_check(dataset=dataset)),
        retrain=changes and not retrain_refusal,
        retrain_refusal=retrain_refusal,
    )


def dataset_rollback_target(*, user: Any, dataset: Dataset) -> ModelVersion | None:
    """The version a rollback would bring back (None: nothing served before the current one, or
    ``user`` may not switch this dataset's versions), for the button and its confirmation."""
    if not may_change(ModelVersion, user=user, owner_id=dataset.owner_id):
        return None
    return model_version_previous(dataset=dataset)


def datasets_to_append_to(*, user: Any, datasets: list[Dataset]) -> list[Dataset]:
    """The datasets an upload may be appended to: ready ones that ``user`` may change."""
    return [d for d in datasets if d.is_ready and may_change(Dataset, user=user, owner_id=d.owner_id)]


def version_offers(*, user: Any, version: ModelVersion) -> VersionOffers:
    """A version row's actions: activate one not serving (a held one through its confirmation page),
    retrain from one a retrain can stack."""
    if not may_change(ModelVersion, user=user, owner_id=version.dataset.owner_id):
        return VersionOffers(activate=False, confirm=False, retrain=False)
    return VersionOffers(
        activate=not version.is_active and not version.is_held,
        confirm=not version.is_active and version.is_held,
        retrain=not _refusal(lambda: training_job_retrain_source(version=version)),
    )


def job_may_cancel(*, user: Any, job: TrainingJob) -> bool:
    """A cancel is offered while it would change something, to a user who may act on the job."""
    return job.is_cancellable and may_change(TrainingJob, user=user, owner_id=job.dataset.owner_id)
