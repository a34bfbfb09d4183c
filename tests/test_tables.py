"""Delta tables, native and through the deltalake fallback: round trips, versions, history,
atomicity, and each backend reading what the other wrote."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import functions as F

from customer_analytics.core.errors import ConcurrentWriteError
from customer_analytics.io.tables import TableWriter, Warehouse, read_table, table_history
from tests.conftest import BACKENDS

ORDERS_DDL = (
    "order_id string, customer_id string, order_ts timestamp, order_date date, amount double"
)


@pytest.fixture
def orders(spark):
    return spark.createDataFrame(
        [
            ("o1", "c1", datetime(2024, 1, 1, 9, 30), date(2024, 1, 1), 10.5),
            ("o2", "c1", datetime(2024, 1, 11, 18, 0), date(2024, 1, 11), 20.0),
            ("o3", None, datetime(2024, 2, 2, 0, 0), date(2024, 2, 2), None),
        ],
        ORDERS_DDL,
    )


def test_create_writes_version_0_that_reads_back_equal(spark, warehouse, orders):
    commit = warehouse.write("orders", orders)

    assert (commit.version, commit.rows) == (0, 3)
    assert DeltaTable(warehouse.table_path("orders")).version() == 0
    assert_df_equality(warehouse.read("orders"), orders, ignore_row_order=True)


def test_deltalake_reads_the_values_spark_wrote(warehouse, orders):
    warehouse.write("orders", orders)

    table = DeltaTable(warehouse.table_path("orders")).to_pyarrow_table().sort_by("order_id")

    assert table.column("order_id").to_pylist() == ["o1", "o2", "o3"]
    assert table.column("amount").to_pylist() == [10.5, 20.0, None]
    # timestamps are microseconds in UTC (the session time zone), dates stay dates
    assert str(table.schema.field("order_ts").type) == "timestamp[us, tz=UTC]"
    assert table.column("order_ts")[0].as_py().replace(tzinfo=None) == datetime(2024, 1, 1, 9, 30)
    assert table.column("order_date").to_pylist()[2] == date(2024, 2, 2)


def test_overwrite_replaces_rows_and_keeps_the_old_version(spark, warehouse, orders):
    warehouse.write("orders", orders)
    newer = orders.filter("order_id = 'o1'")

    commit = warehouse.write("orders", newer, mode="overwrite")

    assert commit.version == 1
    assert_df_equality(warehouse.read("orders"), newer, ignore_row_order=True)
    assert_df_equality(warehouse.read("orders", version=0), orders, ignore_row_order=True)


def test_overwrite_with_a_new_schema_replaces_the_schema(spark, warehouse, orders):
    warehouse.write("orders", orders)
    renamed = orders.selectExpr("order_id", "amount * 2 AS doubled")

    warehouse.write("orders", renamed)

    assert_df_equality(warehouse.read("orders"), renamed, ignore_row_order=True)
    assert DeltaTable(warehouse.table_path("orders")).schema().fields[1].name == "doubled"
    assert warehouse.read("orders", version=0).columns == orders.columns


def test_append_adds_rows_in_a_new_version(spark, warehouse, orders):
    warehouse.write("orders", orders.filter("order_id = 'o1'"))

    commit = warehouse.write("orders", orders.filter("order_id <> 'o1'"), mode="append")

    assert (commit.version, commit.rows) == (1, 2)
    assert_df_equality(warehouse.read("orders"), orders, ignore_row_order=True)


def test_append_with_another_schema_fails_before_writing(warehouse, orders):
    warehouse.write("orders", orders)

    with pytest.raises(ValueError, match="schema differs"):
        warehouse.write("orders", orders.select("order_id"), mode="append")

    assert DeltaTable(warehouse.table_path("orders")).version() == 0


def test_history_lists_every_commit_newest_first(warehouse, orders):
    warehouse.write("orders", orders)
    warehouse.write("orders", orders, mode="append")
    warehouse.write("orders", orders, mode="overwrite")

    versions = [entry["version"] for entry in warehouse.history("orders")]

    assert versions == [2, 1, 0]
    assert table_history(warehouse.table_path("orders"))[0]["operation"] == "WRITE"


def test_commit_metadata_is_stored_in_the_history(warehouse, orders):
    warehouse.write("orders", orders, run_id="run-42")

    assert warehouse.history("orders")[0]["run_id"] == "run-42"


def test_partitioned_table_reads_back_with_its_partition_column(spark, warehouse, orders):
    monthly = orders.selectExpr("*", "date_format(order_date, 'yyyy-MM') AS order_month")

    TableWriter.for_path(spark, warehouse.table_path("monthly")).partition_by(
        "order_month"
    ).execute(monthly)

    table = DeltaTable(warehouse.table_path("monthly"))
    assert table.metadata().partition_columns == ["order_month"]
    assert sorted(os.listdir(warehouse.table_path("monthly")))[:2] == [
        "_delta_log",
        "order_month=2024-01",
    ]
    assert_df_equality(
        warehouse.read("monthly").select(*monthly.columns), monthly, ignore_row_order=True
    )


def test_empty_dataframe_creates_an_empty_table_with_the_schema(spark, warehouse, orders):
    warehouse.write("orders", orders.limit(0))

    result = warehouse.read("orders")

    assert result.schema == orders.schema
    assert result.isEmpty()


def test_reading_a_missing_table_names_the_path(spark, tmp_path):
    with pytest.raises(FileNotFoundError, match="no Delta table at"):
        read_table(spark, str(tmp_path / "nothing"))


def test_invalid_mode_and_table_name_are_rejected(spark, warehouse):
    with pytest.raises(ValueError, match="mode must be one of"):
        warehouse.writer("orders").mode("upsert")
    with pytest.raises(ValueError, match="invalid table name"):
        warehouse.table_path("../escape")


KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from pyspark.sql import SparkSession
    from customer_analytics.config.schema import SparkConfig
    from customer_analytics.runtime.classic import configure
    from customer_analytics.io.tables import TableWriter

    path, backend = sys.argv[1], sys.argv[2]
    spark = configure(SparkSession.builder, SparkConfig(master="local[1]",
        conf={"spark.ui.enabled": False}), delta="auto" if backend == "native" else backend
    ).getOrCreate()
    writer = TableWriter.for_path(spark, path, backend).mode("overwrite")
    if backend == "deltalake":  # killed between moving the files in and committing them
        writer.before_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
        df = spark.createDataFrame([("new", 1)], "order_id string, n int")
    else:  # killed once the first of four slow tasks has written its file
        before = set(os.listdir(path))

        def kill_after_the_first_new_file():
            while not any(f.endswith(".parquet") for f in set(os.listdir(path)) - before):
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=kill_after_the_first_new_file, daemon=True).start()
        df = spark.range(0, 4, 1, 4).selectExpr(
            "cast(id as string) as order_id",
            "length(reflect('java.lang.Thread', 'sleep', cast(3000 as bigint))) as n",
        )
    writer.execute(df)
    """
)


def test_writer_killed_before_commit_leaves_previous_version_and_next_write_works(
    spark, warehouse, orders, tmp_path
):
    path = warehouse.table_path("orders")
    warehouse.write("orders", orders)
    script = tmp_path / "killed_writer.py"
    script.write_text(KILLED_WRITER)

    result = subprocess.run(
        [sys.executable, str(script), path, warehouse.backend],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == -9, result.stderr[-2000:]
    table = DeltaTable(path)
    assert table.version() == 0
    new_files = [f for f in os.listdir(path) if f.endswith(".parquet")]
    assert len(new_files) > len(table.file_uris())  # the killed writer's files are on disk ...
    assert sorted(table.to_pyarrow_table().column("order_id").to_pylist()) == ["o1", "o2", "o3"]
    # ... but invisible to readers, and the next writer commits normally
    assert warehouse.write("orders", orders.limit(1)).version == 1
    assert warehouse.read("orders").count() == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_vacuum_deletes_a_killed_writers_old_files_and_keeps_a_running_writers(
    spark, tmp_path, orders, backend
):
    warehouse = Warehouse.for_path(spark, str(tmp_path / "wh"), backend=backend)
    path = warehouse.table_path("orders")
    warehouse.write("orders", orders)
    warehouse.write("orders", orders.filter("order_id = 'o1'"))
    killed = os.path.join(path, "part-00000-killed-c000.snappy.parquet")
    running = os.path.join(path, "part-00000-running-c000.snappy.parquet")
    for name in (killed, running):  # files no commit names, as a writer leaves them
        with open(os.path.join(path, name), "wb") as out:
            out.write(b"PAR1")
    two_hours_ago = datetime.now().timestamp() - 2 * 3600
    os.utime(killed, (two_hours_ago, two_hours_ago))

    deleted = warehouse.vacuum("orders", retention_hours=1)

    assert deleted == 1
    assert not os.path.exists(killed)
    assert os.path.exists(running)
    # version 0 was replaced less than an hour ago: it can still be read
    assert_df_equality(warehouse.read("orders", version=0), orders, ignore_row_order=True)
    assert_df_equality(warehouse.read("orders"), orders.filter("order_id = 'o1'"))


def test_two_native_writers_creating_one_table_at_once_one_commits_the_other_is_told(
    spark, tmp_path
):
    warehouse = Warehouse.for_path(spark, str(tmp_path / "wh"), backend="native")
    marks = tmp_path / "marks"
    marks.mkdir()
    # each write's single task waits for the other's: both have read the (absent) table
    # before either commits, however late one of them starts
    first, second = (_meeting_write(spark, str(marks), name) for name in ("a", "b"))
    outcomes = _race(
        lambda: warehouse.write("orders", first), lambda: warehouse.write("orders", second)
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["Commit", "ConcurrentWriteError"]
    error = next(o for o in outcomes if isinstance(o, ConcurrentWriteError))
    assert str(error).startswith(f"table {warehouse.table_path('orders')}: another run committed")
    assert "\n" not in str(error)
    assert warehouse.read("orders").count() == 1


def test_two_deltalake_writers_committing_at_once_one_commits_and_the_other_leaves_nothing(
    spark, tmp_path, orders
):
    warehouse = Warehouse.for_path(spark, str(tmp_path / "wh"), backend="deltalake")
    path = warehouse.table_path("orders")
    warehouse.write("orders", orders)
    both_written = threading.Barrier(2, timeout=120)

    def write(df):
        return warehouse.writer("orders").before_commit(both_written.wait).execute(df)

    outcomes = _race(
        lambda: write(orders.filter("order_id = 'o1'")),
        lambda: write(orders.filter("order_id = 'o2'")),
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["Commit", "ConcurrentWriteError"]
    table = DeltaTable(path)
    assert table.version() == 1
    assert table.to_pyarrow_table().num_rows == 1
    on_disk = {f for f in os.listdir(path) if f.endswith(".parquet")}
    version_0 = {os.path.basename(u) for u in DeltaTable(path, version=0).file_uris()}
    assert on_disk == version_0 | {os.path.basename(u) for u in table.file_uris()}


@pytest.mark.parametrize("columns", ["same", "new"])
def test_a_deltalake_writer_whose_table_changed_after_it_read_it_is_told(
    spark, tmp_path, orders, columns
):
    # the other writer commits in full between this writer's read and its commit, however
    # long this writer's own read and file moves took
    warehouse = Warehouse.for_path(spark, str(tmp_path / "wh"), backend="deltalake")
    warehouse.write("orders", orders)
    other = orders.filter("order_id = 'o1'")
    mine = orders.filter("order_id = 'o2'")
    if columns == "new":
        mine = mine.withColumn("channel", mine.order_id)
    writer = warehouse.writer("orders").before_commit(lambda: warehouse.write("orders", other))

    with pytest.raises(ConcurrentWriteError):
        writer.execute(mine)

    assert DeltaTable(warehouse.table_path("orders")).version() == 1
    assert_df_equality(warehouse.read("orders"), other)


def _meeting_write(spark, marks: str, name: str):
    """
    One row whose task leaves the mark ``name`` in ``marks`` and returns when two marks are
    there (or after 60 s): the tasks of two such writes run together.
    """

    def meet(mark):
        open(os.path.join(marks, mark), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(marks)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(os.listdir(marks))

    met = F.udf(meet, "int")
    return spark.range(0, 1, 1, 1).select(F.lit("x").alias("order_id"), met(F.lit(name)).alias("n"))


def _race(*writes):
    """Run the writes in threads started together; each one's result or exception."""
    outcomes: list[object] = [None] * len(writes)

    def run(i, write):
        try:
            outcomes[i] = write()
        except Exception as exc:  # the outcome under test
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(writes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return outcomes


@pytest.mark.parametrize(("writer", "reader"), [("native", "deltalake"), ("deltalake", "native")])
def test_each_backend_reads_the_other_backends_versions(spark, tmp_path, orders, writer, reader):
    path = str(tmp_path / "wh")
    written = Warehouse.for_path(spark, path, backend=writer)
    written.write("orders", orders, run_id="run-1")
    written.write("orders", orders.filter("order_id = 'o2'"), run_id="run-2")

    read = Warehouse.for_path(spark, path, backend=reader)

    assert_df_equality(read.read("orders"), orders.filter("order_id = 'o2'"))
    assert_df_equality(read.read("orders", version=0), orders, ignore_row_order=True)
    history = read.history("orders")
    assert [(h["version"], h["run_id"]) for h in history] == [(1, "run-2"), (0, "run-1")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_deltalake_opens_the_table_with_its_history(spark, tmp_path, orders, backend):
    warehouse = Warehouse.for_path(spark, str(tmp_path / "wh"), backend=backend)
    warehouse.write("orders", orders, run_id="run-1")
    warehouse.write("orders", orders, mode="append", run_id="run-2")

    table = DeltaTable(warehouse.table_path("orders"))

    assert table.version() == 1
    assert table.to_pyarrow_table().num_rows == 6
    assert [h["operation"] for h in table.history()][0] == "WRITE"
    assert [h["userMetadata"] for h in table.history()] == [
        '{"run_id": "run-2"}',
        '{"run_id": "run-1"}',
    ]


def test_row_count_counts_the_rows_of_the_current_version(warehouse, orders):
    warehouse.write("orders", orders)
    warehouse.write("orders", orders.limit(2), mode="append")

    assert warehouse.row_count("orders") == 5  # 3 + 2


def test_a_deltalake_row_count_reads_the_log_statistics_not_the_data_files(spark, tmp_path, orders):
    warehouse = Warehouse.for_path(spark, str(tmp_path / "wh"), "deltalake")
    warehouse.write("orders", orders)
    warehouse.write("orders", orders.limit(2), mode="append")
    data_files = glob.glob(str(tmp_path / "wh" / "orders" / "**" / "*.parquet"), recursive=True)
    for path in data_files:  # a count that read the files would fail on these
        with open(path, "wb") as broken:
            broken.write(b"not parquet")

    assert len(data_files) >= 2
    assert warehouse.row_count("orders") == 5  # 3 + 2, from the commits' numRecords


def test_the_fallback_refuses_object_storage_before_writing(spark):
    with pytest.raises(ValueError, match="deltalake fallback writes local paths only"):
        Warehouse.for_path(spark, "s3a://bucket/wh", backend="deltalake")


def _file_statistics(path: str, version: int) -> list[dict]:
    """The ``stats`` of the files that commit ``version`` of the table at ``path`` adds."""
    with open(os.path.join(path, "_delta_log", f"{version:020d}.json")) as commit:
        actions = [json.loads(line) for line in commit]
    return [json.loads(a["add"]["stats"]) for a in actions if "add" in a]


def test_a_native_table_keeps_row_counts_and_no_min_max_statistics(spark, tmp_path, orders):
    warehouse = Warehouse.for_path(spark, str(tmp_path / "wh"), backend="native")

    warehouse.write("orders", orders)

    assert _file_statistics(warehouse.table_path("orders"), 0) == [{"numRecords": 3}]


def test_a_native_overwrite_with_new_columns_keeps_row_counts_only(spark, tmp_path, orders):
    warehouse = Warehouse.for_path(spark, str(tmp_path / "wh"), backend="native")
    warehouse.write("orders", orders)

    warehouse.write("orders", orders.selectExpr("amount", "order_id AS id"))

    assert _file_statistics(warehouse.table_path("orders"), 1) == [{"numRecords": 3}]


@pytest.fixture
def named(spark, tmp_path, request):
    """A warehouse whose tables are named in a schema of the session catalog (one per test)."""
    schema = f"t_{request.node.name.lower()[:40]}_{time.monotonic_ns() % 10**6}"
    warehouse = Warehouse.for_schema(spark, schema, str(tmp_path / "files"), backend="native")
    yield warehouse
    spark.sql(f"DROP SCHEMA IF EXISTS `{schema}` CASCADE")


def test_tables_by_name_are_written_read_and_listed_in_their_schema(spark, named, orders):
    first = named.write("orders", orders, run_id="r1")
    second = named.write("orders", orders.filter(F.col("order_id") == "o1"), run_id="r2")

    assert (first.table, first.version, second.version, second.rows) == (
        f"`{named.schema}`.`orders`",
        0,
        1,
        1,
    )
    assert spark.catalog.tableExists(f"{named.schema}.orders")
    assert named.table_names() == ["orders"]
    assert_df_equality(named.read("orders", version=0), orders, ignore_row_order=True)
    assert [r["order_id"] for r in named.read("orders").collect()] == ["o1"]
    assert [(h["version"], h["run_id"]) for h in named.history("orders")] == [(1, "r2"), (0, "r1")]


def test_a_table_by_name_is_absent_until_written_and_its_files_stay_out_of_the_files_path(
    named, orders, tmp_path
):
    assert named.exists("orders") is False
    with pytest.raises(FileNotFoundError, match="orders"):
        named.read("orders")

    named.write("orders", orders)

    assert named.exists("orders") is True
    assert not (tmp_path / "files" / "orders").exists()
    with pytest.raises(ValueError, match="addressed by name"):
        named.table_path("orders")


def test_an_append_by_name_with_another_schema_is_refused(named, orders):
    named.write("orders", orders)

    with pytest.raises(ValueError, match="schema differs"):
        named.write("orders", orders.drop("amount"), mode="append")


def test_vacuum_by_name_deletes_the_replaced_version_s_files(spark, named, orders):
    named.write("orders", orders)
    named.write("orders", orders)
    time.sleep(1)

    assert named.vacuum("orders", retention_hours=0) == 1
    assert named.read("orders").count() == 3


def test_tables_by_name_need_native_delta(spark, tmp_path):
    with pytest.raises(ValueError, match="need native Delta"):
        Warehouse.for_schema(spark, "never_made", str(tmp_path), backend="deltalake")


def test_a_table_by_name_tells_how_long_it_has_been_idle_and_is_dropped(named, orders):
    named.write("orders", orders)

    assert 0 <= named.idle_seconds("orders") < 600
    named.drop("orders")
    assert named.exists("orders") is False
    assert named.table_names() == []
