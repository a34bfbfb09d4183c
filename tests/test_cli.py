"""The customer-analytics command: help, overrides, exit codes and the runs table."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from deltalake import DeltaTable

from customer_analytics import cli
from customer_analytics.orchestration import runner
from tests.conftest import FIXTURES, REPO, table_rows


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_help_lists_the_jobs_and_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^    (\w+)(?: |$)", out, flags=re.M)
    assert listed == [
        "ingest",
        "features",
        "clv",
        "segment",
        "recommend",
        "evaluate",
        "report",
        "vacuum",
        "pipeline",
    ]


def test_job_help_shows_the_common_options(capsys):
    assert cli.main(["ingest", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--conf", "--as-of", "--set"):
        assert option in out


@pytest.mark.parametrize(("job", "shown"), [("ingest", True), ("pipeline", True), ("clv", False)])
def test_help_of_a_job_that_reads_the_source_shows_how_to_point_it_at_an_export(capsys, job, shown):
    assert cli.main([job, "--help"]) == 0
    out = capsys.readouterr().out
    keys = ("source.kind", "source.columns.NAME", "source.read_options", "source.decimal")
    assert all(key in out for key in (*keys, "source.date_formats")) == shown


def test_unknown_job_is_a_usage_error():
    assert cli.main(["dance"]) == 2


def test_pipeline_refuses_to_skip_ingest(capsys):
    assert cli.main(["pipeline", "--skip", "ingest"]) == 2
    assert "argument --skip: invalid choice: 'ingest'" in capsys.readouterr().err


def test_bad_as_of_date_is_a_usage_error(capsys):
    assert cli.main(["ingest", "--as-of", "2024-13-01"]) == 2
    assert "expected a date YYYY-MM-DD" in capsys.readouterr().err


def test_unknown_key_in_set_exits_2_with_one_line(capsys):
    assert cli.main(["ingest", "--set", "warehouse.colour=red"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["customer-analytics: error: --set warehouse.colour: unknown key"]


def test_a_bad_value_is_named_by_where_it_came_from(tmp_path, capsys):
    conf = tmp_path / "my.yaml"
    conf.write_text("source: {path: x.csv, kind: invoice_lines}\nsegmentation: {k_min: 1}\n")

    assert cli.main(["ingest", "--conf", str(conf), "--set", "source.decimal=x"]) == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "customer-analytics: error: --set source.decimal: Input should be '.' or ',' (got 'x'); "
        f"{conf}: segmentation.k_min: Input should be greater than or equal to 2 (got 1)"
    ]


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


PIPELINE_ARGV = [
    "pipeline",
    "--skip",
    "clv",  # 6 members: too few to fit the lifetime value models
    "--skip",
    "report",  # tested in test_report.py, and after a pipeline in test_views.py
    "--set",
    f"source.path={FIXTURES / 'product_json_pipeline.csv'}",
    "--set",
    "segmentation.k=2",  # 6 members: a fixed K, no sweep over 2..10
    "--set",
    "segmentation.features=[total_visits, total_spend, recency_days]",
]


@pytest.fixture(scope="module")
def pipeline_run(spark, tmp_path_factory):
    """
    One ``pipeline`` run over the 14-order fixture with native Delta: (warehouse, argv, exit
    code, stdout). test_kill runs the pipeline to the end with deltalake commits.
    """
    warehouse = tmp_path_factory.mktemp("pipeline") / "wh"
    argv = [
        *PIPELINE_ARGV,
        "--set",
        f"warehouse.path={warehouse}",
        "--set",
        "warehouse.delta=native",
    ]
    out = io.StringIO()
    with contextlib.chdir(REPO), contextlib.redirect_stdout(out):
        code = cli.main(argv)
    return warehouse, argv, code, out.getvalue()


def test_clv_on_six_customers_exits_2_with_one_line_naming_the_remedy(
    pipeline_run, tmp_path, capsys
):
    warehouse = tmp_path / "wh"
    shutil.copytree(pipeline_run[0], warehouse)  # its runs table stays as the pipeline left it

    code = cli.main(["clv", "--set", f"warehouse.path={warehouse}"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "at least 10 customers, got 6" in err[0]
    assert err[0].endswith("or leave the stage out (pipeline --skip clv)")


def test_pipeline_run_appends_a_runs_row_with_its_arguments(pipeline_run):
    warehouse, argv, code, out = pipeline_run

    assert code == 0
    runs = table_rows(warehouse, "runs")
    assert len(runs) == 1
    run = runs[0]
    assert (run["job"], run["status"], run["error"]) == ("pipeline", "succeeded", None)
    assert json.loads(run["arguments"]) == argv
    # 14 input rows in; 5 recommenders x 2 targets x K in (5, 10) evaluation rows out
    assert (run["rows_in"], run["rows_out"]) == (14, 20)
    assert run["started_at"] <= run["ended_at"]
    stages = json.loads(run["stages"])
    assert [s["stage"] for s in stages] == [
        "ingest",
        "features",
        "segment",
        "recommend",
        "evaluate",
    ]
    assert stages[1]["detail"]["as_of"] == "2023-03-31"  # the last order
    assert stages[4]["detail"]["cutoff"] == "2023-03-04"  # 4 weeks before 2023-04-01
    assert "[ingest] rows in 14, rows out 18" in out


def test_pipeline_writes_the_all_customers_top_list_counted_by_hand(pipeline_run):
    warehouse = pipeline_run[0]

    overall = sorted(
        (r["rank"], r["product_id"], r["buyers"], r["quantity"], round(r["penetration"], 4))
        for r in table_rows(warehouse, "segment_top_products")
        if r["cluster"] is None
    )

    # Members' purchases in (2023-01-31, 2023-03-31]: P1 by 201, 203, 204 (qty 3); P2 by 201,
    # 202, 205 (qty 4); P3 by 201, 204 (qty 5); P4 by 202; P5 by 205. 6 segmented members.
    assert overall == [
        (1, "P2", 3, 4.0, 0.5),
        (2, "P1", 3, 3.0, 0.5),
        (3, "P3", 2, 5.0, 0.3333),
        (4, "P4", 1, 1.0, 0.1667),
        (5, "P5", 1, 1.0, 0.1667),
    ]


def test_pipeline_recommends_every_member_only_products_they_never_bought(pipeline_run):
    warehouse = pipeline_run[0]
    bought = {(r["customer_id"], r["product_id"]) for r in table_rows(warehouse, "order_lines")}

    recs = table_rows(warehouse, "customer_recommendations")

    assert {r["customer_id"] for r in recs} == {"201", "202", "203", "204", "205", "206"}
    assert [r for r in recs if (r["customer_id"], r["product_id"]) in bought] == []


def test_pipeline_evaluation_has_a_row_per_recommender_target_and_k(pipeline_run):
    warehouse = pipeline_run[0]

    rows = table_rows(warehouse, "recommendation_eval")

    assert sorted((r["recommender"], r["target"], r["k"]) for r in rows) == sorted(
        (name, target, k)
        for name in (
            "global_popular",
            "segment_popular",
            "global_not_bought",
            "segment_not_bought",
            "segment_not_bought_rules",
        )
        for target in ("all", "new")
        for k in (5, 10)
    )


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


def test_a_run_record_that_cannot_be_appended_is_one_more_line_after_the_runs_own_error(
    spark, tmp_path, monkeypatch, capsys
):
    def lost(*_args, **_kwargs):
        raise RuntimeError("the JVM is gone\n\tat a Java frame")

    monkeypatch.setattr(runner, "append_run_record", lost)

    code = cli.main(["features", "--set", f"warehouse.path={tmp_path / 'wh'}"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 2
    assert "table 'orders' not found" in err[0]
    assert err[1].endswith(
        "the run's record could not be appended to the runs table either: the JVM is gone"
    )


def test_a_succeeded_run_whose_record_cannot_be_appended_exits_1_and_says_so(
    spark, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(runner, "append_run_record", lambda *_: 1 / 0)

    code = cli.main(["vacuum", "--set", f"warehouse.path={tmp_path / 'wh'}"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        "customer-analytics: error: the run succeeded but its record could not be appended to "
        "the runs table: division by zero"
    ]


def test_vacuum_deletes_the_old_folders_of_killed_runs_only(spark, tmp_path, capsys):
    warehouse = tmp_path / "wh"
    folders = {
        "killed save": warehouse / "_models" / "segmentation" / "r1",
        "save under way": warehouse / "_models" / "segmentation" / "r2",
        "complete save": warehouse / "_models" / "segmentation" / "r3",
        "killed checkpoints": warehouse / "_checkpoints" / "c1",
        "running checkpoints": warehouse / "_checkpoints" / "c2",
    }
    for folder in folders.values():
        (folder / "model" / "stages").mkdir(parents=True)
        (folder / "model" / "stages" / "part-00000").write_text("x")
    (folders["complete save"] / "metadata.json").write_text('{"k": 2}')
    two_hours_ago = time.time() - 2 * 3600
    for name in ("killed save", "complete save", "killed checkpoints", "save under way"):
        for path in [folders[name], *folders[name].rglob("*")]:
            os.utime(path, (two_hours_ago, two_hours_ago))
    (folders["save under way"] / "model" / "stages" / "part-00001").write_text("y")  # just now

    code = cli.main(
        [
            "vacuum",
            "--set",
            f"warehouse.path={warehouse}",
            "--set",
            "warehouse.vacuum_retention_hours=1",
        ]
    )

    assert code == 0
    left = {name for name, folder in folders.items() if folder.exists()}
    assert left == {"save under way", "complete save", "running checkpoints"}
    out = capsys.readouterr().out
    assert "[vacuum] _models/segmentation/r1: left by a killed run, deleted" in out
    assert "[vacuum] _checkpoints/c1: left by a killed run, deleted" in out


def test_pipeline_evaluation_scores_the_popularity_baseline_as_counted_by_hand(pipeline_run):
    warehouse = pipeline_run[0]

    row = next(
        r
        for r in table_rows(warehouse, "recommendation_eval")
        if (r["recommender"], r["target"], r["k"]) == ("global_popular", "all", 5)
    )

    # Trained on orders up to 2023-03-03: the all-customers list over (01-03, 03-03] is
    # P1 (3 buyers, qty 5), P2 (3, 3), P5 (2, 2), P3 (1, 3), P4 (1, 3). Tested on 03-04..03-31:
    # 201 bought P3 (rank 4: P 1/5, AP 1/4), 202 P2 and P4 (ranks 2, 5: P 2/5,
    # AP (1/2 + 2/5)/2 = 0.45), 203 P1 (rank 1: P 1/5, AP 1), 204 P3 (P 1/5, AP 1/4).
    assert (row["users"], row["cutoff_date"].isoformat()) == (4, "2023-03-04")
    assert row["precision_at_k"] == pytest.approx(0.25)
    assert row["recall_at_k"] == pytest.approx(1.0)
    assert row["map_at_k"] == pytest.approx((0.25 + 0.45 + 1 + 0.25) / 4)
    assert row["coverage"] == pytest.approx(1.0)  # all 5 products of the training period
