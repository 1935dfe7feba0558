"""Registry services: one active version per dataset (also in the database), activation, rollback."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from webapp.core.exceptions import ConflictError
from webapp.registry.models import ModelVersion
from webapp.registry.selectors import model_version_active
from webapp.registry.services import model_version_activate, model_version_rollback


def test_the_database_refuses_two_active_versions(ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=second.pk).update(is_active=True)


def test_activate_moves_the_active_flag(ready_dataset, make_version):
    first = make_version(ready_dataset, active=True)
    second = make_version(ready_dataset)
    model_version_activate(version=second)
    first.refresh_from_db()
    assert not first.is_active and second.is_active
    assert model_version_active(user=ready_dataset.owner, dataset_id=ready_dataset.pk) == second


def test_rollback_walks_back_through_activations(ready_dataset, make_version):
    v1 = make_version(ready_dataset, active=True)
    v2 = make_version(ready_dataset, active=True)
    v3 = make_version(ready_dataset, active=True)
    assert model_version_rollback(dataset=ready_dataset) == v2
    assert model_version_rollback(dataset=ready_dataset) == v3  # the previous one is v3 again
    model_version_activate(version=v1)
    assert model_version_rollback(dataset=ready_dataset) == v3


def test_rollback_with_a_single_version_is_a_conflict(ready_dataset, make_version):
    make_version(ready_dataset, active=True)
    with pytest.raises(ConflictError):
        model_version_rollback(dataset=ready_dataset)
