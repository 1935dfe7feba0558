"""The job page while a run is live: the stage table as it trains, the phases after training, the
whole run's percent and time left, relative times, and the worker log's tail for the job's owner.

Rows are written the way the worker writes them (no training happens here, except in the one test
that reads a real run's log); the scripts that keep the page current run in the browser tests.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from webapp.training.attempts import training_job_run
from webapp.training.configs import job_config_build
from webapp.training.models import TrainingJob
from webapp.training.services import training_job_create
from webapp.training.worker_log import attempt_log_path

Status = TrainingJob.Status
# A 2 → 4 → 8 run whose stages are weighed by their estimated work (∝ depth × steps here).
PLAN = {
    "stages": [{"blocks": b, "steps": 100, "flops": 1e9 * b} for b in (2, 4, 8)],
    "phases": [
        {"name": "final evaluation", "flops": 1e8},
        {"name": "promotion gate", "flops": 0.0},
        {"name": "export", "flops": 5e7},
        {"name": "activation", "flops": 0.0},
    ],
}
TRAINING = {
    "plan": PLAN,
    "stage": 2,
    "stages": 3,
    "blocks": 4,
    "epoch": 2,
    "epochs": 5,
    "step": 107,
    "planned_steps": 190,
    "loss": 5.1,
    "stage_eta_s": 40.0,
    "stage_started_s": 20.0,
    "elapsed_s": 45.0,
    "run_percent": 31.2,
    "run_eta_s": 93.0,
    "metrics": {"mrr@5": 0.11, "ndcg@10": 0.16, "hr@10": 0.3},
    "stage_best": {"mrr@5": 0.1234, "ndcg@10": 0.17, "hr@10": 0.31},
    "popularity": {"mrr@5": 0.02, "ndcg@10": 0.04, "hr@10": 0.08},
    "finished_stages": [
        {
            "stage": 1,
            "blocks": 2,
            "steps": 60,
            "planned_steps": 100,
            "wall_s": 18.5,
            "stopped_by": "patience",
            "best": {"mrr@5": 0.0987, "ndcg@10": 0.15, "hr@10": 0.28},
            "decision": "first stage",
        }
    ],
}


@pytest.fixture
def make_job(ready_dataset):
    def make(*, status: str = Status.RUNNING, progress: dict | None = None, **fields) -> TrainingJob:
        config = job_config_build({"schedule": {"start_blocks": 2, "final_blocks": 8}}).to_dict()
        return TrainingJob.objects.create(
            owner=ready_dataset.owner,
            dataset=ready_dataset,
            config=config,
            status=status,
            progress=progress if progress is not None else dict(TRAINING),
            attempts=1,
            **fields,
        )

    return make


def _timeline(html: str) -> str:
    return re.search(r'<table id="stage-timeline".*?</table>', html, re.S).group(0)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_stage_table_shows_the_running_stage_live_and_why_each_finished_one_ended(browser, make_job):
    job = make_job()
    fragment = browser.get(f"/jobs/{job.pk}/summary").content.decode()
    rows = re.findall(r'<tr class="stage-row.*?</tr>', _timeline(fragment), re.S)
    assert len(rows) == 2
    finished, running = (_text(r) for r in rows)
    assert "60" in finished and "18 s" in finished and "patience" in finished
    assert "0.0987" in finished and "first stage" in finished
    # steps, time within the stage (45 − 20 s) and best so far, not the stage's first moment
    assert "107 of 190" in running and "25 s" in running and "0.1234" in running and "running" in running


def test_the_header_says_epoch_one_based_of_how_many_and_the_run_eta(browser, make_job):
    job = make_job()
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert '<dd id="fact-epoch">2 of 5</dd>' in html
    assert '<dd id="fact-run-eta">1 min 33 s</dd>' in html
    assert '<progress id="run-progress" max="100" value="31.2"' in html
    assert 'id="stage-line">' in html and 'id="phase-line" hidden>' in html
    # phases after training are listed, all waiting, while the run trains
    states = re.findall(r'data-phase="([a-z-]+)" data-state="(\w+)"', html)
    assert states == [
        ("final-evaluation", "waiting"),
        ("promotion-gate", "waiting"),
        ("export", "waiting"),
        ("activation", "waiting"),
    ]


def test_after_training_the_page_shows_the_phase_running_not_a_frozen_stage(browser, make_job):
    phases = [
        {"name": "final evaluation", "state": "running", "done": 6040, "total": 12080, "unit": "cases"},
        {"name": "promotion gate", "state": "waiting"},
        {"name": "export", "state": "waiting"},
        {"name": "activation", "state": "waiting"},
    ]
    job = make_job(progress={**TRAINING, "stage": 3, "step": 40, "planned_steps": 380, "phases": phases})
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="stage-line" hidden>' in html and 'id="phase-line">' in html
    assert '<label for="phase-progress" id="phase-name">final evaluation</label>' in html
    assert '<progress id="phase-progress" max="100" value="50.0">' in html
    assert "6,040 of 12,080 cases" in html
    assert '<dd id="fact-eta">–</dd>' in html  # no stage ETA for a stage that is over
    assert '<dd id="fact-run-eta">–</dd>' in html  # nor one at a speed measured on training

    exporting = [
        {**phases[0], "state": "done", "done": 12080, "wall_s": 31.0},
        {"name": "promotion gate", "state": "done", "note": "activated: validation NDCG@10 0.2 beats …"},
        {"name": "export", "state": "running"},
        {"name": "activation", "state": "waiting"},
    ]
    TrainingJob.objects.filter(pk=job.pk).update(progress={**TRAINING, "phases": exporting})
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert '<label for="phase-progress" id="phase-name">export</label>' in html
    assert '<progress id="phase-progress" max="100">' in html  # indeterminate: export counts nothing
    listed = re.search(r'<ol id="job-phases".*?</ol>', html, re.S).group(0)
    assert re.findall(r'data-state="(\w+)"', listed) == ["done", "done", "running", "waiting"]
    assert "31 s" in _text(listed) and "beats" in listed


def test_a_job_that_failed_during_export_shows_where_it_stopped(browser, make_job):
    phases = [
        {"name": "final evaluation", "state": "done"},
        {"name": "promotion gate", "state": "done"},
        {"name": "export", "state": "running"},
        {"name": "activation", "state": "waiting"},
    ]
    job = make_job(status=Status.FAILED, error="export failed", progress={**TRAINING, "phases": phases})
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    listed = re.search(r'<ol id="job-phases".*?</ol>', html, re.S).group(0)
    assert re.findall(r'data-state="(\w+)"', listed) == ["done", "done", "failed", "skipped"]
    assert 'id="phase-line" hidden>' in html


def test_relative_times_are_rendered_for_the_script_to_keep_current(browser, make_job):
    job = make_job()
    TrainingJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=7))
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    ago = re.search(r'<time id="job-created-ago" class="ago" datetime="([^"]+)">([^<]+)</time>', html)
    assert ago and ago.group(2) == "7\xa0minutes ago"
    assert timezone.datetime.fromisoformat(ago.group(1)) < timezone.now()


def test_the_chart_controls_are_on_the_page(browser, make_job):
    html = browser.get(f"/jobs/{make_job().pk}/").content.decode()
    for element in (
        'id="x-axis-time"',
        'id="x-axis-steps"',
        'id="smoothing"',
        'id="zoom-reset"',
        '<canvas id="valid-chart" data-points="0" data-baseline=""',
    ):
        assert element in html


# -- the worker log -------------------------------------------------------------------------


def _write_log(job: TrainingJob, lines: list[str]) -> None:
    path = attempt_log_path(job, job.attempts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_the_owner_reads_the_tail_of_the_log_without_server_paths_or_credentials(browser, make_job, settings):
    job = make_job()
    job.checkpoint_dir = f"jobs/{job.pk}"
    job.save()
    lines = [f"2026-01-01 10:00:{i % 60:02d},000 INFO trainer.training step {i}" for i in range(250)]
    lines.append(
        f"2026-01-01 10:01:00,000 INFO trainer.schedule wrote {settings.MEDIA_ROOT}/jobs/1/stage-0.pt"
    )
    lines.append("2026-01-01 10:01:01,000 WARNING webapp.training broker redis://:s3cret@redis:6379/0 gone")
    _write_log(job, lines)
    html = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert f'data-log-url="/jobs/{job.pk}/log"' in html
    fragment = browser.get(f"/jobs/{job.pk}/log").content.decode()
    assert fragment.lstrip().startswith('<div id="job-log-tail" data-lines="200"')
    assert "step 51\n" not in fragment and "step 52\n" in fragment and "step 249" in fragment
    assert "wrote jobs/1/stage-0.pt" in fragment and str(settings.MEDIA_ROOT) not in fragment
    assert "redis://redis:6379/0" in fragment and "s3cret" not in fragment


def test_the_log_is_the_owners_a_reader_gets_403_and_a_stranger_404(client, make_job, other_user):
    job = make_job()
    reader = get_user_model().objects.create_user("reader", password="x")
    reader.user_permissions.set(Permission.objects.filter(codename__in=("view_dataset", "view_trainingjob")))
    client.force_login(reader)
    assert client.get(f"/jobs/{job.pk}/").status_code == 200
    assert 'id="job-log"' not in client.get(f"/jobs/{job.pk}/").content.decode()
    response = client.get(f"/jobs/{job.pk}/log")
    assert response.status_code == 403
    assert "only the job's owner can read its log" in response.content.decode().lower().replace("&#x27;", "'")
    client.force_login(other_user)
    assert client.get(f"/jobs/{job.pk}/log").status_code == 404


def test_a_real_run_logs_its_stages_to_the_attempts_file(
    browser, ready_dataset, tiny_config, django_capture_on_commit_callbacks, settings
):
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    loggers = [logging.getLogger(name) for name in ("trainer", "webapp.training")]
    before = [(list(logger.handlers), logger.level) for logger in loggers]
    done = training_job_run(job_id=job.pk, worker="w1")
    assert done.status == Status.SUCCEEDED, done.error
    assert [(list(logger.handlers), logger.level) for logger in loggers] == before  # detached after
    log = attempt_log_path(done, 1).read_text()
    assert re.search(r"^\S+ \S+ INFO trainer\.schedule stage 1: +1 blocks", log, re.M), log
    assert "INFO webapp.training.attempts job #" in log and "succeeded as" in log
    fragment = browser.get(f"/jobs/{done.pk}/log").content.decode()
    assert "stage 2:" in fragment and str(settings.MEDIA_ROOT) not in fragment
