"""The dataset page's training form: fields over the JSON, errors beside their field, input kept.

What a user notices: the fields show the default preset's values and the trainer's ranges; what
they type is what trains (a minute budget arrives in seconds, an emptied field is the default); a
refused form comes back with every value as typed and the reason next to the field in words,
and nothing is queued. The script that keeps fields and JSON in step runs in the browser test.
"""

from __future__ import annotations

import html
import json
import re

import pytest

from trainer.configs import ConfigError
from webapp.dashboard import presets
from webapp.training.models import TrainingJob


def _form_html(page: str) -> str:
    return re.search(r'<form id="train-form".*?</form>', page, re.S).group(0)


def _errors(page: str, field: str) -> list[str]:
    block = re.search(rf'<ul class="errorlist" id="{field}-errors">(.*?)</ul>', page, re.S)
    return [html.unescape(e) for e in re.findall(r"<li>(.*?)</li>", block.group(1))] if block else []


def test_the_form_shows_the_default_preset_as_fields_with_the_trainers_ranges(browser, ready_dataset):
    page = browser.get(f"/datasets/{ready_dataset.pk}/").content.decode()
    form = _form_html(page)
    default = presets.preset_config(presets.DEFAULT_PRESET)
    assert re.search(r'name="final_blocks" value="16"[^>]*data-key="schedule.final_blocks"', form)
    assert re.search(r'name="epochs" value="20" min="1" max="1000"', form)
    assert re.search(
        r'name="time_limit_min" min="0" max="43200" step="any" data-key="[^"]+" data-scale="60"', form
    )
    assert re.search(r'name="lr" value="0.001"[^>]*step="any"', form)
    assert '<option value="preserving" selected>' in form and '<option value="auto" selected>' in form
    # the chosen method's sentence is its help line; an unset loss says its default
    assert "copies start silent" in re.search(r'id="method-help">(.*?)<', form).group(1)
    assert "(the default)" in re.search(r'id="loss-help">(.*?)<', form).group(1)
    box = html.unescape(re.search(r'<textarea name="config"[^>]*>(.*?)</textarea>', form, re.S).group(1))
    assert json.loads(box) == default
    assert 'class="preset-picker" hidden' in form and "disabled" in form  # shown by the page script


def test_what_the_fields_say_is_what_trains(browser, ready_dataset, django_capture_on_commit_callbacks):
    fields = {
        "dataset": ready_dataset.pk,
        "preset": "custom",
        "config": json.dumps(
            {"train": {"batch_size": 32, "patience": 9}, "model_options": {"embedding_dim": 32}}
        ),
        "model": "nextitnet",
        "start_blocks": "2",
        "final_blocks": "8",
        "grow": "fixed",
        "method": "adjacent",
        "epochs": "7",
        "patience": "",  # empty: whatever the JSON (or the default) says
        "time_limit_min": "2.5",
        "lr": "0.005",
        "loss": "sampled",
        "negatives": "50",
        "split": "time",
    }
    with django_capture_on_commit_callbacks():
        response = browser.post("/jobs/create", fields)
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and response.url == f"/jobs/{job.pk}/"
    config = job.config
    assert (config["schedule"]["start_blocks"], config["schedule"]["final_blocks"]) == (2, 8)
    assert (config["schedule"]["grow"], config["schedule"]["method"]) == ("fixed", "adjacent")
    assert config["schedule"]["time_limit_s"] == 150.0  # 2.5 minutes
    assert (config["train"]["epochs"], config["train"]["lr"], config["train"]["patience"]) == (7, 0.005, 9)
    assert (config["train"]["loss"], config["train"]["negatives"], config["train"]["batch_size"]) == (
        "sampled",
        50,
        32,
    )
    assert config["split"]["split"] == "time" and config["model_options"]["embedding_dim"] == 32


def test_a_refused_form_keeps_the_input_and_puts_each_error_beside_its_field(browser, ready_dataset):
    typed = '{\n  "train": {"epochs": "many"}\n}'
    response = browser.post(
        "/jobs/create",
        {
            "dataset": ready_dataset.pk,
            "config": typed,
            "start_blocks": "4",
            "final_blocks": "8",
            "lr": "0.02",
        },
    )
    page = response.content.decode()
    assert response.status_code == 400 and not TrainingJob.objects.exists()
    assert _errors(page, "epochs") == ["must be a whole number between 1 and 1000, got 'many'"]
    assert "'>=' not supported" not in page
    form = _form_html(page)
    assert 'name="start_blocks" value="4"' in form and 'name="lr" value="0.02"' in form
    assert html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", form, re.S).group(1)).strip() == typed
    assert re.search(r'name="epochs"[^>]*autofocus', form)  # the page opens at the first error

    response = browser.post(
        "/jobs/create", {"dataset": ready_dataset.pk, "start_blocks": "8", "final_blocks": "4", "epochs": "x"}
    )
    page = response.content.decode()
    assert _errors(page, "epochs") == ["a whole number, please"]
    response = browser.post(
        "/jobs/create", {"dataset": ready_dataset.pk, "start_blocks": "8", "final_blocks": "4"}
    )
    assert _errors(response.content.decode(), "final_blocks") == ["must be at least start_blocks (8), got 4"]
    response = browser.post(
        "/jobs/create",
        {"dataset": ready_dataset.pk, "grow": "fixed", "start_blocks": "2", "final_blocks": "12"},
    )
    assert "times a power of two" in _errors(response.content.decode(), "final_blocks")[0]
    response = browser.post("/jobs/create", {"dataset": ready_dataset.pk, "time_limit_min": "100000"})
    assert _errors(response.content.decode(), "time_limit_min") == [
        "must be between 0 and 43,200 minutes (30 days); 0 means none"
    ]
    assert not TrainingJob.objects.exists()


def test_a_json_mistake_is_said_beside_the_box_which_opens(browser, ready_dataset):
    response = browser.post(
        "/jobs/create", {"dataset": ready_dataset.pk, "config": '{"train": {"epochs": 3,}}'}
    )
    page = response.content.decode()
    assert _errors(page, "config") == [
        "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 24"
    ]
    assert '<details id="advanced-config" open>' in page
    response = browser.post("/jobs/create", {"dataset": ready_dataset.pk, "config": '{"lerning_rate": 1}'})
    assert "unknown key(s) lerning_rate" in _errors(response.content.decode(), "config")[0]
    response = browser.post("/jobs/create", {"dataset": ready_dataset.pk, "config": "[1, 2]"})
    assert _errors(response.content.decode(), "config") == ["the configuration must be a JSON object: {…}"]


def test_a_refusal_by_the_service_is_said_at_the_top_of_the_form(browser, ready_dataset, settings):
    settings.STUDIO_JOB_MAX_ESTIMATED_S = 1  # every job is estimated to take longer
    response = browser.post("/jobs/create", {"dataset": ready_dataset.pk, "preset": "auto"})
    block = re.search(
        r'<ul class="form-errors" id="train-errors">(.*?)</ul>', response.content.decode(), re.S
    )
    assert response.status_code == 400 and block and "estimated" in block.group(1)
    assert not TrainingJob.objects.exists()


def test_another_users_dataset_is_a_404_and_nothing_is_queued(client, other_user, ready_dataset):
    client.login(username="bob", password="bob-password")
    response = client.post("/jobs/create", {"dataset": ready_dataset.pk, "preset": "auto"})
    assert response.status_code == 404 and not TrainingJob.objects.exists()


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ("train.epochs must be a whole number between 1 and 1000, got 'many'", "train.epochs"),
        ("each of export.ks must be …", "export.ks"),
        ("StackingSchedule: unknown key(s) x; valid keys: …", None),
        ("unknown model 'x'; choose one of …", None),
    ],
)
def test_a_config_error_names_its_field(message, key):
    assert ConfigError(message).key == key
