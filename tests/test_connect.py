"""
Spark Connect: the pipeline run by a client with no JVM against a Connect server in a process
of its own, tables by catalog name, compared table by table with a classic run by path; a static
setting refused; the token kept out of every output; and no JVM handle in the package outside
the classic-only modules.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality, assert_df_equality

from customer_analytics.core import catalog
from customer_analytics.core import columns as C
from tests.conftest import FIXTURES, REPO, run_cli

pytestmark = pytest.mark.connect

TOKEN = "s3cr3t-connect-token"
CONNECT_CONF = str(REPO / "conf" / "connect.yaml")
#: The 14-order fixture's pipeline, as test_cli runs it (6 customers: no clv, a fixed K).
FIXTURE_ARGS = [
    "--skip",
    "clv",
    "--set",
    f"source.path={FIXTURES / 'product_json_pipeline.csv'}",
    "--set",
    "segmentation.k=2",
    "--set",
    "segmentation.features=[total_visits, total_spend, recency_days]",
]
#: Every table the fixture's pipeline writes but ``runs``, whose rows are the run's own.
COMPARED_TABLES = (
    catalog.ORDER_LINES,
    catalog.ORDERS,
    catalog.CUSTOMERS,
    catalog.QUARANTINE,
    catalog.INGEST_RECONCILIATION,
    catalog.CUSTOMER_FEATURES,
    catalog.MONTHLY_SALES,
    catalog.KMEANS_SELECTION,
    catalog.CUSTOMER_SEGMENTS,
    catalog.SEGMENT_PROFILES,
    catalog.SEGMENT_HISTORY,
    catalog.FEATURE_IMPORTANCE,
    catalog.SEGMENT_TOP_PRODUCTS,
    catalog.BASKET_RULES,
    catalog.CUSTOMER_RECOMMENDATIONS,
    catalog.RECOMMENDATION_EVAL,
)
RUN_COLUMNS = (C.RUN_ID, C.INGESTED_AT, C.SECONDS)
#: Modules that drive a classic session's JVM, and so may name its handles.
CLASSIC_ONLY = {
    "runtime/classic.py",
    "runtime/jars.py",
    "tools/class_archive.py",
    "io/filesystem/hadoop.py",
}
JVM_HANDLES = {"sparkContext", "_jvm", "_jsc", "rdd", "SparkContext", "_gateway"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "lib"), str(REPO)]))
    for name in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_LOCAL_REMOTE"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Connect server with Delta on 127.0.0.1: (remote URL with token, its warehouse dir)."""
    managed = tmp_path_factory.mktemp("connect-server") / "managed"
    port = _free_port()
    env = dict(_environment(), SPARK_CONNECT_AUTHENTICATE_TOKEN=TOKEN)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.connect_server", str(port), str(managed)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        line = process.stdout.readline()  # blocks until the server listens (or dies)
        assert line.strip() == "ready", f"the Connect server did not start (exit {process.poll()})"
        yield f"sc://localhost:{port}/;token={TOKEN}", managed
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "customer_analytics", *argv],
        cwd=REPO,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def connect_run(server, tmp_path_factory):
    """The fixture's pipeline over Connect, tables in schema ``ca``: (result, files, seconds)."""
    remote, _ = server
    files = tmp_path_factory.mktemp("connect-files")
    started = time.perf_counter()
    result = _cli(
        "pipeline",
        "--conf",
        CONNECT_CONF,
        "--remote",
        remote,
        *FIXTURE_ARGS,
        "--set",
        f"warehouse.path={files}",
        "--set",
        "warehouse.schema=ca",
    )
    return result, files, time.perf_counter() - started


@pytest.fixture(scope="module")
def classic_run(spark, tmp_path_factory):
    """The same pipeline in this process's classic session, tables by path."""
    warehouse = tmp_path_factory.mktemp("classic") / "wh"
    started = time.perf_counter()
    code, out = run_cli(
        "pipeline",
        "--conf",
        CONNECT_CONF,
        *FIXTURE_ARGS,
        "--skip",
        "report",
        "--set",
        f"warehouse.path={warehouse}",
    )
    assert code == 0, out
    return warehouse, time.perf_counter() - started


def test_the_pipeline_over_connect_succeeds_and_says_where_its_tables_are(connect_run):
    result, files, seconds = connect_run
    print(f"pipeline over Spark Connect on the 14-order fixture: {seconds:.1f} s")

    assert result.returncode == 0, result.stderr[-3000:]
    first = result.stdout.splitlines()[0]
    assert f"warehouse `ca`, files in file:{files}" in first
    assert " over Spark Connect sc://localhost:" in first
    assert first.endswith("/;token=***")
    assert (files / "_report" / "report.html").is_file()  # written through Arrow's file layer
    assert (files / "_models" / "segmentation").is_dir()


def test_every_table_over_connect_by_name_equals_the_classic_run_by_path(
    spark, connect_run, classic_run, server
):
    result, _, connect_seconds = connect_run
    classic, classic_seconds = classic_run
    _, managed = server
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"fixture pipeline: classic {classic_seconds:.1f} s, Connect {connect_seconds:.1f} s")

    for name in COMPARED_TABLES:
        by_name = spark.read.format("delta").load(str(managed / "ca.db" / name))
        by_path = spark.read.format("delta").load(str(classic / name))
        left_out = [c for c in RUN_COLUMNS if c in by_path.columns]
        floats = [f.name for f in by_path.schema.fields if f.dataType.typeName() == "double"]
        if floats:
            assert_approx_df_equality(
                by_name, by_path, 1e-9, ignore_row_order=True, ignore_columns=left_out
            )
        else:
            assert_df_equality(by_name, by_path, ignore_row_order=True, ignore_columns=left_out)


def test_the_token_appears_in_no_output_and_not_in_the_runs_table(spark, connect_run, server):
    result, _, _ = connect_run
    _, managed = server

    assert TOKEN not in result.stdout + result.stderr
    runs = spark.read.format("delta").load(str(managed / "ca.db" / catalog.RUNS)).collect()
    assert [r[C.STATUS] for r in runs] == ["succeeded"]
    arguments = json.loads(runs[0][C.ARGUMENTS])
    assert TOKEN not in " ".join(arguments)
    assert arguments[arguments.index("--remote") + 1].endswith(";token=***")


def test_a_static_setting_over_connect_is_refused_in_one_line_naming_it(server, tmp_path):
    remote, _ = server

    result = _cli(
        "ingest",
        "--conf",
        CONNECT_CONF,
        "--remote",
        remote,
        "--set",
        f"source.path={FIXTURES / 'product_json_pipeline.csv'}",
        "--set",
        f"warehouse.path={tmp_path / 'wh'}",
        "--set",
        "spark.conf.spark.executor.memory=2g",
    )

    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    assert err[0].startswith("customer-analytics: error: spark.conf: spark.executor.memory: static")
    assert TOKEN not in result.stdout + result.stderr
    assert not (tmp_path / "wh").exists()


def test_deltalake_over_connect_is_a_configuration_error(tmp_path):
    result = _cli(
        "ingest",
        "--remote",
        "sc://localhost:1",
        "--set",
        f"source.path={FIXTURES / 'product_json_pipeline.csv'}",
        "--set",
        "warehouse.delta=deltalake",
    )

    assert result.returncode == 2
    assert "over Spark Connect (spark.remote) the server's Delta Lake" in result.stderr


def test_a_server_that_does_not_listen_is_one_line_at_once_without_the_token():
    port = _free_port()

    result = _cli(
        "ingest",
        "--remote",
        f"sc://localhost:{port}/;token={TOKEN}",
        "--set",
        f"source.path={FIXTURES / 'product_json_pipeline.csv'}",
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"customer-analytics: error: spark.remote sc://localhost:{port}/;token=***: no Spark "
        f"Connect server answers at localhost:{port} (Connection refused)"
    ]


def test_a_remote_that_is_not_a_connect_url_is_refused_without_repeating_it():
    result = _cli(
        "ingest",
        "--remote",
        f"http://localhost:1/;token={TOKEN}",
        "--set",
        f"source.path={FIXTURES / 'product_json_pipeline.csv'}",
    )

    assert result.returncode == 2
    assert "a Spark Connect URL, sc://host:port" in result.stderr
    assert TOKEN not in result.stderr


def _jvm_handles(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        name = getattr(node, "attr", None) or getattr(node, "id", None)
        if isinstance(node, ast.alias):
            name = node.name.split(".")[-1]
        if name in JVM_HANDLES:
            found.append(f"{name} (line {node.lineno})" if hasattr(node, "lineno") else name)
    return found


def test_no_jvm_handle_outside_the_classic_only_modules():
    package = REPO / "lib" / "customer_analytics"
    found = {}
    for path in sorted([*package.rglob("*.py"), *(REPO / "jobs").glob("*.py")]):
        relative = path.relative_to(package).as_posix() if package in path.parents else path.name
        if relative in CLASSIC_ONLY:
            continue
        handles = _jvm_handles(path)
        if handles:
            found[relative] = handles
    assert found == {}


def test_the_jvm_handle_check_finds_them(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from pyspark import SparkContext\n"
        "n = spark.sparkContext.defaultParallelism\n"
        "rows = df.rdd.count()\n"
        "conf = spark._jsc.hadoopConfiguration()\n"
    )

    assert [h.split(" ")[0] for h in _jvm_handles(sample)] == [
        "SparkContext",
        "sparkContext",
        "rdd",
        "_jsc",
    ]


def test_tables_by_name_in_local_mode_outlive_the_process_that_wrote_them(spark, tmp_path):
    files = tmp_path / "files"
    common = [
        "--set",
        f"source.path={FIXTURES / 'product_json_pipeline.csv'}",
        "--set",
        f"warehouse.path={files}",
        "--set",
        "warehouse.schema=ca",
    ]

    ingest = _cli("ingest", *common)
    features = _cli("features", *common)  # another process: finds orders through the metastore

    assert (ingest.returncode, features.returncode) == (0, 0), (
        ingest.stderr[-2000:] + features.stderr[-2000:]
    )
    assert "rows in 14, rows out 6" in features.stdout  # 14 orders of 6 customers
    assert sorted(p.name for p in (files / "_catalog" / "ca.db").iterdir()) == sorted(
        [
            catalog.CUSTOMER_FEATURES,
            catalog.CUSTOMERS,
            catalog.INGEST_RECONCILIATION,
            catalog.MONTHLY_SALES,
            catalog.ORDER_LINES,
            catalog.ORDERS,
            catalog.QUARANTINE,
            catalog.RUNS,
        ]
    )
    assert (files / "_metastore").is_dir()
    assert not (REPO / "derby.log").exists()
    features_rows = spark.read.format("delta").load(
        str(files / "_catalog" / "ca.db" / catalog.CUSTOMER_FEATURES)
    )
    assert features_rows.count() == 6
    shutil.rmtree(files)
