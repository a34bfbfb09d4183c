"""One local SparkSession for the whole test suite, plus paths to the shared real data."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from customer_analytics.config.schema import SparkConfig
from customer_analytics.io.tables import Warehouse
from customer_analytics.runtime.classic import configure

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SHARED_DATA = Path(
    os.environ.get("CUSTOMER_ANALYTICS_SHARED_DATA", REPO.parent / "shared" / "data")
)


def run_cli(*argv: str) -> tuple[int, str]:
    """``customer-analytics <argv>`` in this process (its session), from the repository:
    (exit code, standard output)."""
    from customer_analytics import cli

    out = io.StringIO()
    with contextlib.chdir(REPO), contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return code, out.getvalue()


def table_rows(warehouse: Path, table: str) -> list[dict]:
    """The rows of the Delta table ``<warehouse>/<table>``, read with deltalake (no Spark)."""
    from deltalake import DeltaTable

    return DeltaTable(str(warehouse / table)).to_pyarrow_table().to_pylist()


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or skip the test when the folder is absent (a user's clone)."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the real-data tests need ../shared/data beside the repo")
    return path


#: The two ways tables are written (SPEC section 9); both are tested.
BACKENDS = ("native", "deltalake")


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    """
    The suite's one local session, with the Delta Lake JARs (native Delta).

    One partition per shuffle and per local collection: the tests' frames hold a few dozen
    rows, and with two partitions the suite spent a quarter more time on scheduling tasks.
    Two cores still run concurrent jobs (the KMeans starts, the racing writers). Jobs started
    as their own process (test_cli, test_kill, test_object_storage, the cluster test) keep
    their configuration's partitions.
    """
    spark_cfg = SparkConfig(
        master="local[2]",
        app_name="customer-analytics-tests",
        conf={
            "spark.sql.shuffle.partitions": 1,
            "spark.default.parallelism": 1,
            "spark.ui.enabled": False,
            "spark.driver.memory": "4g",
            "spark.sql.adaptive.enabled": True,
            "spark.databricks.delta.snapshotPartitions": 1,
            # managed tables (the tests of tables by name) in a folder of their own, not in
            # the directory the tests run from
            "spark.sql.warehouse.dir": tempfile.mkdtemp(prefix="customer-analytics-catalog-"),
        },
    )
    session = configure(SparkSession.builder, spark_cfg).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(params=BACKENDS)
def warehouse(spark: SparkSession, tmp_path: Path, request) -> Warehouse:
    """An empty warehouse written by each backend in turn: native Delta, then deltalake."""
    return Warehouse.for_path(spark, str(tmp_path / "warehouse"), backend=request.param)


_exit_status: int | None = None


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """
    End the process right after pytest has reported, with pytest's exit status.

    Reading Delta tables through pyarrow datasets (``DeltaTable.to_pyarrow_table``) can leave
    Arrow worker threads that abort the interpreter's shutdown now and then with "terminate
    called without an active exception" (delta-rs #2184, arrow #34314), which would turn a
    green run red. Set CUSTOMER_ANALYTICS_NORMAL_EXIT=1 to shut down normally.
    """
    if _exit_status is not None and not os.environ.get("CUSTOMER_ANALYTICS_NORMAL_EXIT"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)
