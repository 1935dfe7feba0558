"""The dashboard on a 390 px phone: no page is wider than the screen and the key buttons are on it.

Headless Chromium emulating a phone (390×844, touch, the page's meta viewport honoured) opens every
page on rows made directly in the database (no worker, no training: a parsed synthetic log, finished
and running jobs with their stages and curves, an active, an inactive and a held version). On each
page the document is no wider than the screen, and no element reaches past its edge except inside
the boxes that scroll on purpose (a matrix of metrics, a file preview). The versions page's test
NDCG@10 and activate button are on screen, "all columns" shows the secondary ones, and activating
asks first, in words. Screenshots of every
page land in var/screenshots/phone-<page>.png.
"""

from __future__ import annotations

import pytest

from tests.webapp.browser.conftest import ACTION_TIMEOUT_MS
from tests.webapp.dashboard import test_views
from webapp.datasets.models import Dataset
from webapp.registry.models import ModelVersion
from webapp.training.models import TrainingJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LONG_NAME = "interactions_2026_full_export_from_the_shop_database_all_regions.csv"  # no space to break at
METRICS = {"hr@5": 0.2, "ndcg@5": 0.15, "mrr@5": 0.13, "hr@10": 0.3, "ndcg@10": 0.1812, "mrr@10": 0.14}

# Everything past the screen's edge, skipping what lies inside a box that scrolls on purpose: an
# element's box, or its text overflowing a block that does not scroll (a long name that cannot wrap).
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const name = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className}`;
  const past = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.parentElement && el.parentElement.closest(".table.metrics, pre")) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.right > width + 1 || box.left < -1) past.push(`${name(el)} ends at ${Math.round(box.right)}`);
    const style = getComputedStyle(el);
    const block = !style.display.startsWith("inline") && style.display !== "contents";
    if (block && style.overflowX === "visible" && el.scrollWidth > el.clientWidth + 1) {
      past.push(`${name(el)} holds ${el.scrollWidth} px in ${el.clientWidth}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, past: past.slice(0, 8)};
}"""


make_job = test_views.make_job  # the dashboard tests' fixture: a job row as a run leaves it

# A curve of three points: enough for the job page's chart and its stage table.
POINTS = [
    {"kind": "loss", "stage": 1, "blocks": 2, "step": 10, "epoch": 1, "wall_s": 5.0, "loss": 6.0},
    {"kind": "valid", "stage": 1, "blocks": 2, "step": 20, "epoch": 1, "wall_s": 10.0,
     "metrics": {"mrr@5": 0.1, "ndcg@10": 0.15, "hr@10": 0.5}},
    {"kind": "valid", "stage": 1, "blocks": 2, "step": 1200, "epoch": 3, "wall_s": 60.0,
     "metrics": {"mrr@5": 0.2, "ndcg@10": 0.25, "hr@10": 0.6}},
]  # fmt: skip


def _stage(number: int, blocks: int, best: float, kept: bool = False) -> dict:
    return {
        "stage": number,
        "blocks": blocks,
        "steps": 12_000,
        "wall_s": 95.0,
        "stopped_by": "patience",
        "kept": kept,
        "best": {"mrr@5": best, "ndcg@10": best + 0.05, "hr@10": 0.5},
        "decision": "kept: 4 blocks gained +20.0% over 2 blocks, more than 1.0%",
    }


@pytest.fixture
def phone(browser, live_server, login, user, screenshot):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    login(page, user)
    yield page
    context.close()


@pytest.fixture
def pages(ready_dataset, make_version, make_job) -> dict[str, str]:
    Dataset.objects.filter(pk=ready_dataset.pk).update(
        name=LONG_NAME, stats={**ready_dataset.stats, "n_events": 1_234_567}
    )
    stacked = make_job(
        ready_dataset,
        method="adjacent",
        points=POINTS,
        stages=[_stage(0, 2, 0.1), _stage(1, 4, 0.2, kept=True)],
        metrics={"valid": METRICS, "test": METRICS, "popularity": {"valid": METRICS, "test": METRICS}},
        progress={"stage": 2, "stages": 2, "blocks": 4, "step": 12_000, "planned_steps": 12_000},
    )
    scratch = make_job(ready_dataset, method="none", points=POINTS, metrics={"test": METRICS})
    make_job(
        ready_dataset,
        method="preserving",
        status=TrainingJob.Status.RUNNING,
        points=POINTS,
        progress={"stage": 1, "stages": 3, "blocks": 2, "epoch": 1, "step": 4_500, "planned_steps": 12_000,
                  "loss": 5.1, "elapsed_s": 40.0, "positions_per_s": 123_456.0},
    )  # fmt: skip
    make_version(ready_dataset, active=True)
    inactive = make_version(ready_dataset)
    held = make_version(ready_dataset)
    ModelVersion.objects.filter(pk=inactive.pk).update(metrics={"test": METRICS}, job=stacked)
    ModelVersion.objects.filter(pk=held.pk).update(
        promotion={
            "decision": "held",
            "reason": "not activated: validation NDCG@10 0.0132 does not beat 0.0171",
        }
    )
    return {
        "home": "/",
        "datasets": "/datasets/",
        "dataset": f"/datasets/{ready_dataset.pk}/",
        "jobs": "/jobs/",
        "job": f"/jobs/{stacked.pk}/",
        "compare": f"/compare/?a={stacked.pk}&b={scratch.pk}",
        "versions": "/versions/",
        "try": f"/try/?dataset={ready_dataset.pk}",
        "version": f"/versions/{inactive.pk}/",
        "not-found": "/no/such/page/",
        "inactive": str(inactive.pk),
    }


def test_every_page_fits_a_phone_and_the_versions_buttons_are_on_screen(phone, pages, screenshot):
    page = phone
    pages_to_check = ("home", "datasets", "dataset", "jobs", "job", "compare", "versions", "version", "try")
    for name in (*pages_to_check, "not-found"):
        page.goto(pages[name])
        page.wait_for_load_state("load")
        report = page.evaluate(OVERFLOW_JS)
        screenshot(f"phone-{name}", page)
        assert report["scrollWidth"] <= PHONE["width"], (name, report)
        assert report["past"] == [], (name, report)

    page.goto(pages["versions"])
    row = page.locator(f"#v-{pages['inactive']}")
    for part in (row.locator("td", has_text="0.1812"), row.get_by_role("button", name="activate")):
        box = part.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box

    popularity = row.locator("td[data-label=popularity]")
    assert not popularity.is_visible()  # a secondary column, until "all columns" is ticked
    page.get_by_label("all columns").first.check()
    assert popularity.is_visible() and page.evaluate(OVERFLOW_JS)["past"] == []

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    row.get_by_role("button", name="activate").click()
    assert (
        asked
        and asked[0].startswith("Activate dataset-")
        and "in place of the version serving now" in asked[0]
    )
    page.wait_for_timeout(300)  # a form sent anyway would have activated it by now
    assert not ModelVersion.objects.get(pk=pages["inactive"]).is_active
