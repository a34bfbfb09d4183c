"""Progress lines: one per stage as it ends, and a heartbeat while a long stage runs."""

from __future__ import annotations

import io
import time

from customer_analytics.orchestration.progress import Progress


def test_a_stage_says_it_started_and_ends_with_its_summary_line():
    out = io.StringIO()
    progress = Progress(out, heartbeat_seconds=60)

    with progress.stage("features") as summary:
        summary.rows_in, summary.rows_out = 1200, 30

    lines = out.getvalue().splitlines()
    assert lines[0] == "[features] started"
    assert lines[1].startswith("[features] rows in 1,200, rows out 30, ")
    assert len(lines) == 2


def test_a_long_stage_says_what_it_is_doing_until_it_ends():
    out = io.StringIO()
    progress = Progress(out, heartbeat_seconds=0.05)

    with progress.stage("recommend"):
        progress.doing("finding basket rules")
        time.sleep(0.3)
    time.sleep(0.2)  # no heartbeat after the stage ended

    lines = out.getvalue().splitlines()
    beats = [line for line in lines if "still running" in line]
    assert len(beats) >= 2
    assert all(
        line.startswith("[recommend] still running after ")
        and line.endswith(" s: finding basket rules")
        for line in beats
    )
    assert lines[-1].startswith("[recommend] rows in 0, rows out 0, ")
