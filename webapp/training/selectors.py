"""Reads of training jobs shared by the API and the dashboard."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, F, FloatField, QuerySet, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from webapp.core.exceptions import NotFoundError
from webapp.core.permissions import CHANGE, VIEW, ensure_may_change, visible_to
from webapp.training.models import TrainingJob, TrainingPoint


def training_job_list(*, user: Any, dataset_id: Any = None) -> QuerySet[TrainingJob]:
    """Jobs ``user`` may see, optionally of one dataset: those on their own datasets, or all with
    ``training.view_trainingjob`` (a job belongs to its dataset's owner, whoever queued it)."""
    queryset = visible_to(
        TrainingJob.objects.select_related("dataset", "owner", "version"), user=user, owner="dataset__owner"
    )
    if dataset_id is not None:
        queryset = queryset.filter(dataset_id=dataset_id)
    return queryset


def training_job_get(*, user: Any, job_id: Any, action: str = VIEW) -> TrainingJob:
    """One job ``user`` may read, or act on (cancel, resume) when ``action`` is CHANGE."""
    try:
        job = training_job_list(user=user).get(pk=int(job_id))
    except (TrainingJob.DoesNotExist, TypeError, ValueError):
        raise NotFoundError(f"training job {job_id} not found", {"job": job_id}) from None
    if action == CHANGE:
        ensure_may_change(TrainingJob, user=user, owner_id=job.dataset.owner_id, label=f"job {job.pk}")
    return job


def training_points_list(*, job: TrainingJob, after: int = 0, limit: int = 5000) -> list[TrainingPoint]:
    """The job's curve points with ids above ``after`` (what a polling page has not drawn yet)."""
    return list(TrainingPoint.objects.filter(job=job, id__gt=after).order_by("id")[:limit])


# The figures the runs table shows, sorts and compares, as paths into the JSON a run writes.
RUN_FIGURES: dict[str, tuple[str, ...]] = {
    "depth_kept": ("metrics", "kept", "blocks"),  # blocks of the exported model (the kept stage's)
    "duration_s": ("progress", "elapsed_s"),  # the trainer's clock: training and validation, all stages
    "valid_mrr5": ("metrics", "valid", "mrr@5"),
    "valid_ndcg10": ("metrics", "valid", "ndcg@10"),
    "test_ndcg10": ("metrics", "test", "ndcg@10"),
    "test_hr10": ("metrics", "test", "hr@10"),
}
RUN_TEXTS: dict[str, tuple[str, ...]] = {
    "model_name": ("config", "model"),
    "method": ("config", "schedule", "method"),
}
# Status order for sorting: what still changes first, then how runs ended.
_STATUS_RANK = (
    TrainingJob.Status.RUNNING,
    TrainingJob.Status.CANCEL_REQUESTED,
    TrainingJob.Status.PENDING,
    TrainingJob.Status.SUCCEEDED,
    TrainingJob.Status.FAILED,
    TrainingJob.Status.CANCELLED,
)
RUN_SORTS: dict[str, Any] = {
    "id": F("id"),
    "created": F("created_at"),
    "dataset": F("dataset__name"),
    "status": Case(*(When(status=s, then=Value(i)) for i, s in enumerate(_STATUS_RANK)), default=Value(99)),
    **{name: F(name) for name in (*RUN_TEXTS, *RUN_FIGURES)},
}


def training_job_figure(job: TrainingJob, name: str) -> Any:
    """One of ``RUN_FIGURES``/``RUN_TEXTS`` of ``job`` read in Python, from the same path the query
    casts (for rows that did not come through :func:`training_job_run_list`)."""
    *fields, key = (RUN_FIGURES | RUN_TEXTS)[name]
    value: Any = getattr(job, fields[0]) or {}
    for field in fields[1:]:
        value = value.get(field) if isinstance(value, dict) else None
    return value.get(key) if isinstance(value, dict) else None


def training_job_run_list(
    *,
    user: Any,
    dataset_id: Any = None,
    status: str = "",
    model: str = "",
    method: str = "",
    sort: str = "-created",
) -> QuerySet[TrainingJob]:
    """Jobs ``user`` may see with their figures as columns, filtered and sorted by ``sort`` (a key of
    ``RUN_SORTS``, ``-`` first for descending; runs without the figure last either way).

    The figures stay in the JSON the run writes and are cast to numbers in the query: no second
    copy to keep in step with it, and the cast sorts numerically on SQLite and PostgreSQL alike (a
    key transform alone compares text there, where "0.9" sorts above "0.10" and "10" below "9").
    A few thousand rows cast in well under a millisecond each; an expression index on the same
    cast is the remedy if a table ever grows past that.
    """
    queryset = training_job_list(user=user, dataset_id=dataset_id).annotate(
        **{name: KT("__".join(path)) for name, path in RUN_TEXTS.items()},
        **{name: Cast(KT("__".join(path)), FloatField()) for name, path in RUN_FIGURES.items()},
    )
    if status:
        queryset = queryset.filter(status=status)
    # Filtered on the JSON itself: an exact lookup on the text annotation would compare JSON there.
    if model:
        queryset = queryset.filter(**{"__".join(RUN_TEXTS["model_name"]): model})
    if method:
        queryset = queryset.filter(**{"__".join(RUN_TEXTS["method"]): method})
    key = sort.removeprefix("-")
    expression = RUN_SORTS.get(key, RUN_SORTS["created"])
    descending = sort.startswith("-") if key in RUN_SORTS else True
    ordered = expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
    return queryset.order_by(ordered, "-id")


def training_job_run_choices(*, user: Any) -> dict[str, list[str]]:
    """The models and stacking methods among the jobs ``user`` may see: the runs table's filter options."""
    jobs = training_job_list(user=user).annotate(
        **{name: KT("__".join(path)) for name, path in RUN_TEXTS.items()}
    )
    return {
        name: [v for v in jobs.order_by(name).values_list(name, flat=True).distinct() if v]
        for name in RUN_TEXTS
    }
