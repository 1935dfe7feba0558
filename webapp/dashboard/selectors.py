"""Reads the dashboard pages need beyond the domain selectors: overview counts, groupings, page-ready rows.

Everything here builds on the domain selectors, so a user sees exactly what the API shows them
(their own objects, everything for staff).
"""

from __future__ import annotations

import itertools
from typing import Any

from django.db.models import QuerySet

from serving.artifact import METADATA_FILE
from serving.errors import ArtifactError
from webapp.datasets.models import Dataset
from webapp.datasets.selectors import dataset_list
from webapp.registry.artifacts import artifact_metadata
from webapp.registry.models import ModelVersion
from webapp.registry.selectors import model_version_list
from webapp.training.models import TrainingJob
from webapp.training.selectors import training_job_list

# The best validation metrics the stage timeline lists.
STAGE_METRICS = ("mrr@5", "ndcg@10", "hr@10")
# Final validation/test metrics and the compare page's test columns.
FINAL_METRICS = ("hr@5", "ndcg@5", "mrr@5", "hr@10", "ndcg@10", "mrr@10")


def overview_counts(*, user: Any) -> dict[str, int]:
    """Numbers for the overview's tiles."""
    jobs = training_job_list(user=user)
    versions = model_version_list(user=user)
    return {
        "datasets": dataset_list(user=user).count(),
        "jobs": jobs.count(),
        "active_jobs": jobs.filter(status__in=TrainingJob.ACTIVE).count(),
        "versions": versions.count(),
        "active_versions": versions.filter(is_active=True).count(),
    }


def jobs_any_active(jobs: list[TrainingJob]) -> bool:
    """Whether a job table still changes (and so is polled)."""
    return any(job.status in TrainingJob.ACTIVE for job in jobs)


def datasets_any_parsing(datasets: list[Dataset]) -> bool:
    """Whether a dataset table still changes (and so is polled)."""
    return any(d.status in (Dataset.Status.PENDING, Dataset.Status.PARSING) for d in datasets)


def dataset_increments(*, user: Any, dataset: Dataset) -> QuerySet[Dataset]:
    """The increments appended to ``dataset`` that ``user`` may see, newest first."""
    return dataset_list(user=user).filter(parent=dataset)


def datasets_with_active_version(*, user: Any) -> list[Dataset]:
    """The datasets ``user`` may query on the try-it page (those with a version serving)."""
    return list(dataset_list(user=user).filter(versions__is_active=True).distinct())


def jobs_finished(*, user: Any) -> list[TrainingJob]:
    """Succeeded jobs, newest first: the runs the compare page offers."""
    return list(training_job_list(user=user).filter(status=TrainingJob.Status.SUCCEEDED)[:200])


def comparison_measured_run(comparison: Any) -> Any:
    """The run whose speed a comparison measures: the one that is not the reference (None without one)."""
    if comparison.reference is None:
        return None
    return next((run for run in comparison.runs if run is not comparison.reference), None)


def versions_by_dataset(*, user: Any) -> list[tuple[Dataset, list[ModelVersion]]]:
    """Visible versions grouped by dataset (newest dataset first), each group newest version first."""
    versions = model_version_list(user=user).order_by("-dataset_id", "-number")
    return [
        (group[0].dataset, group)
        for group in (list(g) for _, g in itertools.groupby(versions, key=lambda v: v.dataset_id))
    ]


def dataset_example_histories(
    dataset: Dataset, *, limit: int = 4, titles: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Histories to click on the try-it page: the preview's events grouped by user, in log order,
    with the items' ``titles`` (raw id → title) where the dataset has them."""
    events = (dataset.preview or {}).get("events") or []
    histories: dict[str, list[str]] = {}
    for event in events:
        histories.setdefault(str(event["user"]), []).append(str(event["item"]))
    titles = titles or {}
    return [
        {
            "user": user,
            "items": items,
            "text": " ".join(items),
            "titles": [titles[i] for i in items if i in titles],
        }
        for user, items in list(histories.items())[:limit]
    ]


def job_run_percent(job: TrainingJob) -> float:
    """How far the whole run is, in percent, by the estimated work of its stages and phases (see
    :mod:`webapp.training.progress`); for a row written before runs kept a plan, finished stages
    plus the current stage's share of its steps, every stage alike."""
    if job.status == TrainingJob.Status.SUCCEEDED:
        return 100.0
    progress = job.progress or {}
    if "run_percent" in progress:
        return float(progress["run_percent"])
    stages, stage = progress.get("stages") or 0, progress.get("stage") or 0
    if not stages or not stage:
        return 0.0
    planned = progress.get("planned_steps") or 0
    within = min(1.0, (progress.get("step") or 0) / planned) if planned else 0.0
    return round(min(100.0, 100.0 * (stage - 1 + within) / stages), 1)


# The training settings a version page lists (the rest stay in metadata.json).
CARD_TRAIN_KEYS = ("epochs", "batch_size", "max_len", "lr", "optimizer", "loss", "patience", "metric", "seed")


def version_card(version: ModelVersion) -> dict[str, Any]:
    """What the version page shows of the artifact's ``metadata.json``: the model's configuration and
    size, the key training settings, the graph's limits. ``error`` says when the file cannot be read."""
    try:
        meta = artifact_metadata(version)  # from storage, wherever it is
        model, graph = meta["model"], meta["graph"]
    except (ArtifactError, KeyError, TypeError):
        return {"error": f"{METADATA_FILE} of this version cannot be read"}
    train = meta.get("train_config") or {}

    def shown(value: Any) -> str:
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    return {
        "model": [(k, shown(v)) for k, v in (model.get("config") or {}).items() if not isinstance(v, dict)],
        "parameters": model.get("parameters"),
        "items": (meta.get("vocabulary") or {}).get("size"),
        "train": [(k, shown(train[k])) for k in CARD_TRAIN_KEYS if k in train],
        "max_len": graph.get("max_len"),
        "max_k": graph.get("max_k"),
        "precision": graph.get("precision"),
        "opset": graph.get("opset"),
        "sha256": {graph.get("file"): graph.get("sha256")},
        "exported_at": meta.get("created_at"),
    }


def version_metric_rows(version: ModelVersion) -> list[tuple[str, dict[str, float], bool]]:
    """The version page's metrics table: (what, metrics, is a baseline), the model's own rows first."""
    metrics = version.metrics or {}
    popularity = metrics.get("popularity") or {}
    serving = metrics.get("serving") or {}
    previous = metrics.get("previous") or {}
    rows = [
        ("validation", metrics.get("valid"), False),
        ("test", metrics.get("test"), False),
        ("validation, most popular items", popularity.get("valid"), True),
        ("test, most popular items", popularity.get("test"), True),
        (f"validation, {serving.get('version')} (serving when this was judged)", serving.get("valid"), True),
        (f"test, {previous.get('version')} before this retrain", previous.get("test"), True),
    ]
    return [(name, values, baseline) for name, values, baseline in rows if values]
