"""The runs table (sorted, filtered, paged on the server) and the comparison of any number of runs."""

from __future__ import annotations

import json
import re

import pytest

from webapp.datasets.models import Dataset
from webapp.training.configs import job_config_build
from webapp.training.models import TrainingJob, TrainingPoint

Status = TrainingJob.Status
SUCCEEDED, RUNNING, FAILED = Status.SUCCEEDED, Status.RUNNING, Status.FAILED


@pytest.fixture
def run(ready_dataset):
    """A job row as a run leaves it: figures in its JSON, validation points on its curve."""

    def make(
        *,
        dataset: Dataset | None = None,
        method: str = "adjacent",
        status: str = SUCCEEDED,
        ndcg: float | None = 0.2,
        elapsed: float | None = 60.0,
        curve: tuple[tuple[float, float], ...] = ((10.0, 0.1), (20.0, 0.2)),
        train: dict | None = None,
        model: str = "nextitnet",
    ) -> TrainingJob:
        dataset = dataset or ready_dataset
        schedule = {"final_blocks": 8, "method": "none"} if method == "none" else {"method": method}
        config = job_config_build({"model": model, "schedule": schedule, "train": train or {}}).to_dict()
        finished = status == SUCCEEDED
        job = TrainingJob.objects.create(
            owner=dataset.owner,
            dataset=dataset,
            config=config,
            status=status,
            progress={"stage": 1, "stages": 2, "blocks": 2, "step": 5, "planned_steps": 10}
            | ({"elapsed_s": elapsed} if elapsed is not None else {}),
            metrics={
                "kept": {"stage": 1, "blocks": 4, "growth": "stopped growing at 4 blocks"},
                "valid": {"mrr@5": 0.1, "ndcg@10": 0.15, "hr@10": 0.3},
                "test": {"ndcg@10": ndcg, "hr@10": 0.4} if ndcg is not None else {},
            }
            if finished
            else None,
        )
        TrainingPoint.objects.bulk_create(
            TrainingPoint(
                job=job, kind="valid", stage=1, blocks=2, step=int(t), epoch=1, wall_s=t, metrics={"mrr@5": v}
            )
            for t, v in curve
        )
        return job

    return make


def _row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="job-row" data-job="(\d+)"', html)]


def _dataset(owner, name: str) -> Dataset:
    return Dataset.objects.create(
        owner=owner, name=name, file="x.csv", original_filename="x.csv", size_bytes=1, status="READY"
    )


# -- the runs table -----------------------------------------------------------------------------


def test_runs_sort_by_a_figure_numerically_with_runs_without_it_last(browser, run):
    tiny, high, mid = run(ndcg=5e-05, elapsed=9.5), run(ndcg=0.3, elapsed=100.0), run(ndcg=0.25, elapsed=10.0)
    failed = run(status=FAILED, ndcg=None, elapsed=None)
    html = browser.get("/jobs/", {"sort": "-test_ndcg10"}).content.decode()
    assert _row_ids(html) == [high.pk, mid.pk, tiny.pk, failed.pk]
    # As text, "5e-05" would sort above "0.3", and "100.0" between "10.0" and "9.5".
    assert _row_ids(browser.get("/jobs/?sort=test_ndcg10").content.decode()) == [
        tiny.pk,
        mid.pk,
        high.pk,
        failed.pk,
    ]
    assert _row_ids(browser.get("/jobs/?sort=duration_s").content.decode()) == [
        tiny.pk,
        mid.pk,
        high.pk,
        failed.pk,
    ]
    # The sorted column's heading says so and flips the order; another column starts at its best.
    heading = '<th aria-sort="descending"><a class="sort" data-sort="test_ndcg10"'
    assert f'{heading} href="/jobs/?sort=test_ndcg10"' in html
    assert 'data-sort="valid_ndcg10" href="/jobs/?sort=-valid_ndcg10"' in html
    assert 'data-sort="dataset" href="/jobs/?sort=dataset"' in html
    assert '<td class="figure" data-label="test NDCG@10">0.3000</td>' in html
    # An unknown sort key opens the table newest first.
    newest = browser.get("/jobs/?sort=-password").content.decode()
    assert _row_ids(newest) == [failed.pk, mid.pk, high.pk, tiny.pk]


def test_runs_filter_by_status_dataset_model_and_method(browser, run, user, ready_dataset):
    other = _dataset(user, "other log")
    done, scratch = run(), run(method="none")
    running = run(status=RUNNING, dataset=other)
    sasrec = run(model="sasrec", dataset=other)
    ids = lambda query: _row_ids(browser.get("/jobs/", query).content.decode())  # noqa: E731
    assert ids({"status": "RUNNING"}) == [running.pk]
    assert ids({"dataset": other.pk}) == [sasrec.pk, running.pk]
    assert ids({"method": "none"}) == [scratch.pk]
    assert ids({"model": "sasrec"}) == [sasrec.pk]
    assert ids({"dataset": ready_dataset.pk, "status": "SUCCEEDED", "sort": "id"}) == [done.pk, scratch.pk]
    assert ids({"status": "BOGUS", "dataset": "x"}) == [sasrec.pk, running.pk, scratch.pk, done.pk]
    html = browser.get("/jobs/", {"method": "none", "sort": "-duration_s"}).content.decode()
    assert '<option value="none" selected>from scratch</option>' in html and "clear filters" in html
    assert '<option value="-duration_s" selected>duration, longest first</option>' in html
    # Sorting keeps the filters.
    assert 'href="/jobs/?method=none&amp;sort=status"' in html
    empty = browser.get("/jobs/", {"model": "gru4rec"}).content.decode()
    assert "no training jobs match these filters" in empty


def test_runs_pages_keep_the_query_and_the_fragment_polls_with_it(browser, run, ready_dataset):
    config = job_config_build({"model": "nextitnet"}).to_dict()
    TrainingJob.objects.bulk_create(
        TrainingJob(owner=ready_dataset.owner, dataset=ready_dataset, config=config, status=SUCCEEDED)
        for _ in range(51)
    )
    running = run(status=RUNNING)
    first = browser.get("/jobs/", {"sort": "id", "dataset": ready_dataset.pk}).content.decode()
    assert len(_row_ids(first)) == 50 and "page 1 of 2 (52 runs)" in first
    assert f'href="/jobs/?dataset={ready_dataset.pk}&amp;sort=id&amp;page=2"' in first
    second = browser.get("/jobs/", {"sort": "id", "dataset": ready_dataset.pk, "page": 2}).content.decode()
    assert _row_ids(second) == [TrainingJob.objects.order_by("id")[50].pk, running.pk]
    # The running job is on page 2: that page polls itself, with its query.
    assert f'hx-get="/jobs/table?dataset={ready_dataset.pk}&amp;sort=id&amp;page=2"' in second
    assert 'hx-trigger="every 2s"' not in first
    fragment = browser.get("/jobs/table", {"dataset": ready_dataset.pk, "sort": "id", "page": 2}).content
    assert fragment.decode().lstrip().startswith('<div id="jobs-table"') and b"<main" not in fragment
    assert _row_ids(fragment.decode()) == _row_ids(second)
    # A page past the end shows the last one.
    assert _row_ids(browser.get("/jobs/?sort=id&page=9").content.decode()) == _row_ids(second)
    # The overview's table: its limit, no page links; its headings lead to the runs page.
    home = browser.get("/jobs/table?limit=8").content.decode()
    assert len(_row_ids(home)) == 8 and 'id="runs-pages"' not in home
    assert 'href="/jobs/?sort=-test_ndcg10"' in home


def test_runs_of_another_users_dataset_are_a_404_page(browser, other_user):
    theirs = _dataset(other_user, "theirs")
    assert browser.get("/jobs/", {"dataset": theirs.pk}).status_code == 404


def test_ticked_runs_keep_their_tick_while_the_table_refreshes(browser, run):
    job = run(status=RUNNING)
    html = browser.get("/jobs/").content.decode()
    assert '<form class="runs-form" method="get" action="/compare/">' in html
    assert f'name="runs" value="{job.pk}" id="pick-{job.pk}" hx-preserve' in html
    assert 'id="compare-selected"' not in html  # one run: nothing to compare it with
    run()
    assert 'id="compare-selected"' in browser.get("/jobs/").content.decode()


# -- comparing runs ------------------------------------------------------------------------------


def _table(html: str, table_id: str) -> str:
    return re.search(rf'<table [^>]*id="{table_id}">.*?</table>', html, re.S).group(0)


def _comparison_data(html: str) -> dict:
    return json.loads(re.search(r'id="comparison-data"[^>]*>(.*?)</script>', html, re.S).group(1))


def test_three_runs_compare_curves_figures_and_only_the_settings_that_differ(browser, run):
    scratch = run(method="none", ndcg=0.2, curve=((10.0, 0.1), (100.0, 0.3)))
    fast = run(ndcg=0.3, curve=((10.0, 0.2), (25.0, 0.299), (40.0, 0.31)))
    slow = run(ndcg=0.25, train={"lr": 0.002}, curve=((50.0, 0.2), (80.0, 0.25)))
    response = browser.get("/compare/", {"runs": f"{scratch.pk},{fast.pk}", "b": slow.pk})
    html = response.content.decode()
    assert response.status_code == 200 and 'id="speedup"' not in html  # the headline is a pair's
    data = _comparison_data(html)
    assert [r["job"] for r in data["runs"]] == [scratch.pk, fast.pk, slow.pk]
    assert [len(r["curve"]) for r in data["runs"]] == [2, 3, 2]
    assert data["runs"][1]["legend"] == f"#{fast.pk} nextitnet 4 adjacent"
    assert 'data-chart="runs"' in html and "dashboard/js/compare.js" in html
    # Each run's time to scratch's best (0.30, within 1 %): the fast one at 25 s, 4× faster.
    assert data["reference"] == scratch.pk and data["runs"][1]["reached"]["speedup"] == pytest.approx(4.0)
    assert data["runs"][2]["reached"] is None
    assert f"Speedups against scratch (job #{scratch.pk})" in html
    figures = _table(html, "run-figures")
    assert figures.count('class="run-figures-row"') == 3
    assert '<td class="best">0.3000</td>' in figures and "4.0×" in figures  # best test NDCG@10, speedup
    diff = _table(html, "config-diff")
    keys = re.findall(r'data-key="([^"]+)"', diff)
    assert "schedule.method" in keys and "train.lr" in keys
    assert "model" not in keys and "train.epochs" not in keys  # the same in all three
    lr = re.search(r'data-key="train.lr">(.*?)</tr>', diff, re.S).group(1)
    assert re.findall(r"<td>(.*?)</td>", lr)[2] == "0.002"


def test_the_runs_table_ticks_arrive_as_a_comparison(browser, run):
    first, second = run(), run(method="none")
    html = browser.get(f"/compare/?runs={first.pk}&runs={second.pk}").content.decode()
    assert 'id="speedup"' in html
    assert [r["job"] for r in _comparison_data(html)["runs"]] == [first.pk, second.pk]
    assert f'name="runs" value="{first.pk}" checked' in html


def test_compare_says_in_words_what_it_cannot_compare(browser, run, other_user):
    job = run()
    one = browser.get("/compare/", {"runs": job.pk}).content.decode()
    assert "pick at least two runs to compare" in one and 'id="compare-chart"' not in one
    assert "pick at least two runs to compare" in browser.get(f"/compare/?a={job.pk}").content.decode()
    many = browser.get("/compare/", {"runs": ",".join(str(i) for i in range(1, 14))}).content.decode()
    assert "compare at most 12 runs at a time (13 are picked)" in many
    theirs = run(dataset=_dataset(other_user, "theirs"))
    assert browser.get("/compare/", {"runs": f"{job.pk},{theirs.pk}"}).status_code == 404
    assert browser.get("/compare/", {"runs": f"{job.pk},nope"}).status_code == 404
    assert "pick at least" not in browser.get("/compare/").content.decode()  # nothing asked yet
