"""
Check a pipeline run's warehouse, or compare the tables of two runs with chispa.

    python scripts/compare_warehouses.py --check WAREHOUSE [--skip STAGE ...]
    python scripts/compare_warehouses.py WAREHOUSE_A WAREHOUSE_B

``--check`` opens every table the pipeline writes with ``deltalake.DeltaTable`` (but those of
the stages given with ``--skip``) and checks that the ``runs`` table holds one succeeded run.
The comparison reads both warehouses with one local Spark session with Delta (as
``tests/conftest.py``) through the package's table layer and asserts that every table of A
equals the same table of B: ``assert_approx_df_equality`` where a table has floating-point
columns (sums may add up in another order when tasks are retried), else
``assert_df_equality``, both ignoring row order.
Left out, since they differ by design between runs: the ``runs`` table and the columns that
hold the run's id, its time or a duration (``RUN_COLUMNS``). Exit code 0 when all is equal.
``scripts/cluster_smoke.sh`` runs both. A warehouse of tables by name in local mode is compared
through the folder of its managed tables, ``<warehouse.path>/_catalog/<schema>.db``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from customer_analytics.core import catalog
from customer_analytics.core import columns as C

#: Every table ``customer-analytics pipeline`` writes.
PIPELINE_TABLES = (
    catalog.ORDER_LINES,
    catalog.ORDERS,
    catalog.CUSTOMERS,
    catalog.QUARANTINE,
    catalog.INGEST_RECONCILIATION,
    catalog.CUSTOMER_FEATURES,
    catalog.MONTHLY_SALES,
    catalog.CUSTOMER_CLV,
    catalog.CLV_MODELS,
    catalog.KMEANS_SELECTION,
    catalog.CUSTOMER_SEGMENTS,
    catalog.SEGMENT_PROFILES,
    catalog.SEGMENT_HISTORY,
    catalog.FEATURE_IMPORTANCE,
    catalog.SEGMENT_TOP_PRODUCTS,
    catalog.BASKET_RULES,
    catalog.CUSTOMER_RECOMMENDATIONS,
    catalog.RECOMMENDATION_EVAL,
    catalog.RUNS,
)
#: The tables of the stages ``pipeline --skip`` may leave out.
STAGE_TABLES = {
    "clv": (catalog.CUSTOMER_CLV, catalog.CLV_MODELS),
    "evaluate": (catalog.RECOMMENDATION_EVAL,),
}
#: Columns whose values are the run's own: its id, when it ran, how long a step took.
RUN_COLUMNS = (C.RUN_ID, C.INGESTED_AT, C.SECONDS)
#: Largest absolute difference accepted between two floating-point values.
PRECISION = 1e-6
FLOAT_TYPES = ("float", "double")


def check(warehouse: str, skipped: tuple[str, ...] = ()) -> list[str]:
    """
    Problems with one run's warehouse: a table missing or unreadable (but those of the
    ``skipped`` stages), a run not succeeded.
    """
    from deltalake import DeltaTable

    left_out = {table for stage in skipped for table in STAGE_TABLES[stage]}
    expected = [name for name in PIPELINE_TABLES if name not in left_out]
    problems, rows = [], {}
    for name in expected:
        try:
            actions = DeltaTable(os.path.join(warehouse, name)).get_add_actions(flatten=True)
            rows[name] = sum(n or 0 for n in actions.column("num_records").to_pylist())
        except Exception as exc:  # TableNotFoundError, or a log that does not read
            problems.append(f"table {name} in {warehouse}: {type(exc).__name__}: {exc}")
    if not problems:
        runs = DeltaTable(os.path.join(warehouse, catalog.RUNS)).to_pyarrow_table().to_pylist()
        statuses = [r[C.STATUS] for r in runs]
        if statuses != ["succeeded"]:
            problems.append(f"runs in {warehouse}: expected one succeeded run, got {statuses}")
    if not problems:
        print(
            f"{len(expected)} Delta tables read with deltalake "
            f"({rows[catalog.ORDER_LINES]:,} order_lines, "
            f"{rows[catalog.CUSTOMER_SEGMENTS]:,} customer_segments, "
            f"{rows[catalog.BASKET_RULES]:,} basket_rules)"
        )
    return problems


def compare(first: str, second: str) -> list[str]:
    """Tables that differ between two warehouses (every table but ``runs``), with the reason."""
    from chispa import assert_approx_df_equality, assert_df_equality
    from pyspark.sql import SparkSession

    from customer_analytics.config.schema import SparkConfig
    from customer_analytics.io.tables import Warehouse
    from customer_analytics.runtime.classic import configure

    spark_cfg = SparkConfig(
        master="local[2]",
        app_name="compare-warehouses",
        conf={
            "spark.sql.shuffle.partitions": 2,
            "spark.default.parallelism": 2,
            "spark.databricks.delta.snapshotPartitions": 2,
            "spark.ui.enabled": False,
        },
    )
    spark = configure(SparkSession.builder, spark_cfg).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    warehouses = [Warehouse.for_path(spark, path, "native") for path in (first, second)]
    names = warehouses[0].table_names()
    if names != warehouses[1].table_names():
        spark.stop()
        return [f"the tables differ: {names} vs {warehouses[1].table_names()}"]
    problems, compared = [], 0
    try:
        for name in names:
            if name == catalog.RUNS:
                continue
            t0 = time.perf_counter()
            a, b = (warehouse.read(name) for warehouse in warehouses)
            left_out = [c for c in RUN_COLUMNS if c in a.columns]
            floats = [f.name for f in a.schema.fields if f.dataType.typeName() in FLOAT_TYPES]
            try:
                if floats:
                    assert_approx_df_equality(
                        a, b, PRECISION, ignore_row_order=True, ignore_columns=left_out
                    )
                else:
                    assert_df_equality(a, b, ignore_row_order=True, ignore_columns=left_out)
            except Exception as exc:  # chispa's DataFramesNotEqualError, SchemasNotEqualError
                problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:3000]}")
                continue
            compared += 1
            how = f"approx {PRECISION:g} on {len(floats)} float column(s)" if floats else "exact"
            skipped = f", left out {', '.join(left_out)}" if left_out else ""
            seconds = time.perf_counter() - t0
            print(f"  {name}: {a.count():,} rows equal ({how}{skipped}; {seconds:.1f} s)")
    finally:
        spark.stop()
    if not problems:
        print(
            f"tables equal: {compared} tables compared, all equal (chispa, row order ignored; "
            f"left out: the {catalog.RUNS} table and the columns "
            f"{', '.join(RUN_COLUMNS)})"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/compare_warehouses.py", description=__doc__
    )
    parser.add_argument("--check", metavar="WAREHOUSE", help="check one run's warehouse")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=sorted(STAGE_TABLES),
        metavar="STAGE",
        help="--check: a stage the run left out (pipeline --skip), whose tables are not expected",
    )
    parser.add_argument("warehouses", nargs="*", metavar="WAREHOUSE")
    args = parser.parse_args(argv)
    if args.check and not args.warehouses:
        problems = check(args.check, tuple(args.skip))
    elif not args.check and len(args.warehouses) == 2:
        problems = compare(*args.warehouses)
    else:
        parser.error("give --check WAREHOUSE, or two warehouses to compare")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # not a normal shutdown: pyarrow datasets of deltalake can abort it (see tests/conftest.py)
    os._exit(code)
