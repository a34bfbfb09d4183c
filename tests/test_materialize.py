"""How a run keeps frames it reads more than once (spark.materialize), and the session helpers
that tell a classic session from a Spark Connect one."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark import StorageLevel

from customer_analytics.core.connect import is_connect
from customer_analytics.io.tables import Warehouse
from customer_analytics.runtime import session
from customer_analytics.runtime.materialize import Materializer, Persisted

ROWS = [("c1", 3), ("c2", 5), ("c3", 8)]
DDL = "customer_id string, visits int"


def test_checkpoint_mode_cuts_the_lineage_into_a_local_checkpoint(spark):
    df = spark.createDataFrame(ROWS, DDL).filter("visits > 3")

    with Persisted(StorageLevel.DISK_ONLY, cut_lineage=True) as persisted:
        kept = persisted.keep(df)
        plan = kept._jdf.queryExecution().logical().toString()

        assert_df_equality(kept, spark.createDataFrame(ROWS[1:], DDL))
        assert "Filter" not in plan  # a leaf, not the filter over the local rows


def test_cache_mode_persists_at_the_level_asked(spark):
    df = spark.createDataFrame(ROWS, DDL)

    with Persisted(StorageLevel.DISK_ONLY, materializer=Materializer("cache")) as persisted:
        kept = persisted.keep(df)

        assert kept.storageLevel == StorageLevel.DISK_ONLY
    assert kept.storageLevel == StorageLevel.NONE  # released with the block


def test_table_mode_writes_scratch_tables_and_drops_them_when_the_run_ends(spark, tmp_path):
    warehouse = Warehouse.for_path(spark, str(tmp_path / "wh"), "native")
    materializer = Materializer("table", warehouse, "20261206T050000Z-abcd1234")
    df = spark.createDataFrame(ROWS, DDL)

    with Persisted(cut_lineage=True, materializer=materializer) as persisted:
        first = persisted.keep(df)
        second = persisted.keep(df.filter("visits = 5"))
    scratch = tmp_path / "wh" / "_scratch" / "20261206T050000Z-abcd1234"

    assert sorted(p.name for p in scratch.iterdir()) == ["1", "2"]
    assert_df_equality(first, df, ignore_row_order=True)
    assert [tuple(r) for r in second.collect()] == [("c2", 5)]
    materializer.close()
    assert not scratch.exists()


def test_table_mode_by_name_drops_its_scratch_tables_from_the_schema(spark, tmp_path):
    warehouse = Warehouse.for_schema(spark, "scratch_test", str(tmp_path / "files"))
    materializer = Materializer("table", warehouse, "20261206T050000Z-ab")
    try:
        kept = materializer.keep(spark.createDataFrame(ROWS, DDL), StorageLevel.NONE, cut=True)

        assert warehouse.table_names() == ["scratch_20261206t050000z_ab_1"]
        assert kept.count() == 3
        materializer.close()
        assert warehouse.table_names() == []
    finally:
        spark.sql("DROP SCHEMA IF EXISTS scratch_test CASCADE")


def test_a_classic_session_is_no_connect_session_and_reports_its_cores(spark):
    assert is_connect(spark) is False
    assert session.cores(spark) == 1  # conftest's spark.default.parallelism
