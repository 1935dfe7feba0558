"""Every write to datasets: create from an upload, parse (in a Celery task), retry, append increments."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from trainer.configs import ConfigError
from trainer.data import DataError, ReadOptions, dataset_stats, load_dataset
from trainer.data.messages import bound_message
from trainer.data.sniffing import SAMPLE_BYTES, refuse_document
from trainer.runs import check_trainable
from webapp.core.dispatch import task_send_on_commit
from webapp.core.exceptions import ApplicationError, ConflictError, PayloadTooLargeError
from webapp.core.storage import StorageError, Workspace
from webapp.datasets import events, item_titles
from webapp.datasets.models import Dataset
from webapp.training.models import TrainingJob

logger = logging.getLogger(__name__)


def _check_read_options(read_options: Any) -> dict[str, Any]:
    if read_options is None:
        return {}
    if not isinstance(read_options, dict):
        raise ApplicationError(
            "read_options must be a JSON object of column mapping and format options",
            {"field": "read_options"},
        )
    try:
        ReadOptions.from_dict(read_options)
    except ConfigError as exc:  # bounded: the message may quote what the client sent
        raise ApplicationError(bound_message(str(exc)), {"field": "read_options"}) from None
    return dict(read_options)


def _enqueue_parse(dataset: Dataset) -> None:
    from webapp.datasets.tasks import parse_dataset

    task_send_on_commit(parse_dataset, dataset.pk, what=f"dataset #{dataset.pk}")


def datasets_resend_pending() -> list[int]:
    """Send the parse of datasets PENDING longer than ``STUDIO_DISPATCH_RESEND_S`` again (the first
    send failed, or its message was lost with the broker); a duplicate finds the dataset claimed."""
    cutoff = timezone.now() - timedelta(seconds=settings.STUDIO_DISPATCH_RESEND_S)
    resent = []
    for dataset in Dataset.objects.filter(status=Dataset.Status.PENDING, updated_at__lt=cutoff).only("pk"):
        if Dataset.objects.filter(pk=dataset.pk, status=Dataset.Status.PENDING).update(
            updated_at=timezone.now()
        ):
            _enqueue_parse(dataset)
            resent.append(dataset.pk)
    return resent


def dataset_create(
    *,
    owner: Any,
    upload: UploadedFile,
    name: str = "",
    read_options: dict[str, Any] | None = None,
    parent: Dataset | None = None,
) -> Dataset:
    """Store an uploaded log and queue its parsing; the file is moved or streamed, never read whole.

    ``parent`` makes this an increment: its events are appended to the parent's, and the parent's
    read options apply unless ``read_options`` are given.
    """
    if parent is not None and not parent.is_ready:
        raise ConflictError(
            f"dataset #{parent.pk} is {parent.get_status_display()}; only a ready one takes increments",
            {"parent": parent.pk, "status": parent.status},
        )
    if parent is not None and read_options is None:
        options = dict(parent.read_options)
    else:
        options = _check_read_options(read_options)
    limit = settings.STUDIO_UPLOAD_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLargeError(
            f"the file is {upload.size:,} bytes; the upload limit is {limit:,} bytes",
            {"size": upload.size, "limit": limit},
        )
    if not upload.size:
        raise ApplicationError("the uploaded file is empty", {"field": "file"})
    filename = Path(upload.name or "upload").name
    _refuse_documents(upload, filename)
    with transaction.atomic():
        dataset = Dataset(
            owner=owner,
            name=((name or "").strip() or (f"{parent.name} + {filename}" if parent else filename))[:200],
            parent=parent,
            original_filename=filename,
            size_bytes=upload.size,
            read_options=options,
        )
        # FileSystemStorage moves a temporary upload into place and copies others chunk by chunk.
        dataset.file.save(filename, upload, save=False)
        dataset.save()
        _enqueue_parse(dataset)
    logger.info("dataset #%d: stored %s (%d bytes)", dataset.pk, dataset.file.name, dataset.size_bytes)
    return dataset


def _refuse_documents(upload: UploadedFile, filename: str) -> None:
    """Refuse, before anything is stored, an upload whose first 64 KiB show it is no log at all.

    An HTML page, an archive or an executable will never parse; saying so in the upload's own
    answer (a 400) beats a stored file and a FAILED dataset later. The same check runs again when
    the log is parsed (the CLI has only that one). Reading the start of the temporary file and
    seeking back leaves it to be moved into place whole.
    """
    upload.seek(0)
    head = upload.read(SAMPLE_BYTES)
    upload.seek(0)
    try:
        refuse_document(head, filename, complete=len(head) < SAMPLE_BYTES)
    except DataError as exc:
        raise ApplicationError(str(exc), {"field": "file"}) from None


def dataset_parse_retry_check(*, dataset: Dataset) -> None:
    """Raise the :class:`ConflictError` a re-parse of ``dataset`` would meet now (pages offer it only
    when this passes): one parsing already, or one whose jobs still read its events."""
    if not dataset.can_transition(Dataset.Status.PENDING):
        raise ConflictError(
            f"dataset #{dataset.pk} is {dataset.get_status_display()}; wait until parsing ends",
            {"status": dataset.status},
        )
    if dataset.is_ready and dataset.training_jobs.filter(status__in=TrainingJob.ACTIVE).exists():
        raise ConflictError(f"dataset #{dataset.pk} has training jobs in progress; re-parse it later")


def dataset_parse_retry(*, dataset: Dataset, read_options: dict[str, Any] | None = None) -> Dataset:
    """Parse again, with a new mapping if given; the uploaded file is kept from the first attempt."""
    options = _check_read_options(read_options) if read_options is not None else dataset.read_options
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        dataset_parse_retry_check(dataset=locked)
        locked.read_options = options
        locked.status = Dataset.Status.PENDING
        locked.error = ""
        locked.save(update_fields=["read_options", "status", "error", "updated_at"])
        _enqueue_parse(locked)
    return locked


def _claim_for_parsing(dataset_id: int) -> Dataset | None:
    """PENDING → PARSING in one locked transaction; None when already taken (a redelivered message)."""
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
        if dataset is None or dataset.status != Dataset.Status.PENDING:
            return None
        dataset.status = Dataset.Status.PARSING
        dataset.save(update_fields=["status", "updated_at"])
        return dataset


def _finish(dataset: Dataset, status: str, **fields: Any) -> None:
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if not locked.can_transition(status):
            logger.warning(
                "dataset #%d: %s → %s is not allowed; left as is", locked.pk, locked.status, status
            )
            return
        Dataset.objects.filter(pk=dataset.pk).update(status=status, updated_at=timezone.now(), **fields)


def parse_error_message(message: str, *, folder: Path, roots: tuple[Path, ...] = ()) -> str:
    """A parse failure as the dataset page shows it: no server folder, at most a few hundred characters.

    The trainer names files by their name already; this also strips the dataset's folder, the
    media root and any other local ``roots`` (a worker's scratch folder) from anything else that
    quoted a path (an OS error, a library's message).
    """
    for prefix in (str(folder), *(str(root) for root in roots), str(Path(settings.MEDIA_ROOT))):
        message = message.replace(prefix + "/", "").replace(prefix, "")
    return bound_message(message)


def dataset_parse(*, dataset_id: int) -> Dataset | None:
    """Validate and parse an upload with the trainer's readers: stats, preview and the events file.

    Bad data ends in FAILED with the reader's message; the upload stays so the user can fix the
    mapping and retry. Returns None when the dataset was not waiting for a parse. With an object
    store the upload (and a parent's events) are fetched into a scratch folder first and the events
    file is stored from there (:class:`~webapp.core.storage.Workspace`).
    """
    dataset = _claim_for_parsing(dataset_id)
    if dataset is None:
        logger.info("dataset #%s: not pending; nothing to parse", dataset_id)
        return None
    with Workspace(f"parse-{dataset.pk}") as workspace:
        _parse_into(dataset, workspace)
    dataset.refresh_from_db()
    return dataset


def _parse_into(dataset: Dataset, workspace: Workspace) -> None:
    upload = dataset.file.name
    name = dataset.original_filename or PurePosixPath(upload).name  # messages name the file as sent
    folder = workspace.path(upload).parent
    preview: dict[str, Any] = {"lines": [], "events": []}
    try:
        path = workspace.fetch(upload)
        preview["lines"] = events.raw_preview(path)
        options = ReadOptions.from_dict(dataset.read_options)
        if dataset.parent is not None:
            if dataset.parent.status != Dataset.Status.READY or not dataset.parent.events_file:
                raise DataError(f"the parent dataset #{dataset.parent.pk} is not ready")
            parent_events = workspace.fetch(dataset.parent.events_file)
            parsed = events.load_with_parent(path, options, parent_events, name=name)
        else:
            parsed = load_dataset(path, options, name=name)
        check_trainable(parsed)  # the default split's needs; refused now rather than at training
        preview["events"] = events.event_preview(parsed)
        stats = dataset_stats(parsed)
        events_name = f"{PurePosixPath(upload).parent}/{events.EVENTS_FILE}"
        events.write_events(parsed, workspace.path(events_name))
        workspace.push(events_name)
    except (DataError, ConfigError) as exc:
        message = parse_error_message(str(exc), folder=folder, roots=(workspace.root,))
        logger.info("dataset #%d: parse failed: %s", dataset.pk, message)
        _finish(dataset, Dataset.Status.FAILED, error=message, preview=preview, stats=None)
    except Exception as exc:
        logger.exception("dataset #%d: unexpected error while parsing", dataset.pk)
        what = "reading or writing storage" if isinstance(exc, StorageError) else "parsing"
        _finish(
            dataset,
            Dataset.Status.FAILED,
            error=f"internal error while {what} ({type(exc).__name__}); the worker log has the details",
            preview=preview,
            stats=None,
        )
    else:
        stats["has_timestamps"] = parsed.timestamps is not None
        _finish(
            dataset,
            Dataset.Status.READY,
            error="",
            stats=stats,
            preview=preview,
            events_file=events_name,
            parsed_at=timezone.now(),
        )
        logger.info("dataset #%d: ready (%d events)", dataset.pk, stats["n_events"])


def dataset_item_titles_set(*, dataset: Dataset, upload: UploadedFile) -> dict[str, Any]:
    """Store the item titles of ``upload`` (a CSV/TSV of item id and title) for a ready dataset.

    Replaces any titles uploaded before. Returns what was stored (the dataset's ``item_titles``):
    how many items have a title, and the rows left out (ids unknown to the dataset, duplicates,
    empty titles) and the titles cut. A file that cannot be read is refused with the reason.
    """
    if dataset.status != Dataset.Status.READY or not dataset.events_file:
        raise ConflictError(
            f"dataset #{dataset.pk} is {dataset.get_status_display()}; titles are read against the items "
            "of a ready dataset",
            {"status": dataset.status},
        )
    name = Path(upload.name or "titles").name
    if upload.size is not None and upload.size > item_titles.TITLES_MAX_BYTES:
        raise PayloadTooLargeError(
            f"{name} is {upload.size:,} bytes; a titles file may hold {item_titles.TITLES_MAX_BYTES:,}",
            {"size": upload.size, "limit": item_titles.TITLES_MAX_BYTES},
        )
    upload.seek(0)
    data = upload.read(item_titles.TITLES_MAX_BYTES + 1)
    titles_name = f"{PurePosixPath(dataset.events_file).parent}/{item_titles.TITLES_FILE}"
    with Workspace(f"titles-{dataset.pk}") as workspace:
        try:
            known = item_titles.item_ids_of_events(workspace.fetch(dataset.events_file))
            parsed = item_titles.item_titles_parse(data, known=known, name=name)
        except item_titles.ItemTitlesError as exc:
            raise ApplicationError(str(exc), {"field": "file"}) from None
        item_titles.item_titles_write(parsed.titles, workspace.path(titles_name))
        workspace.push(titles_name)
    summary = {
        "file": titles_name,
        "source": name,
        "uploaded_at": timezone.now().isoformat(),
        **parsed.summary(),
    }
    Dataset.objects.filter(pk=dataset.pk).update(item_titles=summary, updated_at=timezone.now())
    dataset.item_titles = summary
    logger.info("dataset #%d: %d item titles from %s", dataset.pk, len(parsed.titles), name)
    return summary
