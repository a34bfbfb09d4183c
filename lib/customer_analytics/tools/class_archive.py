"""
Make the JVM class archive of local sessions (:mod:`customer_analytics.runtime.class_archive`):
``python -m customer_analytics.tools.class_archive create``, which the set-up scripts run once
after caching the Delta JARs.

A child process starts a local session with ``-XX:ArchiveClassesAtExit``, runs :func:`warm_up`
(a Delta write and read, the aggregations, joins, windows, JSON parsing and MLlib fits the
stages use, on a few rows), and the JVM writes the archive when it exits. This tool sits at the
top of the import graph: it drives a whole session, while the session only reads the archive's
JVM options from the leaf module.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from customer_analytics.config.schema import SparkConfig
from customer_analytics.runtime import classic, spark_settings
from customer_analytics.runtime.class_archive import archive_path

#: Longest the child that makes the archive may take (its JVM writes ~200 MB at exit).
CREATE_TIMEOUT_SECONDS = 600


def create(timeout: float = CREATE_TIMEOUT_SECONDS) -> str:
    """
    Make the archive for this installation (replacing an older one of the same name) and
    return its path.

    Raises
    ------
    RuntimeError
        No ``java``, or the child failed or wrote no archive (the message says which).
    """
    path = archive_path()
    if path is None:
        raise RuntimeError("java was not found, or CUSTOMER_ANALYTICS_CLASS_ARCHIVE is off")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.partial"
    with tempfile.TemporaryDirectory() as work:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "customer_analytics.tools.class_archive",
                "warm-up",
                partial,
                work,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0 or not os.path.isfile(partial):
        if os.path.exists(partial):
            os.remove(partial)
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(
            f"the warm-up exited {result.returncode}: {lines[-1] if lines else 'no output'}"
        )
    os.replace(partial, path)
    return path


def warm_up(spark, work: str) -> None:
    """Run, on a few rows, the kinds of Spark and Delta work the stages do."""
    from pyspark.ml import Pipeline
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.ml.fpm import FPGrowth
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from customer_analytics.io.tables import TableWriter

    rows = [
        (f"T{i}", f"C{i % 7}", f"2024-01-{1 + i % 28:02d} 10:00:00", float(i % 5 + 1), i % 3)
        for i in range(200)
    ]
    schema = "order_id string, customer_id string, ts string, amount double, p int"
    raw = spark.createDataFrame(rows, schema)
    items = F.to_json(F.array(F.struct(F.col("p").cast("string").alias("product_id"))))
    parsed = raw.select(
        "*",
        F.to_timestamp("ts").alias("order_ts"),
        F.from_json(items, "array<struct<product_id:string>>").alias("items"),
    )
    lines = parsed.select("order_id", "customer_id", "order_ts", "amount", F.inline("items"))
    table = os.path.join(work, "lines")
    TableWriter.for_path(spark, table).execute(lines)
    read = spark.read.format("delta").load(table)
    window = Window.partitionBy("customer_id").orderBy("order_ts")
    per_customer = (
        read.withColumn("previous", F.lag("amount").over(window))
        .groupBy("customer_id")
        .agg(
            F.count_distinct("product_id").alias("products"),
            F.sum("amount").alias("spend"),
            F.max_by("amount", "order_ts").alias("last"),
            F.percentile_approx("amount", [0.5], 100).alias("median"),
        )
    )
    joined = per_customer.join(read.groupBy("customer_id").count(), "customer_id", "left")
    first = F.broadcast(joined.limit(1).select(F.col("spend").alias("first_spend")))
    TableWriter.for_path(spark, os.path.join(work, "customers")).execute(joined.crossJoin(first))
    vectors = Pipeline(
        stages=[
            VectorAssembler(inputCols=["spend", "products"], outputCol="raw"),
            StandardScaler(inputCol="raw", outputCol="features"),
            KMeans(k=2, seed=1, maxIter=3),
        ]
    ).fit(joined)
    ClusteringEvaluator().evaluate(vectors.transform(joined))
    baskets = read.groupBy("order_id").agg(F.collect_set("product_id").alias("items"))
    FPGrowth(minSupport=0.1).fit(baskets).associationRules.count()


def _warm_up_main(archive: str, work: str) -> int:
    """The child of :func:`create`: a session that writes ``archive`` when its JVM exits."""
    from pyspark.sql import SparkSession

    settings = SparkConfig()
    options = f"{spark_settings.THREAD_STACK} -XX:ArchiveClassesAtExit={archive}"
    settings.conf["spark.driver.extraJavaOptions"] = options
    spark = classic.configure(SparkSession.builder, settings, use_class_archive=False).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    warm_up(spark, work)
    spark.stop()
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is not None and getattr(gateway, "proc", None) is not None:
        gateway.proc.stdin.close()  # the JVM exits when its standard input closes
        gateway.proc.wait(timeout=CREATE_TIMEOUT_SECONDS)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer_analytics.tools.class_archive")
    sub = parser.add_subparsers(dest="action", required=True)
    make = sub.add_parser("create", help="make the archive for this installation (once)")
    make.add_argument("--again", action="store_true", help="make it even when it is there")
    sub.add_parser("show", help="print where the archive is, and whether it exists")
    child = sub.add_parser("warm-up", help=argparse.SUPPRESS)
    child.add_argument("archive")
    child.add_argument("work")
    args = parser.parse_args(argv)
    if args.action == "warm-up":
        return _warm_up_main(args.archive, args.work)
    if args.action == "show":
        path = archive_path()
        print(f"{path} ({'present' if path and os.path.isfile(path) else 'absent'})")
        return 0
    path = archive_path()
    if path is not None and os.path.isfile(path) and not args.again:
        print(f"JVM class archive present: {path}")
        return 0
    try:
        print(f"JVM class archive written: {create()}")
        return 0
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"The JVM class archive could not be made ({exc}): jobs start without it.")
        return 1


if __name__ == "__main__":
    sys.exit(main())
