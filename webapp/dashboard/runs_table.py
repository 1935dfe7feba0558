"""The runs table: its columns, the sort and filters a request asks for, its pages and rows.

One table serves the runs page, the overview and the dataset page (and the fragment each re-fetches
while a job in it is active). Its header links and page links always lead to the runs page with the
same filters, so sorting from the overview opens every run sorted that way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import QueryDict
from django.urls import reverse

from webapp.dashboard.selectors import job_run_percent, jobs_any_active
from webapp.training.models import TrainingJob
from webapp.training.selectors import RUN_FIGURES, RUN_SORTS, training_job_figure, training_job_run_list

PER_PAGE = 50
DEFAULT_SORT = "-created"
MAX_COMPARED = 12  # runs on one compare page: more lines than a chart's legend can tell apart


@dataclass(frozen=True)
class Column:
    key: str  # its sort key (``RUN_SORTS``)
    label: str
    secondary: bool = False  # hidden on a phone until "all columns" is ticked
    descending_first: bool = False  # figures and times: the first click puts the highest on top
    orders: tuple[str, str] = ("lowest first", "highest first")  # ascending, descending, in words


NAMES = ("A to Z", "Z to A")
TIMES = ("oldest first", "newest first")
COLUMNS = (
    Column("id", "job", descending_first=True, orders=TIMES),
    Column("dataset", "dataset", orders=NAMES),
    Column("model_name", "model", secondary=True, orders=NAMES),
    Column("depth_kept", "depth kept", descending_first=True),
    Column("method", "method", secondary=True, orders=NAMES),
    Column("status", "status", orders=("active first", "cancelled first")),
    Column(
        "duration_s",
        "duration",
        secondary=True,
        descending_first=True,
        orders=("shortest first", "longest first"),
    ),
    Column("valid_mrr5", "valid MRR@5", secondary=True, descending_first=True),
    Column("valid_ndcg10", "valid NDCG@10", secondary=True, descending_first=True),
    Column("test_ndcg10", "test NDCG@10", descending_first=True),
    Column("test_hr10", "test HR@10", secondary=True, descending_first=True),
    Column("created", "created", secondary=True, descending_first=True, orders=TIMES),
)
# The filter form's "sort by": every column both ways (a phone shows no headings to click).
SORT_CHOICES = (
    [(DEFAULT_SORT, "newest first")]
    + [
        (f"{'-' if descending else ''}{c.key}", f"{c.label}, {c.orders[descending]}")
        for c in COLUMNS
        if c.key not in ("created", "id")
        for descending in ((True, False) if c.descending_first else (False, True))
    ]
    + [("created", "oldest first")]
)


@dataclass(frozen=True)
class RunsQuery:
    """What a runs table shows: filters, sort and page, read leniently from a query string (a value
    that means nothing here is dropped, so an old or hand-edited link still opens a table)."""

    sort: str = DEFAULT_SORT
    dataset: int | None = None
    status: str = ""
    model: str = ""
    method: str = ""
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunsQuery:
        sort = str(params.get("sort") or "")
        status = str(params.get("status") or "")
        return cls(
            sort=sort if sort.removeprefix("-") in RUN_SORTS else DEFAULT_SORT,
            dataset=_positive(params.get("dataset")),
            status=status if status in TrainingJob.Status.values else "",
            model=str(params.get("model") or "").strip()[:50],
            method=str(params.get("method") or "").strip()[:50],
            page=_positive(params.get("page")) or 1,
        )

    @classmethod
    def from_url(cls, url: str) -> RunsQuery:
        return cls.from_params(QueryDict(urlsplit(url).query))

    @property
    def custom_sort(self) -> str:
        """The sort when it is not the default ("" otherwise): what a filter form carries along."""
        return "" if self.sort == DEFAULT_SORT else self.sort

    @property
    def filtered(self) -> bool:
        return bool(self.dataset or self.status or self.model or self.method)

    def encode(self, **changes: Any) -> str:
        """The query string of this table with ``changes`` (only what differs from the defaults)."""
        query = replace(self, **changes)
        pairs = {
            "dataset": query.dataset or "",
            "status": query.status,
            "model": query.model,
            "method": query.method,
            "sort": query.custom_sort,
            "page": "" if query.page == 1 else query.page,
        }
        return urlencode({k: v for k, v in pairs.items() if v})

    def link(self, **changes: Any) -> str:
        """This table on the runs page, with ``changes``."""
        query = self.encode(**changes)
        return reverse("dashboard:jobs") + (f"?{query}" if query else "")


def _positive(text: Any) -> int | None:
    try:
        number = int(text)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


@dataclass(frozen=True)
class RunRow:
    """One job as the table shows it: its figures read from the run's JSON (the rows of the overview
    and the dataset page come without the query's columns)."""

    job: TrainingJob
    percent: float
    model: str
    method: str
    grow: str
    figures: dict[str, float | None] = field(default_factory=dict)


def run_row(job: TrainingJob) -> RunRow:
    schedule = (job.config or {}).get("schedule") or {}
    return RunRow(
        job=job,
        percent=job_run_percent(job),
        model=training_job_figure(job, "model_name") or "",
        method=training_job_figure(job, "method") or "",
        grow=schedule.get("grow") or "",
        figures={name: training_job_figure(job, name) for name in RUN_FIGURES},
    )


def runs_rows(*, user: Any, query: RunsQuery) -> QuerySet[TrainingJob]:
    """The runs ``user`` may see that ``query`` filters, in its order."""
    return training_job_run_list(
        user=user,
        dataset_id=query.dataset,
        status=query.status,
        model=query.model,
        method=query.method,
        sort=query.sort,
    )


def runs_page(*, user: Any, query: RunsQuery) -> Page:
    """The page of runs ``query`` asks for (the last one when it asks past the end)."""
    return Paginator(runs_rows(user=user, query=query), PER_PAGE).get_page(query.page)


def runs_table_context(
    rows: Any = (), *, query: RunsQuery, url: str, page: Page | None = None
) -> dict[str, Any]:
    """The table's template context: rows, header links, page links, and while one of its jobs is
    active the URL its fragment is re-fetched from (``url``, the same query as the page's).

    Rows given without a ``page`` (the overview's, the dataset page's) show as the first page, at
    most ``PER_PAGE`` of them, the others a page link away on the runs page.
    """
    if page is None:
        page = Paginator(list(rows), PER_PAGE).page(1)
    rows = list(page.object_list)
    headers = []
    for column in COLUMNS:
        current = query.sort.removeprefix("-") == column.key
        descending = query.sort.startswith("-")
        if current:
            toggled = column.key if descending else f"-{column.key}"
        else:
            toggled = f"-{column.key}" if column.descending_first else column.key
        headers.append(
            {
                "column": column,
                "href": query.link(sort=toggled, page=1),
                "sorted": ("descending" if descending else "ascending") if current else "",
            }
        )
    pages = None
    if page.paginator.num_pages > 1:
        pages = {
            "number": page.number,
            "count": page.paginator.num_pages,
            "total": page.paginator.count,
            "previous": query.link(page=page.number - 1) if page.has_previous() else "",
            "next": query.link(page=page.number + 1) if page.has_next() else "",
        }
    return {
        "run_rows": [run_row(job) for job in rows],
        "run_headers": headers,
        "run_pages": pages,
        "runs_query": query,
        "compare_max": MAX_COMPARED,
        "jobs_poll": jobs_any_active(rows),
        "jobs_url": url,
    }
