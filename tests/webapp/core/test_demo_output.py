"""What the demo prints for each stage of a finished job: a user reads these lines, not the API."""

from __future__ import annotations

from tests.conftest import REPO
from webapp.core.management.commands.studio_demo import DEPTH_SEARCH, stage_line


def test_a_trained_stage_says_its_steps_time_and_the_schedules_decision():
    stage = {"stage": 1, "blocks": 4, "steps": 114, "wall_s": 4.31, "stopped_by": "patience",
             "decision": "kept: 4 blocks gained +2.6% over 2 blocks, more than 1.0%"}  # fmt: skip
    assert stage_line(stage) == (
        "stage 2: 4 blocks, 114 steps, 4.3 s (ended by patience); "
        "kept: 4 blocks gained +2.6% over 2 blocks, more than 1.0%"
    )


def test_the_starting_point_of_a_retrain_is_named_for_what_it_is_not_as_an_empty_stage():
    stage = {"stage": 0, "blocks": 8, "steps": 0, "wall_s": 0.04, "stopped_by": "initial",
             "decision": "the model this run starts from, validated on its data"}  # fmt: skip
    line = stage_line(stage)
    assert line == (
        "stage 1: 8 blocks, the serving model as it was (not trained here: the starting point), "
        "validated on the grown data in 0.0 s"
    )
    assert "0 steps" not in line and "(initial)" not in line


def test_the_demo_points_at_the_benchmark_page_that_exists():
    page = DEPTH_SEARCH.split(",")[0]
    assert (REPO / page).is_file() and "## Finding the right depth" in (REPO / page).read_text()
    assert "bench/depth_search.py" in DEPTH_SEARCH
