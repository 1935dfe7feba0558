"""One run on several processes: PyTorch DistributedDataParallel, one process per GPU (gloo on the CPU).

**How a run is split.** Every process (rank) builds the same batches in the same order
(:class:`trainer.data.batching.TrainBatcher` depends only on the seed), and each takes its own
contiguous slice of every global batch (:meth:`DistributedContext.shard`). ``train.batch_size`` is
the global batch, so a run on N processes sees the same windows in the same order as on one, and
its loss curve follows the single-process one up to float summation order (tests/trainer/
test_distributed.py states the tolerance). Each rank's loss is rescaled by its share of the batch's
target positions, so DDP's mean over ranks is the mean over the whole batch's positions.

**Who decides.** Rank 0 alone validates, reads the cancel callback and the clock, emits progress
and writes checkpoints; its decisions (metrics, stop, a due progress event, a spent time budget)
are broadcast to every rank over a small gloo group on the host, so the ranks never wait for the
GPU to agree and always stop together. All ranks hold identical weights after every step (DDP
gives each the same averaged gradients), and stacking is a pure function of the model
(:func:`trainer.stacking.stack`), so every rank stacks identically; each stage wraps its own
model in DDP again.

**Launching.** :func:`run_schedule_distributed` runs ``torchrun --nproc-per-node N -m
trainer.distributed <spec.json>`` as a child process and hands its caller the same
:class:`~trainer.schedule.ScheduleResult` that :func:`trainer.schedule.run_schedule` returns: rank 0
appends each progress event to a JSON-lines file that the caller's process reads back into its own
``on_progress`` (so a web worker keeps its database writes and lease checks), and ``should_stop``
is relayed to the ranks as a stop file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from trainer.configs import ConfigError

logger = logging.getLogger(__name__)

# How long a rank waits at a collective for the others: rank 0 validates alone while the others wait
# at the broadcast of its metrics, and a validation of a large log can take minutes.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)
POLL_S = 0.2  # how often the launching process reads new progress events and asks should_stop


class DistributedError(RuntimeError):
    """A multi-process run that could not start or ended without a result."""


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a multi-process run; ``control`` is the host-side (gloo) group."""

    rank: int
    world_size: int
    device: torch.device
    control: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of the rows of a global batch (possibly empty for a short one)."""
        return torch.tensor_split(batch, self.world_size)[self.rank]

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (a picklable object sent over the host group)."""
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def decide(self, *flags: bool) -> tuple[bool, ...]:
        """Rank 0's flags on every rank: one small host-side broadcast, the GPU is not waited for."""
        tensor = torch.tensor([int(f) for f in flags], dtype=torch.int32)
        dist.broadcast(tensor, src=0, group=self.control)
        return tuple(bool(v) for v in tensor.tolist())

    def global_loss(
        self, loss: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss to back-propagate, the global batch's mean loss, its target positions).

        ``loss`` is this rank's mean over its ``positions``; the global mean is
        Σ_r n_r·L_r / N. DDP averages gradients over ranks, so each rank back-propagates
        L_r · n_r · W / N, whose mean over the W ranks is the global mean. A rank whose slice has no
        positions contributes 0 (its mean over nothing is NaN).
        """
        local = torch.where(positions > 0, loss, torch.zeros_like(loss))
        n = positions.to(local.dtype)
        totals = torch.stack([local.detach() * n, n])
        dist.all_reduce(totals)
        total_loss, total_n = totals[0], totals[1]
        scaled = local * (n * self.world_size / total_n)
        return scaled, total_loss / total_n, total_n.to(torch.int64)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DDP: gradients averaged over ranks during the backward pass.

        Buffers are not broadcast at each forward: every rank's are equal (same build, same steps).
        """
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the run torchrun started (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR/PORT``).

    CUDA ranks use NCCL, each on the GPU numbered by its ``LOCAL_RANK``; CPU ranks use gloo.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise DistributedError("not started by torchrun: RANK and WORLD_SIZE are not set")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(
                f"rank {rank} needs GPU {local_rank}, but {torch.cuda.device_count()} are visible"
            )
        torch.cuda.set_device(local_rank)
        where = torch.device("cuda", local_rank)
    else:
        where = torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    # Decisions travel between hosts' CPUs; on NCCL a separate gloo group keeps them off the GPU.
    control = dist.new_group(backend="gloo", timeout=COLLECTIVE_TIMEOUT) if use_cuda else None
    return DistributedContext(rank, world, where, control)


def visible_gpus() -> int:
    """CUDA GPUs this process can use (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def state_digest(model: torch.nn.Module) -> str:
    """A SHA-256 of the model's weights: equal on every rank, or the ranks have drifted apart."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ---- the launched side: python -m trainer.distributed <spec.json> --------------------------------


def _event_to_json(staged: Any) -> str:
    return json.dumps(dataclasses.asdict(staged))


def _event_from_json(line: str) -> Any:
    from trainer.schedule import ScheduleEvent
    from trainer.training import ProgressEvent

    data = json.loads(line)
    return ScheduleEvent(**{**data, "event": ProgressEvent(**data["event"])})


def _run_rank(spec: dict[str, Any]) -> None:
    """One rank of a launched run: the split, the schedule, and (rank 0) the result files."""
    from trainer.checkpoint import load_checkpoint, save_checkpoint
    from trainer.models import model_config
    from trainer.runs import DataSpec, prepare_split
    from trainer.schedule import StackingSchedule, run_schedule
    from trainer.training import TrainConfig

    train = TrainConfig.from_dict(spec["train"])
    context = init_distributed(train.device)
    out = Path(spec["output_dir"])
    stop_file = Path(spec["stop_file"])
    try:
        split = prepare_split(DataSpec.from_dict(spec["data"]))
        initial = load_checkpoint(spec["initial_model"]).model if spec.get("initial_model") else None
        events = open(out / "events.jsonl", "a", encoding="utf-8") if context.is_main else None  # noqa: SIM115

        def on_progress(staged: Any) -> None:
            events.write(_event_to_json(staged) + "\n")
            events.flush()

        result = run_schedule(
            spec["model"],
            model_config(spec["model"], spec["model_config"]),
            split,
            train,
            StackingSchedule.from_dict(spec["schedule"]),
            on_progress=on_progress if context.is_main else None,
            should_stop=stop_file.exists if context.is_main else None,
            checkpoint_dir=spec.get("checkpoint_dir"),
            initial_model=initial,
            dist=context,
        )
        digests = [None] * context.world_size
        dist.all_gather_object(digests, state_digest(result.model), group=context.control)
        if context.is_main:
            events.close()
            if len(set(digests)) != 1:
                raise DistributedError(f"the ranks ended with different weights: {digests}")
            save_checkpoint(
                out / "result.pt",
                model=result.model.cpu(),
                vocab=split.vocab,
                train_config=train.to_dict(),
                extra={"result": result.to_dict(), "digests": digests, "world_size": context.world_size},
            )
        # Every rank leaves together: a rank that tore its process group down while rank 0 was
        # still saving could abort in gloo's teardown ("terminate called without an active exception").
        dist.barrier(group=context.control)
    except Exception as exc:
        if context.is_main:  # the launcher raises it again as the same kind of error, with its message
            error = {"type": type(exc).__name__, "message": str(exc)}
            (out / "error.json").write_text(json.dumps(error), encoding="utf-8")
        raise
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    """``python -m trainer.distributed <spec.json>``, started by torchrun once per process."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: torchrun --nproc-per-node N -m trainer.distributed <spec.json>", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format=f"rank {os.environ.get('RANK', '?')}: %(levelname)s %(name)s: %(message)s"
    )
    _run_rank(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    return 0


# ---- the launching side ---------------------------------------------------------------------------


def _errors() -> dict[str, type[Exception]]:
    """The trainer's own error types a rank may end with, raised again under the same type."""
    from trainer.checkpoint import CheckpointError
    from trainer.data import DataError
    from trainer.schedule import TimeLimitError

    kinds: list[type[Exception]] = [ConfigError, DataError, CheckpointError, TimeLimitError]
    return {k.__name__: k for k in kinds}


@contextlib.contextmanager
def _child(command: list[str], log_path: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """The launched torchrun in its own process group, ended with all its ranks on the way out."""
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            yield child
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()


def run_schedule_distributed(
    model_name: str,
    model_config: Any,
    data: Any,
    config: Any,
    schedule: Any,
    *,
    processes: int,
    workdir: str | Path,
    on_progress: Callable[[Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_dir: str | Path | None = None,
    initial_model: Any = None,
) -> Any:
    """:func:`trainer.schedule.run_schedule` on ``processes`` ranks started by torchrun on this host.

    ``data`` is the :class:`trainer.runs.DataSpec` every rank reads its split from (the same split as
    ``prepare_split(data)`` here); ``workdir`` holds the spec, the events, the ranks' log
    (``ranks.log``) and the result. ``on_progress`` and ``should_stop`` run in this process, as for
    ``run_schedule``. A rank's :class:`~trainer.configs.ConfigError`, data, checkpoint or time-limit
    error is raised again here under its own type; any other failure as :class:`DistributedError`
    with the end of the ranks' log. Whatever ends the call ends the ranks too.
    """
    from trainer.checkpoint import load_checkpoint, save_checkpoint
    from trainer.schedule import ScheduleResult, StageReport

    if processes < 2:
        raise ConfigError(f"a distributed run needs at least 2 processes, got {processes}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("events.jsonl", "stop", "result.pt", "error.json"):
        (workdir / name).unlink(missing_ok=True)
    initial_path = None
    if initial_model is not None:
        from trainer.data.types import Vocabulary

        initial_path = workdir / "initial.pt"
        vocab = Vocabulary(tuple(str(i) for i in range(1, initial_model.n_items)))  # ids are not read back
        save_checkpoint(initial_path, model=initial_model, vocab=vocab, train_config={})
    spec = {
        "model": model_name,
        "model_config": model_config.to_dict(),
        "data": data.to_dict(),
        "train": config.to_dict(),
        "schedule": schedule.to_dict(),
        "checkpoint_dir": str(checkpoint_dir) if checkpoint_dir is not None else None,
        "initial_model": str(initial_path) if initial_path else None,
        "output_dir": str(workdir),
        "stop_file": str(workdir / "stop"),
    }
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
        "-m", "trainer.distributed", str(spec_path),
    ]  # fmt: skip
    env = dict(
        os.environ, OMP_NUM_THREADS=str(config.threads or 1)
    )  # torchrun's own default is 1, said aloud
    logger.info("launching %d ranks: %s", processes, " ".join(command))
    events_path, log_path = workdir / "events.jsonl", workdir / "ranks.log"
    read = 0

    def relay() -> None:
        """Hand the complete event lines written since the last call to ``on_progress``."""
        nonlocal read
        if not events_path.exists():
            return
        with open(events_path, encoding="utf-8") as events:
            events.seek(read)
            chunk = events.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        read += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            if on_progress is not None:
                on_progress(_event_from_json(line))

    with _child(command, log_path, env) as child:
        while child.poll() is None:
            relay()
            if should_stop is not None and should_stop():
                (workdir / "stop").touch()
            time.sleep(POLL_S)
        relay()
    error_path = workdir / "error.json"
    if error_path.exists():
        error = json.loads(error_path.read_text(encoding="utf-8"))
        kind = _errors().get(error["type"])
        if kind is not None:
            raise kind(error["message"])
        raise DistributedError(f"a rank failed: {error['type']}: {error['message']}; see {log_path}")
    if child.returncode != 0 or not (workdir / "result.pt").exists():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        logger.error("the ranks' log ends:\n%s", tail)
        raise DistributedError(
            f"the ranks exited with status {child.returncode} without a result; see {log_path}"
        )
    checkpoint = load_checkpoint(workdir / "result.pt")
    data_out = checkpoint.extra["result"]
    return ScheduleResult(
        model=checkpoint.model,
        stages=[StageReport(**s) for s in data_out["stages"]],
        cancelled=data_out["cancelled"],
        kept_stage=data_out["kept_stage"],
        growth=data_out["growth"],
        time_limited=data_out["time_limited"],
    )


if __name__ == "__main__":
    sys.exit(main())
