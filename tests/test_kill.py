"""
Unattended runs: pipelines killed with SIGKILL at random points (both Delta backends), and two
ingests writing to one warehouse at once (native Delta), lose nothing and corrupt nothing.

Kill trials: ``customer-analytics pipeline`` (ingest, features, segment) runs as a process group
of its own (the Python driver and its JVM) and is killed at a time drawn with a fixed seed. After
each kill every version of every table must read, and every table the pipeline overwrites must
hold as many rows as after a clean run: a committed version is a whole write. The next trial
runs on what the killed one left. Then a run to the end must succeed and equal the clean run
table by table (chispa), and the ``vacuum`` job must delete every file the killed writers left
once it is older than the retention.

``KILL_TRIALS`` trials per backend (default 1, for CI time; seed ``KILL_SEED``, default 17).
The closing note of #17 reports a run with more.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import functions as F

from customer_analytics.core import catalog
from customer_analytics.core import columns as C
from customer_analytics.io.tables import Warehouse
from tests.conftest import BACKENDS, FIXTURES, REPO, run_cli

TRIALS = int(os.environ.get("KILL_TRIALS", "1"))
SEED = int(os.environ.get("KILL_SEED", "17"))
#: Kills are drawn between these seconds after the start: the JVM is up and the run has begun
#: by the first; the second is about when a run ends on a 2-core machine (a run that ends
#: before its kill is reported so).
KILL_WINDOW = {"native": (6.0, 40.0), "deltalake": (6.0, 25.0)}
PIPELINE = [
    "pipeline",
    "--skip",
    "clv",  # 6 members: too few to fit the lifetime value models
    "--skip",
    "recommend",  # recommend and evaluate write their tables as the stages before them do;
    "--skip",
    "evaluate",  # left out for CI time
    "--skip",
    "report",  # writes no table
]
SETTINGS = [
    "--set",
    f"source.path={FIXTURES / 'product_json_pipeline.csv'}",
    "--set",
    "segmentation.k=2",
    "--set",
    "segmentation.features=[total_visits, total_spend, recency_days]",
]
#: Tables each run appends to: compared on the last run's rows.
APPENDED = (catalog.INGEST_RECONCILIATION, catalog.SEGMENT_HISTORY)
#: The tables ``ingest`` overwrites.
INGESTED = (catalog.ORDER_LINES, catalog.ORDERS, catalog.CUSTOMERS, catalog.QUARANTINE)
#: Columns that differ between two runs by design.
RUN_COLUMNS = [C.RUN_ID, C.INGESTED_AT, C.SECONDS]


def argv(job: list[str], warehouse: Path, backend: str) -> list[str]:
    """``job`` on the fixture, into ``warehouse`` with ``backend``."""
    return [
        *job,
        *SETTINGS,
        "--set",
        f"warehouse.path={warehouse}",
        "--set",
        f"warehouse.delta={backend}",
    ]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """
    The warehouse of a pipeline run to the end with nothing killed. It is committed with
    deltalake, the faster of the two; each backend reads the other's tables.
    """
    warehouse = tmp_path_factory.mktemp("clean") / "wh"
    code, out = run_cli(*argv(PIPELINE, warehouse, "deltalake"))
    assert code == 0, out
    return warehouse


def start(job_argv: list[str], log: Path) -> subprocess.Popen:
    """``customer-analytics <job_argv>`` in a process of its own, output to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "customer_analytics", *job_argv],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the driver and its JVM
        )


def table_names(warehouse: Path) -> list[str]:
    """The tables with a first commit (a writer killed while creating one leaves none)."""
    return sorted(p.parent.parent.name for p in warehouse.glob(f"*/_delta_log/{0:020}.json"))


def read_every_version(warehouse: Path) -> None:
    """Read every version of every table with deltalake; a version that does not read raises."""
    for name in table_names(warehouse):
        for version in range(DeltaTable(str(warehouse / name)).version() + 1):
            DeltaTable(str(warehouse / name), version=version).to_pyarrow_table()


def unreferenced_files(table: Path) -> list[Path]:
    """Data files in the table's folder that no version of its log names."""
    log = DeltaTable(str(table))
    named = set()
    for version in range(log.version() + 1):
        named |= {
            Path(u.removeprefix("file://")).name
            for u in DeltaTable(str(table), version=version).file_uris()
        }
    return [
        p for p in table.rglob("*.parquet") if "_delta_log" not in p.parts and p.name not in named
    ]


def rows(spark, warehouse: Path, backend: str, name: str):
    table = Warehouse.for_path(spark, str(warehouse), backend).read(name)
    if name in APPENDED:
        last = table.agg(F.max(C.RUN_ID)).first()[0]
        table = table.filter(F.col(C.RUN_ID) == last)
    return table.drop(*[c for c in RUN_COLUMNS if c in table.columns])


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_runs_leave_every_table_readable_and_a_rerun_equals_a_clean_run(
    spark, clean_run, tmp_path, backend
):
    clean = clean_run
    expected_rows = {
        name: DeltaTable(str(clean / name)).to_pyarrow_table().num_rows
        for name in table_names(clean)
        if name not in (*APPENDED, catalog.RUNS)
    }
    warehouse = tmp_path / "wh"
    draw = random.Random(f"{SEED}-{backend}")
    outcomes = []
    for trial in range(TRIALS):
        kill_at = draw.uniform(*KILL_WINDOW[backend])
        log = tmp_path / f"trial-{trial}.log"
        run = start(argv(PIPELINE, warehouse, backend), log)
        try:
            run.wait(timeout=kill_at)
            outcome = f"ended {run.returncode} before the kill at {kill_at:.1f} s"
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=60)
            stages = [line for line in log.read_text().splitlines() if line.endswith("started")]
            where = stages[-1].split()[0] if stages else "before the first stage"
            outcome = f"killed at {kill_at:.1f} s in {where}"
        outcomes.append(outcome)
        read_every_version(warehouse)
        for name in set(table_names(warehouse)) & set(expected_rows):
            current = DeltaTable(str(warehouse / name)).to_pyarrow_table()
            assert current.num_rows == expected_rows[name], (name, outcome)
    print(f"{backend}: {TRIALS} kill trials (seed {SEED}): " + "; ".join(outcomes))

    code, out = run_cli(*argv(PIPELINE, warehouse, backend))

    assert code == 0, out
    assert table_names(warehouse) == table_names(clean)
    for name in table_names(clean):
        if name != catalog.RUNS:
            assert_approx_df_equality(
                rows(spark, warehouse, backend, name),
                rows(spark, clean, "deltalake", name),
                1e-9,
                ignore_row_order=True,
            )
    left = {name: unreferenced_files(warehouse / name) for name in table_names(warehouse)}
    two_hours_ago = time.time() - 2 * 3600
    for name, files in left.items():  # what the killed writers left ages, as it would
        staged = [p for folder in (warehouse / name).glob("_staging-*") for p in folder.rglob("*")]
        for path in [*files, *staged, *(warehouse / name).glob("_staging-*")]:
            os.utime(path, (two_hours_ago, two_hours_ago))
    print(f"{backend}: files left by killed writers: {sum(map(len, left.values()))}")

    code, out = run_cli(
        "vacuum",
        "--set",
        f"warehouse.path={warehouse}",
        "--set",
        f"warehouse.delta={backend}",
        "--set",
        "warehouse.vacuum_retention_hours=1",
    )

    assert code == 0, out
    assert not [path for files in left.values() for path in files if path.exists()]
    assert_approx_df_equality(
        rows(spark, warehouse, backend, catalog.CUSTOMER_SEGMENTS),
        rows(spark, clean, "deltalake", catalog.CUSTOMER_SEGMENTS),
        1e-9,
        ignore_row_order=True,
    )


def test_two_ingests_at_once_on_one_warehouse_lose_nothing_and_the_loser_says_so(
    spark, clean_run, tmp_path
):
    """
    With native Delta. The first run's writes are held after they have read the tables
    (tests/held_writes.py) while the second runs to the end, so the first commits last and
    must lose. The deltalake backend's conflict is tested in test_tables (two commits from one
    snapshot).
    """
    clean, backend = clean_run, "native"
    warehouse, gate = tmp_path / "wh", str(tmp_path / "gate")
    logs = {name: tmp_path / f"{name}.log" for name in ("held", "free")}
    held_argv = [gate, ",".join(INGESTED), *argv(["ingest"], warehouse, backend)]
    with open(logs["held"], "w") as out:
        held = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "held_writes.py"), *held_argv],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while not os.path.exists(f"{gate}.held"):
            assert held.poll() is None, logs["held"].read_text()
            assert time.monotonic() < deadline, "the held run never began a write"
            time.sleep(0.2)
        free = start(argv(["ingest"], warehouse, backend), logs["free"])
        assert free.wait(timeout=600) == 0, logs["free"].read_text()
    finally:
        Path(f"{gate}.open").touch()
    assert held.wait(timeout=600) == 3, logs["held"].read_text()

    outputs = {name: log.read_text() for name, log in logs.items()}
    errors = {
        name: [line for line in text.splitlines() if "customer-analytics: error:" in line]
        for name, text in outputs.items()
    }
    assert errors["free"] == [] and len(errors["held"]) == 1, outputs
    assert "another run committed to it while this run was writing it" in errors["held"][0]
    assert not any("Traceback" in text for text in outputs.values()), outputs
    runs_table = DeltaTable(str(warehouse / catalog.RUNS)).to_pyarrow_table().to_pylist()
    assert sorted(r[C.STATUS] for r in runs_table) == ["failed", "succeeded"]
    read_every_version(warehouse)
    for name in INGESTED:
        assert_approx_df_equality(
            rows(spark, warehouse, backend, name),
            rows(spark, clean, "deltalake", name),
            1e-9,
            ignore_row_order=True,
        )


def test_a_rerun_with_the_same_input_rewrites_every_table_equal_with_the_same_segment_names(
    spark, clean_run, tmp_path
):
    warehouse = tmp_path / "wh"
    shutil.copytree(clean_run, warehouse)
    tables = Warehouse.for_path(spark, str(warehouse), "deltalake")
    before = {name: tables.history(name)[0]["version"] for name in table_names(warehouse)}

    code, out = run_cli(*argv(PIPELINE, warehouse, "deltalake"))

    assert code == 0, out
    for name, version in before.items():
        if name in (catalog.RUNS, *APPENDED):
            continue
        assert tables.history(name)[0]["version"] == version + 1, name
        now, then = tables.read(name), tables.read(name, version=version)
        left_out = [c for c in RUN_COLUMNS if c in now.columns]
        assert_approx_df_equality(
            now.drop(*left_out), then.drop(*left_out), 1e-9, ignore_row_order=True
        )
    names = [C.CUSTOMER_ID, C.CLUSTER, C.SEGMENT_NAME]
    first = tables.read(catalog.CUSTOMER_SEGMENTS, version=before[catalog.CUSTOMER_SEGMENTS])
    assert_df_equality(
        tables.read(catalog.CUSTOMER_SEGMENTS).select(*names),
        first.select(*names),
        ignore_row_order=True,
    )
