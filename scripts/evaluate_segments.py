"""
Score a segmentation against planted behaviour types (scripts/generate_data.py writes them
to ``customer_truth``): the adjusted Rand index and the contingency table.

    python scripts/evaluate_segments.py --warehouse warehouse --truth data/generated/customer_truth

Only the contingency table (clusters x types, a few dozen cells) reaches the driver.
"""

from __future__ import annotations

import argparse
from math import comb

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from customer_analytics.config.schema import SparkConfig
from customer_analytics.core import columns as C
from customer_analytics.io.tables import Warehouse
from customer_analytics.runtime.classic import configure

TRUTH_TYPE = "behaviour_type"


def adjusted_rand_index(cells: dict[tuple[str, str], int]) -> float:
    """ARI from a contingency table {(cluster, type): count} (Hubert and Arabie, 1985)."""
    n = sum(cells.values())
    rows: dict[str, int] = {}
    cols: dict[str, int] = {}
    for (row, col), count in cells.items():
        rows[row] = rows.get(row, 0) + count
        cols[col] = cols.get(col, 0) + count
    index = sum(comb(c, 2) for c in cells.values())
    row_pairs = sum(comb(c, 2) for c in rows.values())
    col_pairs = sum(comb(c, 2) for c in cols.values())
    expected = row_pairs * col_pairs / comb(n, 2)
    maximum = (row_pairs + col_pairs) / 2
    return (index - expected) / (maximum - expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--truth", required=True)
    args = parser.parse_args()
    spark = configure(SparkSession.builder, SparkConfig(conf={"spark.ui.enabled": False}))
    spark = spark.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    segments = Warehouse.for_path(spark, args.warehouse).read("customer_segments")
    truth = spark.read.parquet(args.truth).select(
        F.col(C.CUSTOMER_ID).cast("string").alias(C.CUSTOMER_ID), TRUTH_TYPE
    )
    table = (
        segments.join(truth, C.CUSTOMER_ID).groupBy(C.SEGMENT_NAME, TRUTH_TYPE).count().collect()
    )
    cells = {(r[C.SEGMENT_NAME], r[TRUTH_TYPE]): r["count"] for r in table}
    types = sorted({t for _, t in cells})
    names = sorted({s for s, _ in cells})
    width = max(len(n) for n in names) + 2
    print(" " * width + "".join(f"{t[:14]:>16}" for t in types))
    for name in names:
        print(f"{name:<{width}}" + "".join(f"{cells.get((name, t), 0):>16,}" for t in types))
    print(f"customers matched: {sum(cells.values()):,}")
    print(f"adjusted Rand index: {adjusted_rand_index(cells):.3f}")


if __name__ == "__main__":
    main()
