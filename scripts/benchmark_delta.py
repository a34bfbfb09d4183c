"""
Benchmark: write and read back an N-row table through each available Delta path, against a
plain Parquet write as the floor. Prints one line per measurement.

    python scripts/benchmark_delta.py --rows 1000000 [--dir /tmp/delta-bench]

The native path runs only where the Delta Spark extension is active (Databricks, or a session
started with the Delta package); elsewhere it is reported as unavailable.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from customer_analytics.config.schema import SparkConfig
from customer_analytics.core.delta import native_delta_enabled
from customer_analytics.io.tables import Warehouse
from customer_analytics.runtime.classic import configure


def sample_frame(spark: SparkSession, rows: int):
    """Order-line-like rows: ids, a timestamp, a date, a product, doubles and a flag."""
    return spark.range(rows).select(
        F.format_string("O%09d", F.col("id")).alias("order_id"),
        F.format_string("C%07d", F.col("id") % 100_000).alias("customer_id"),
        F.timestamp_seconds(F.lit(1_577_836_800) + F.col("id") * 37).alias("order_ts"),
        F.to_date(F.timestamp_seconds(F.lit(1_577_836_800) + F.col("id") * 37)).alias("order_date"),
        F.format_string("P%04d", F.col("id") % 400).alias("product_id"),
        (F.col("id") % 7 + 1).cast("double").alias("quantity"),
        ((F.col("id") % 1000) / 10.0).alias("line_amount"),
        (F.col("id") % 50 == 0).alias("is_return"),
    )


def timed(label: str, action) -> float:
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    print(f"{label:<40} {seconds:8.2f} s  {result}", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix="delta-bench-")
    started = time.perf_counter()
    spark = configure(SparkSession.builder, SparkConfig(conf={"spark.ui.enabled": False}))
    spark = spark.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    print(f"spark session started in {time.perf_counter() - started:.1f} s")
    df = sample_frame(spark, args.rows).cache()
    print(f"rows: {df.count():,}")

    timed("parquet write (floor)", lambda: df.write.mode("overwrite").parquet(f"{root}/plain"))
    backends = ["deltalake"] + (["native"] if native_delta_enabled(spark) else [])
    for backend in backends:
        warehouse = Warehouse.for_path(spark, f"{root}/{backend}", backend)
        timed(f"{backend}: create", lambda w=warehouse: w.write("lines", df))
        timed(f"{backend}: overwrite", lambda w=warehouse: w.write("lines", df))
        timed(f"{backend}: append", lambda w=warehouse: w.write("lines", df, mode="append"))
        timed(
            f"{backend}: read back count + sum",
            lambda w=warehouse: w.read("lines").agg(F.count("*"), F.sum("line_amount")).first(),
        )
        timed(
            f"{backend}: read version 0",
            lambda w=warehouse: w.read("lines", version=0).count(),
        )
    if "native" not in backends:
        print("native: unavailable (the Delta Spark extension is not on this session's classpath)")
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
