"""The customer-analytics command: help, overrides, exit codes and the runs table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from deltalake import DeltaTable

from customer_analytics import cli
from tests.conftest import FIXTURES, REPO


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_help_lists_the_jobs_and_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "ingest" in out and "pipeline" in out


def test_job_help_shows_the_common_options(capsys):
    assert cli.main(["ingest", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--conf", "--as-of", "--set"):
        assert option in out


def test_unknown_job_is_a_usage_error():
    assert cli.main(["dance"]) == 2


def test_bad_as_of_date_is_a_usage_error(capsys):
    assert cli.main(["ingest", "--as-of", "2024-13-01"]) == 2
    assert "expected a date YYYY-MM-DD" in capsys.readouterr().err


def test_unknown_key_in_set_exits_2_with_one_line(capsys):
    assert cli.main(["ingest", "--set", "warehouse.colour=red"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["customer-analytics: error: conf/local.yaml: warehouse.colour: unknown key"]


def test_missing_source_path_exits_2_before_spark_starts(capsys, tmp_path):
    code = cli.main(["ingest", "--set", f"source.path={tmp_path}/none.parquet"])

    assert code == 2
    assert "source.path: nothing found at" in capsys.readouterr().err
    assert not (tmp_path / "warehouse").exists()


def test_console_script_reports_config_errors_with_exit_2(tmp_path):
    exe = shutil.which("customer-analytics") or os.path.join(
        os.path.dirname(sys.executable), "customer-analytics"
    )
    result = subprocess.run(
        [exe, "ingest", "--conf", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"configuration file not found: {tmp_path}/missing.yaml")


def test_pipeline_run_appends_a_runs_row_with_its_arguments(spark, tmp_path, capsys):
    warehouse = tmp_path / "wh"
    argv = [
        "pipeline",
        "--set",
        f"source.path={FIXTURES / 'product_json_small.csv'}",
        "--set",
        f"warehouse.path={warehouse}",
        "--set",
        "segmentation.k=2",  # only 2 members: a fixed K, no sweep over 2..10,
        "--set",  # and features that are not null for both (they have 1 and 2 visits)
        "segmentation.features=[total_visits, total_spend, recency_days]",
    ]

    assert cli.main(argv) == 0

    runs = DeltaTable(str(warehouse / "runs")).to_pyarrow_table().to_pylist()
    assert len(runs) == 1
    run = runs[0]
    assert (run["job"], run["status"], run["error"]) == ("pipeline", "succeeded", None)
    assert json.loads(run["arguments"]) == argv
    # 8 input rows: 1 duplicate, 3 quarantined (null amount, bad date, malformed json);
    # features and segment end with the 2 members who have a visit (101 and 103)
    assert (run["rows_in"], run["rows_out"]) == (8, 2)
    assert run["started_at"] <= run["ended_at"]
    stages = json.loads(run["stages"])
    assert [s["stage"] for s in stages] == ["ingest", "features", "segment"]
    assert stages[1]["detail"]["as_of"] == "2023-03-03"  # the last order
    assert "[ingest] rows in 8, rows out 5" in capsys.readouterr().out


def test_failed_run_is_recorded_with_status_failed(spark, tmp_path):
    warehouse = tmp_path / "wh"
    bad = tmp_path / "bad.csv"
    bad.write_text("transaction_id,when\nT1,2024-01-01\n")

    code = cli.main(
        ["ingest", "--set", f"source.path={bad}", "--set", f"warehouse.path={warehouse}"]
    )

    assert code == 2
    run = DeltaTable(str(warehouse / "runs")).to_pyarrow_table().to_pylist()[0]
    assert run["status"] == "failed"
    assert "has no column" in run["error"]
    assert not (warehouse / "order_lines").exists()
