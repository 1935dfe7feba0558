"""Celery tasks of the datasets app (default queue): take an id, call one service."""

from celery import shared_task

from webapp.datasets.services import dataset_parse


@shared_task(name="datasets.parse")
def parse_dataset(dataset_id: int) -> None:
    """Parse an uploaded log; bad data is recorded on the dataset, never retried."""
    dataset_parse(dataset_id=dataset_id)
