"""Training services: config checks, idempotent claims, a tiny real run, cancel, resume after a crash."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from serving.artifact import read_artifact
from trainer.export import ExportError
from webapp.core.exceptions import ApplicationError, ConflictError
from webapp.registry.models import ModelVersion
from webapp.training import attempts
from webapp.training.attempts import training_job_run
from webapp.training.models import TrainingJob
from webapp.training.services import (
    training_job_cancel,
    training_job_claim,
    training_job_create,
    training_job_resume,
    training_jobs_requeue_orphaned,
)

Status = TrainingJob.Status


@pytest.fixture
def job(ready_dataset, tiny_config, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    assert len(callbacks) == 1  # the run task, enqueued once the job row is committed
    return job


def test_the_default_schedule_fits_every_model():
    from webapp.training.configs import job_config_build

    sasrec = job_config_build({"model": "sasrec"})
    assert (sasrec.schedule.start_blocks, sasrec.schedule.final_blocks, sasrec.schedule.grow) == (
        1,
        8,
        "auto",
    )
    assert sasrec.model_config.norm_position == "pre"  # so that function-preserving stacking applies
    nextitnet = job_config_build({})
    assert (nextitnet.schedule.start_blocks, nextitnet.schedule.final_blocks) == (2, 16)
    assert nextitnet.schedule.method == "preserving" and nextitnet.schedule.keep == "best"


def test_create_stores_the_complete_config(job):
    assert job.status == Status.PENDING
    assert job.config["train"]["lr"] == 0.001  # defaults filled in
    assert job.config["schedule"]["final_blocks"] == 2
    assert job.checkpoint_dir == f"jobs/{job.pk}"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"trian": {}}, "unknown key(s) trian"),
        ({"train": {"lerning_rate": 0.1}}, "unknown key(s) lerning_rate"),
        ({"model": "bert4rec"}, "unknown model"),
        ({"schedule": {"method": "sideways"}}, "unknown stacking method"),
        ({"schedule": {"start_blocks": 3, "final_blocks": 16, "grow": "fixed"}}, "power of two"),
        ({"schedule": {"start_blocks": 8, "final_blocks": 4}}, "at least start_blocks"),
        ({"schedule": {"grow": "always"}}, "grow must be one of"),
        ({"schedule": {"keep": "last"}}, "keep must be one of"),
        ({"schedule": {"min_gain": -0.1}}, "min_gain"),
        # The default schedule stacks function-preserving, which a post-LN SASRec cannot: said now.
        ({"model": "sasrec", "model_options": {"norm_position": "post"}}, "needs pre-LN blocks"),
        ({"model_options": {"blocks": 4}}, "schedule.final_blocks"),
        ({"train": {"device": "tpu"}}, "unknown device"),
        ({"split": {"split": "sessions"}}, "split.split must be one of"),
        ({"warm_start": True}, "warm_start needs an active version"),
        ([], "JSON object"),
    ],
)
def test_bad_configs_are_rejected_with_the_reason(ready_dataset, config, words):
    with pytest.raises(ApplicationError) as excinfo:
        training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=config)
    assert words in excinfo.value.message
    assert not TrainingJob.objects.exists()


def test_a_dataset_that_is_not_ready_cannot_be_trained_on(ready_dataset, tiny_config):
    ready_dataset.status = "FAILED"
    ready_dataset.save()
    with pytest.raises(ConflictError, match="ready"):
        training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)


def test_claim_is_idempotent(job):
    assert training_job_claim(job_id=job.pk, worker="w1").status == Status.RUNNING
    assert training_job_claim(job_id=job.pk, worker="w2") is None  # a redelivered message
    job.refresh_from_db()
    assert job.worker == "w1" and job.attempts == 1


def test_run_trains_exports_and_activates_the_first_version(job, django_capture_on_commit_callbacks):
    done = training_job_run(job_id=job.pk, worker="w1")
    assert done.status == Status.SUCCEEDED, done.error
    assert [s["blocks"] for s in done.stages] == [1, 2]
    assert all(s["wall_s"] > 0 and s["steps"] > 0 for s in done.stages)
    assert done.progress["stage"] == 2 and done.progress["blocks"] == 2
    assert set(done.metrics) == {"valid", "test", "kept", "popularity"} and "ndcg@10" in done.metrics["test"]
    assert done.metrics["kept"] == {"stage": 2, "blocks": 2, "growth": done.metrics["kept"]["growth"]}
    assert set(done.metrics["popularity"]) == {"valid", "test"}  # the same cases, the same evaluation
    version = ModelVersion.objects.get(job=done)
    assert version.number == 1 and version.depth == 2 and version.method == "adjacent"
    # Nothing served the dataset: the gate only asks the model to beat popularity, and it does.
    assert version.promotion["decision"] == "activated" and version.promotion["serving"] is None
    assert version.promotion["popularity"] == done.metrics["popularity"]["valid"]["ndcg@10"]
    assert version.is_active
    assert (version.artifact_path / "model.onnx").is_file()
    assert (done.checkpoint_path / "attempt-1" / "stages" / "stage-0.pt").is_file()
    assert version.artifact_dir.endswith(f"job-{done.pk}-attempt-1")  # the attempt's own files
    assert training_job_run(job_id=job.pk) is None  # a second delivery runs nothing


def test_cancel_a_queued_job_ends_it_at_once(job):
    assert training_job_cancel(job=job).status == Status.CANCELLED
    assert training_job_run(job_id=job.pk) is None
    with pytest.raises(ConflictError, match="already finished"):
        training_job_cancel(job=job)


def test_cancel_during_the_run_stops_it_and_keeps_the_stage_checkpoint(job, monkeypatch):
    original = attempts._Progress.__call__

    def cancel_after_first_stage(self, staged):
        original(self, staged)
        if staged.stage == 0 and staged.event.kind == "end":
            training_job_cancel(job=TrainingJob.objects.get(pk=self.job_id))

    monkeypatch.setattr(attempts._Progress, "__call__", cancel_after_first_stage)
    monkeypatch.setattr(attempts, "CANCEL_CHECK_S", 0.0)
    done = training_job_run(job_id=job.pk, worker="w1")
    assert done.status == Status.CANCELLED
    assert (done.checkpoint_path / "attempt-1" / "stages" / "stage-0.pt").is_file()
    assert not (done.checkpoint_path / "attempt-1" / "stages" / "stage-1.pt").exists()
    assert not ModelVersion.objects.exists()


def test_a_job_left_running_by_a_dead_worker_resumes_from_its_last_stage(job, monkeypatch):
    original = attempts._Progress.__call__

    def die_in_second_stage(self, staged):
        original(self, staged)
        if staged.stage == 1:
            raise KeyboardInterrupt  # stands in for the worker being killed

    monkeypatch.setattr(attempts._Progress, "__call__", die_in_second_stage)
    with pytest.raises(KeyboardInterrupt):
        training_job_run(job_id=job.pk, worker="gpu@host")
    job.refresh_from_db()
    assert job.status == Status.RUNNING  # nobody finished it
    first_stage = (job.checkpoint_path / "attempt-1" / "stages" / "stage-0.pt").stat().st_mtime_ns

    assert training_jobs_requeue_orphaned(worker="other@host") == []  # heartbeat still fresh
    with pytest.raises(ConflictError, match="running"):
        training_job_resume(job=job)
    monkeypatch.undo()
    # The same worker name starting again knows the job is orphaned.
    assert training_jobs_requeue_orphaned(worker="gpu@host") == [job.pk]
    job.refresh_from_db()
    assert job.status == Status.PENDING

    done = training_job_run(job_id=job.pk, worker="gpu@host")
    assert done.status == Status.SUCCEEDED, done.error
    assert done.attempts == 2
    # The second attempt starts from the first one's finished stage, in a folder of its own.
    assert (done.checkpoint_path / "attempt-2" / "stages" / "stage-0.pt").stat().st_mtime_ns == first_stage
    assert [s["blocks"] for s in done.stages] == [1, 2]


def test_stale_heartbeat_marks_a_job_orphaned(job, settings):
    training_job_claim(job_id=job.pk, worker="w1")
    TrainingJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.STUDIO_HEARTBEAT_STALE_S + 1)
    )
    job.refresh_from_db()
    assert job.is_stale
    assert training_jobs_requeue_orphaned() == [job.pk]


def test_a_failed_run_records_the_reason_and_can_be_resumed(job):
    job.dataset.events_path.unlink()
    done = training_job_run(job_id=job.pk)
    assert done.status == Status.FAILED and "parse it again" in done.error
    assert training_job_resume(job=done).status == Status.PENDING


def test_a_failed_run_says_why_briefly_and_names_no_server_path(job, monkeypatch, settings):
    from trainer.configs import ConfigError

    where = f"{settings.MEDIA_ROOT}/datasets/{job.dataset.pk}/events.tsv"

    def fail(*args, **kwargs):
        raise ConfigError(f"{where}: " + "bad value; " * 5000)

    monkeypatch.setattr(attempts, "_train_and_publish", fail)
    done = training_job_run(job_id=job.pk)
    assert done.status == Status.FAILED and done.error.startswith("datasets/")
    assert len(done.error) <= 500 and str(settings.MEDIA_ROOT) not in done.error


def test_retraining_on_an_increment_starts_from_the_deployed_model(
    job, upload, tiny_config, django_capture_on_commit_callbacks
):
    """Continual learning: the grown dataset's job stacks the active 2-block model to 4 blocks."""
    from tests.webapp.conftest import synthetic_log
    from webapp.datasets.services import dataset_create, dataset_parse

    base = training_job_run(job_id=job.pk)
    assert base.status == Status.SUCCEEDED, base.error
    more = "user,item,timestamp\n" + "\n".join(
        synthetic_log(users=5, items=35, start_user=50).splitlines()[1:]
    )
    with django_capture_on_commit_callbacks():
        grown = dataset_create(owner=job.owner, upload=upload(more + "\n"), parent=job.dataset)
    grown = dataset_parse(dataset_id=grown.pk)
    assert grown.status == "READY", grown.error

    config = {**tiny_config, "schedule": {**tiny_config["schedule"], "start_blocks": 1}, "warm_start": True}
    with pytest.raises(ApplicationError, match="start_blocks 2"):
        training_job_create(owner=job.owner, dataset=grown, config=config)
    config["schedule"] = {
        "start_blocks": 2,
        "final_blocks": 4,
        "method": "adjacent",
        "grow": "fixed",
        "keep": "final",
        "stage_steps": 2,
    }
    with django_capture_on_commit_callbacks():
        retrain = training_job_create(owner=job.owner, dataset=grown, config=config)
    done = training_job_run(job_id=retrain.pk)
    assert done.status == Status.SUCCEEDED, done.error
    assert done.stages[0]["stopped_by"] == "initial" and [s["blocks"] for s in done.stages] == [2, 4]
    version = ModelVersion.objects.get(job=done)
    assert version.dataset == grown and version.depth == 4
    assert version.promotion["serving"]["version"] == ModelVersion.objects.get(job=base).label
    assert version.is_active is (version.promotion["decision"] == "activated")  # the gate decides


def test_a_log_of_one_item_never_becomes_a_served_model(
    user, upload, tiny_config, django_capture_on_commit_callbacks
):
    """Every metric of such a model would read 1.0000: training refuses, and nothing is registered."""
    from webapp.datasets.services import dataset_create, dataset_parse

    log = "user,item,timestamp\n" + "".join(
        f"u{u},only,{1_600_000_000 + 10 * t}\n" for u in range(20) for t in range(6)
    )
    with django_capture_on_commit_callbacks():
        dataset = dataset_create(owner=user, upload=upload(log))
    dataset = dataset_parse(dataset_id=dataset.pk)
    if dataset.status != "READY":  # refused at parse time already: as good
        assert dataset.error
        return
    with django_capture_on_commit_callbacks():
        job = training_job_create(owner=user, dataset=dataset, config=tiny_config)
    done = training_job_run(job_id=job.pk)
    assert done.status == Status.FAILED
    assert (
        done.error
        == "the log has 1 distinct item: there is nothing to rank; a recommender needs at least 2 items"
    )
    assert not ModelVersion.objects.exists()


def test_an_attempt_that_lost_its_lease_stops_without_writing(job, monkeypatch, settings):
    """A frozen worker's job is requeued and taken by another worker; when the first wakes up it
    writes nothing more (no progress, no checkpoint, no version), and the job ends once, by the new one."""
    original = attempts._Progress.__call__
    taken = {}

    def frozen_then_woken(self, staged):
        if staged.stage == 1 and not taken:
            # Meanwhile (the heartbeat went stale) the reconciler requeued the job for another worker.
            stale = timezone.now() - timedelta(seconds=settings.STUDIO_HEARTBEAT_STALE_S + 1)
            TrainingJob.objects.filter(pk=self.job_id).update(heartbeat_at=stale)
            taken["requeued"] = training_jobs_requeue_orphaned()
        original(self, staged)

    monkeypatch.setattr(attempts._Progress, "__call__", frozen_then_woken)
    assert training_job_run(job_id=job.pk, worker="gpu@frozen") is None  # stopped, wrote nothing
    assert taken["requeued"] == [job.pk]
    job.refresh_from_db()
    assert job.status == Status.PENDING and job.worker == "" and not ModelVersion.objects.exists()
    assert not (job.checkpoint_path / "attempt-1" / "stages" / "stage-1.pt").exists()

    monkeypatch.undo()
    done = training_job_run(job_id=job.pk, worker="gpu@other")
    assert done.status == Status.SUCCEEDED and done.attempts == 2 and done.worker == "gpu@other"
    version = ModelVersion.objects.get()
    assert version.artifact_dir.endswith("-attempt-2") and version.checkpoint_file.startswith(
        f"jobs/{job.pk}/attempt-2/"
    )
    read_artifact(version.artifact_path)  # its files match the checksums in its metadata


def test_database_connections_lost_mid_run_are_retried_not_fatal(
    transactional_db, ready_dataset, tiny_config, monkeypatch, settings
):
    """The database drops the connection twice under the run's progress writes (as a PostgreSQL
    restart or pg_terminate_backend does): the run reconnects, waits, and ends as it would have."""
    from django.db import OperationalError

    settings.STUDIO_DB_RETRY_WAIT_S = 0.01
    original = attempts.TrainingPoint.objects.bulk_create
    failures = {"left": 2}

    def flaky(objs, *args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("terminating connection due to administrator command")
        return original(objs, *args, **kwargs)

    # No test transaction around this one: a worker runs in autocommit, where a connection can be renewed.
    job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    monkeypatch.setattr(attempts.TrainingPoint.objects, "bulk_create", flaky)
    done = training_job_run(job_id=job.pk, worker="w1")
    assert failures["left"] == 0
    assert done.status == Status.SUCCEEDED, done.error
    assert ModelVersion.objects.filter(job=done).exists()


def _fail_export_check(monkeypatch, failure: Exception) -> None:
    import trainer.export

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(trainer.export, "check_parity", fail)


def _no_staging_left(job: TrainingJob) -> bool:
    artifacts = job.checkpoint_path.parents[1] / "artifacts"
    return not [p for p in artifacts.rglob("*") if p.name.startswith(".")]


def test_a_failed_export_says_why_and_leaves_no_temporary_folder(job, monkeypatch):
    _fail_export_check(monkeypatch, ExportError("ONNX Runtime and PyTorch disagree on model.onnx (k=10)"))
    done = training_job_run(job_id=job.pk)
    assert (done.status, done.error) == (
        Status.FAILED,
        "ONNX Runtime and PyTorch disagree on model.onnx (k=10)",
    )
    assert _no_staging_left(done) and not ModelVersion.objects.exists()


def test_an_unexpected_export_error_shows_a_reference_and_no_server_path(
    transactional_db, ready_dataset, tiny_config, monkeypatch
):
    # Autocommit, as in a worker: the run closes its connection after an unexpected error.
    job = training_job_create(owner=ready_dataset.owner, dataset=ready_dataset, config=tiny_config)
    _fail_export_check(monkeypatch, RuntimeError("cannot write /srv/studio/var/media/artifacts/x/model.onnx"))
    done = training_job_run(job_id=job.pk)
    assert done.status == Status.FAILED
    assert done.error.startswith("internal error (RuntimeError), reference ") and "/srv" not in done.error
    assert done.error.endswith("; see the worker log")
    assert _no_staging_left(done) and not ModelVersion.objects.exists()
