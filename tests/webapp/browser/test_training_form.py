"""The training form in a real browser: the preset, the fields and the JSON box show one configuration.

No worker runs here: what trains is the server's concern (tests/webapp/dashboard/test_training_form.py);
this checks the page script and what a refused form looks like.
"""

from __future__ import annotations

import json

import pytest

from tests.webapp.browser.conftest import expect

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_preset_fields_and_json_stay_in_step_and_errors_sit_by_their_field(
    user_page, ready_dataset, screenshot
):
    page = user_page
    page.goto(f"/datasets/{ready_dataset.pk}/")
    form = page.locator("#train-form")
    preset, box = form.locator("select[name=preset]"), form.locator("textarea[name=config]")
    expect(preset).to_be_visible()  # the script shows the picker

    preset.select_option("scratch")
    expect(form.locator("select[name=method]")).to_have_value("none")
    expect(form.locator("input[name=final_blocks]")).to_have_value("8")
    assert json.loads(box.input_value())["schedule"] == {"final_blocks": 8, "method": "none"}

    form.locator("input[name=epochs]").fill("7")
    form.locator("input[name=time_limit_min]").fill("2")
    config = json.loads(box.input_value())
    assert config["train"]["epochs"] == 7 and config["schedule"]["time_limit_s"] == 120
    expect(preset).to_have_value("custom")

    form.locator("select[name=method]").select_option("adjacent")
    expect(page.locator("#method-help")).to_contain_text("each block copied next to itself")

    form.locator("summary").click()
    box.fill('{"model": "sasrec", "train": {"lr": 0.01}}')
    expect(form.locator("select[name=model]")).to_have_value("sasrec")
    expect(form.locator("input[name=lr]")).to_have_value("0.01")
    expect(form.locator("input[name=epochs]")).to_have_value("")  # not in the JSON: the default
    box.fill('{"train": ')
    expect(page.locator("#config-sync")).to_be_visible()

    box.fill('{"schedule": {"start_blocks": 4, "final_blocks": 2}}')
    form.locator("button[type=submit]").click()
    expect(page.locator("#final_blocks-errors")).to_have_text("must be at least start_blocks (4), got 2")
    expect(form.locator("input[name=start_blocks]")).to_have_value("4")
    assert json.loads(box.input_value()) == {"schedule": {"start_blocks": 4, "final_blocks": 2}}
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot("train-form-error")
