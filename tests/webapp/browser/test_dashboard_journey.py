"""A user's whole day in the dashboard, in headless Chromium, against real Celery workers.

Log in, upload a slice of ml-100k and its item titles, start a StackRec job and watch its progress
bar move, its running stage's steps count up and its curves grow without a reload (steps or time on
the x axis, smoothing, zoom, the popularity baseline), see it finish with its stage timeline, its
phases after training and its worker log, train a scratch run beside it and compare the two,
activate a version, take its ONNX file away, get recommendations with titles on the try-it page,
append an increment and start a retrain from the admin, compare the retrained model with the
version it started from, then tick all three runs in the runs table and compare them. Every page is
saved as a screenshot (var/screenshots/; the documentation shows them).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.webapp.browser.conftest import expect
from webapp.datasets.models import Dataset
from webapp.registry.models import ModelVersion
from webapp.training.models import TrainingJob

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]

# Small enough for seconds on one CPU thread, long enough (two stages of 500 steps, a validation
# every 30) that the page sees the job running and its curves grow over several polls.
TRAIN = {
    "epochs": 200,
    "max_steps": 500,
    "batch_size": 16,
    "max_len": 20,
    "eval_every": 30,
    "patience": 0,
    "threads": 1,
    "device": "cpu",
}
STACKED = {
    "model": "nextitnet",
    "model_options": {"embedding_dim": 16},
    "schedule": {"start_blocks": 1, "final_blocks": 2, "method": "adjacent", "stage_steps": 500},
    "train": TRAIN,
}
SCRATCH = {
    "model": "nextitnet",
    "model_options": {"embedding_dim": 16},
    "schedule": {"final_blocks": 2, "method": "none"},
    "train": {**TRAIN, "max_steps": 1000},
}
JOB_S = 240_000  # ms a tiny job may take on a loaded 2-core machine


def _points(page, chart: str) -> int:
    return int(page.locator(f"#{chart}").get_attribute("data-points") or 0)


def _train(page, dataset: Dataset, config: dict) -> int:
    """Start a job from the dataset page's form with a custom configuration; returns its id."""
    page.goto(f"/datasets/{dataset.pk}/")
    form = page.locator("#train-form")
    form.locator("select[name=preset]").select_option("custom")
    form.locator("#advanced-config summary").click()
    form.locator("textarea[name=config]").fill(json.dumps(config))
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    return int(re.search(r"/jobs/(\d+)/$", page.url).group(1))


def _wait_ready(page, name: str) -> Dataset:
    """The dataset page refreshes itself while parsing; wait for the numbers to show."""
    expect(page.locator("main")).to_contain_text("sequences", timeout=JOB_S)
    dataset = Dataset.objects.get(name=name)
    assert dataset.status == Dataset.Status.READY, dataset.error
    return dataset


def test_upload_train_watch_compare_activate_try_and_retrain(
    studio_server, user_page, staff_user_page, user, real_slice, shared_data, screenshot
):
    page = user_page

    # -- upload a real slice ------------------------------------------------------------------
    page.goto("/datasets/")
    form = page.locator("#upload-form")
    form.locator("input[name=file]").set_input_files(real_slice.first)
    form.locator("input[name=name]").fill("ml-100k slice")
    form.get_by_role("button", name="upload").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    dataset = _wait_ready(page, "ml-100k slice")
    expect(page.locator("#length-chart")).to_be_visible()
    titles = page.locator("#item-titles-form")
    titles.locator("input[type=file]").set_input_files(shared_data / "ml-100k" / "ml-100k.item")
    titles.locator("button[type=submit]").click()
    expect(page.locator("#item-titles-summary")).to_contain_text("items have a title")
    screenshot("dataset")

    # -- a StackRec job, watched live ---------------------------------------------------------
    stacked_id = _train(page, dataset, STACKED)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads or navigates
    status = page.locator("#job-status")
    expect(status).to_have_attribute("data-status", "RUNNING", timeout=JOB_S)
    expect(page.locator("#valid-chart")).not_to_have_attribute("data-points", "0", timeout=JOB_S)
    running = page.locator("#stage-timeline .stage-row.running")
    expect(running).to_have_count(1)
    expect(running.locator("td[data-label=steps]")).to_contain_text(re.compile(r"[1-9][\d,]* of [\d,]+"))
    seen = (_points(page, "valid-chart"), page.locator("#run-progress").get_attribute("value"))
    screenshot("job-running")
    deadline = time.monotonic() + JOB_S / 1000
    while status.get_attribute("data-status") == "RUNNING" and time.monotonic() < deadline:
        now = (_points(page, "valid-chart"), page.locator("#run-progress").get_attribute("value"))
        if now[0] > seen[0] and float(now[1]) > float(seen[1]):
            break
        time.sleep(0.3)
    grown = (_points(page, "valid-chart"), page.locator("#run-progress").get_attribute("value"))
    assert grown[0] > seen[0] and float(grown[1]) > float(seen[1]), (seen, grown)
    expect(status).to_have_attribute("data-status", "SUCCEEDED", timeout=JOB_S)
    assert page.evaluate("window.__sameDocument") is True  # all of it without a reload
    expect(page.locator("#stage-timeline .stage-row")).to_have_count(2)
    expect(page.locator("#stage-timeline")).to_contain_text("2")
    assert _points(page, "loss-chart") > 0
    for phase in ("final-evaluation", "promotion-gate", "export", "activation"):
        expect(page.locator(f'#job-phases li.phase[data-phase="{phase}"]')).not_to_have_attribute(
            "data-state", re.compile("waiting|running")
        )
    expect(page.locator("#valid-chart")).to_have_attribute("data-baseline", "true")
    page.locator("#x-axis-steps").check()
    page.locator("#smoothing").fill("0.6")
    expect(page.locator("#smoothing-value")).to_have_text("0.60")
    box = page.locator("#valid-chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    expect(page.locator("#zoom-reset")).to_be_visible()
    page.locator("#zoom-reset").click()
    expect(page.locator("#zoom-reset")).to_be_hidden()
    page.locator("#x-axis-time").check()
    page.locator("#job-log summary").click()
    expect(page.locator("#job-log-lines")).to_contain_text("stage")
    stacked = TrainingJob.objects.get(pk=stacked_id)
    assert stacked.status == TrainingJob.Status.SUCCEEDED, stacked.error
    assert _points(page, "valid-chart") == stacked.points.filter(kind="valid").count()
    screenshot("job")

    # -- a scratch run beside it, and the comparison ------------------------------------------
    scratch_id = _train(page, dataset, SCRATCH)
    expect(page.locator("#job-status")).to_have_attribute("data-status", "SUCCEEDED", timeout=JOB_S)
    page.goto(f"/compare/?a={stacked_id}&b={scratch_id}")
    speedup = page.locator("#speedup")
    expect(speedup).to_be_visible()
    expect(speedup).to_contain_text(re.compile(r"scratch|reach", re.IGNORECASE))
    screenshot("compare")

    # -- activate a version, then try it ------------------------------------------------------
    # The promotion gate decided for each run; the one that does not serve is activated by hand,
    # through the confirmation page when the gate held it.
    page.goto("/versions/")
    first, second = (ModelVersion.objects.get(job_id=j) for j in (stacked_id, scratch_id))
    assert first.is_active != second.is_active and first.promotion["decision"] == "activated"
    chosen = second if first.is_active else first
    row = page.locator(f'[data-version="{chosen.label}"]')
    expect(row).to_have_attribute("data-active", "false")
    expect(row.locator(".promotion")).to_contain_text(chosen.promotion["reason"][:20])
    if chosen.is_held:
        row.locator("a.activate").click()
        expect(page.locator("#confirm-activate")).to_contain_text("does not beat")
        screenshot("version-confirm")
        page.locator("#confirm-button").click()
    else:
        page.once("dialog", lambda dialog: dialog.accept())  # "Activate …? It replaces …" (forms.js)
        row.locator("button.activate").click()
    expect(page.locator(f'[data-version="{chosen.label}"]')).to_have_attribute("data-active", "true")
    screenshot("versions")
    scratch_version = chosen

    page.goto(f"/versions/{chosen.pk}/")
    with page.expect_download() as download:
        page.locator('#version-files .version-file[data-file="model.onnx"] a.download').click()
    onnx = download.value
    assert onnx.suggested_filename == "model.onnx"
    assert onnx.path().stat().st_size == (chosen.artifact_path / "model.onnx").stat().st_size
    screenshot("version")

    page.goto(f"/try/?dataset={dataset.pk}")
    page.locator("button.example-history").first.click()
    assert page.locator("#try-form [name=history]").input_value().strip()
    page.locator("#try-form button[type=submit]").click()
    expect(page.locator("#recommendations .rec-row")).to_have_count(10)
    expect(page.locator("#result-version")).to_have_text(scratch_version.label)
    expect(page.locator("#recommendations .rec-title").first).not_to_have_text("–")  # ml-100k's titles
    screenshot("try")

    # -- an increment, and a retrain started from the admin -----------------------------------
    page.goto(f"/datasets/{dataset.pk}/")
    append = page.locator("#append-form")
    append.locator("input[type=file]").set_input_files(real_slice.increment)
    append.locator("input[name=name]").fill("ml-100k slice + later events")
    append.locator("button[type=submit]").click()
    grown_data = _wait_ready(page, "ml-100k slice + later events")
    assert grown_data.stats["n_events"] == real_slice.events + real_slice.increment_events

    admin = staff_user_page
    admin.goto("/admin/datasets/dataset/")
    admin.locator(f"input[name=_selected_action][value='{dataset.pk}']").check()
    admin.locator("select[name=action]").select_option("retrain")
    admin.locator("button[name=index]").click()
    expect(admin.locator(".messagelist")).to_contain_text(re.compile("retraining jobs queued: 1", re.I))
    screenshot("admin-retrain", page=admin)

    retrain = TrainingJob.objects.exclude(pk__in=(stacked_id, scratch_id)).get()
    assert retrain.dataset_id == grown_data.pk and retrain.base_version_id == scratch_version.pk
    page.goto(f"/jobs/{retrain.pk}/")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "SUCCEEDED", timeout=JOB_S)
    retrain.refresh_from_db()
    version = ModelVersion.objects.get(job_id=retrain.pk)
    # On all the data, grown from the serving depth while it paid; exported: the kept stage.
    assert version.dataset_id == grown_data.pk and version.depth == retrain.metrics["kept"]["blocks"]
    expect(page.locator("#result-growth")).to_contain_text(retrain.metrics["kept"]["growth"][:20])
    expect(page.locator("#result-promotion")).to_have_attribute(
        "data-decision", version.promotion["decision"]
    )
    screenshot("job-retrain")

    page.goto(f"/compare/?a={scratch_version.job_id}&b={retrain.pk}")
    expect(page.locator("#speedup")).to_contain_text(scratch_version.label)  # the old one on new test cases
    screenshot("compare-retrain")

    page.goto("/")
    for serving in ModelVersion.objects.filter(is_active=True):
        expect(page.locator("main")).to_contain_text(serving.label)
    screenshot("home")
    page.goto("/jobs/")
    expect(page.locator(".job-row")).to_have_count(3)
    screenshot("jobs")
    for job_id in (stacked_id, scratch_id, retrain.pk):
        page.locator(f"#pick-{job_id}").check()
    page.locator("#compare-selected").click()
    expect(page.locator("#compare-chart")).to_have_attribute("data-lines", "3")
    expect(page.locator("#run-figures .run-figures-row")).to_have_count(3)
    expect(page.locator('#config-diff .config-diff-row[data-key="schedule.method"]')).to_be_visible()
    screenshot("compare-runs")

    missing = page.goto("/jobs/999999/")
    assert missing.status == 404
    expect(page.locator("main")).to_contain_text("not found")
    expect(page.get_by_role("link", name="Datasets")).to_be_visible()  # the navigation stays
