"""
The JVM class archive of local sessions: a class-data-sharing archive (JDK CDS, ``-XX:
SharedArchiveFile``) of the classes a job loads, so that the JVM of every later local job maps
them instead of loading, verifying and linking them one by one from Spark's JARs.

A job in local mode starts its own JVM. On a 2-core machine, a session that starts and counts
a Delta table takes 21 to 24 s without the archive and 13.5 to 15.5 s with it: the session
starts in 3.7 s instead of 7 to 8 s, and its first queries run 2 to 3 s sooner.

The archive is made once, by :func:`create` (``python -m customer_analytics.class_archive
create``, which the set-up scripts run after caching the Delta JARs): a child process starts a
local session with ``-XX:ArchiveClassesAtExit``, runs :func:`warm_up` (a Delta write and read,
the aggregations, joins, windows, JSON parsing and MLlib fits the stages use, on a few rows),
and the JVM writes the archive when it exits. Its file name carries the versions it was made
for (Java, PySpark, ``delta-spark``), so an upgrade makes a new one instead of using a stale
one; a JVM that finds the archive does not match its class path ignores it (no message), and
runs as without it.

Only where this package starts the JVM (local mode); under ``spark-submit`` and on
Databricks the JVM is started before this code runs.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile

#: JVM options that use an archive and stay silent when it cannot be used.
USE_OPTIONS = ("-Xshare:auto", "-Xlog:cds=off", "-Xlog:cds+dynamic=off")
ARCHIVE_FOLDER_ENV = "CUSTOMER_ANALYTICS_CLASS_ARCHIVE"
#: Longest the child that makes the archive may take (its JVM writes ~200 MB at exit).
CREATE_TIMEOUT_SECONDS = 600


def archive_folder() -> str:
    """
    ``$CUSTOMER_ANALYTICS_CLASS_ARCHIVE``, else ``~/.cache/customer-analytics/jvm`` (the
    value ``off`` switches the archive off).
    """
    default = os.path.join(os.path.expanduser("~"), ".cache", "customer-analytics", "jvm")
    return os.environ.get(ARCHIVE_FOLDER_ENV) or default


def archive_path() -> str | None:
    """
    Where the archive for this Java, PySpark and ``delta-spark`` lives (it may not exist);
    None without a ``java`` to name it by, or when the archive is switched off.

    The name also depends on the size and time of each of PySpark's JARs: the JVM ignores an
    archive made from a class path whose JARs were since rewritten (PySpark reinstalled at the
    same version, a new virtual environment), so such an install needs an archive of its own.
    """
    java = _java_executable()
    if java is None or archive_folder() == "off":
        return None
    stat = os.stat(java)
    parts = [
        os.path.realpath(java),
        str(stat.st_size),
        str(int(stat.st_mtime)),
        _version("pyspark"),
        _version("delta-spark"),
        *_jar_stamps(),
    ]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return os.path.join(archive_folder(), f"spark-{_version('pyspark')}-{key}.jsa")


def java_options() -> list[str]:
    """The driver JVM options that map the archive, or none when there is no archive."""
    path = archive_path()
    if path is None or not os.path.isfile(path):
        return []
    return [f"-XX:SharedArchiveFile={path}", *USE_OPTIONS]


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
            [sys.executable, "-m", "customer_analytics.class_archive", "warm-up", partial, work],
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

    from customer_analytics.tables import TableWriter

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

    from customer_analytics import config, session

    settings = config.SparkConfig()
    options = f"{session.THREAD_STACK} -XX:ArchiveClassesAtExit={archive}"
    settings.conf["spark.driver.extraJavaOptions"] = options
    spark = session.configure(SparkSession.builder, settings, use_class_archive=False).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    warm_up(spark, work)
    spark.stop()
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is not None and getattr(gateway, "proc", None) is not None:
        gateway.proc.stdin.close()  # the JVM exits when its standard input closes
        gateway.proc.wait(timeout=CREATE_TIMEOUT_SECONDS)
    return 0


def _java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
        return os.path.join(java_home, "bin", "java")
    return shutil.which("java")


def pyspark_jars_folder() -> str:
    """The folder of the JARs on the class path of PySpark's JVM."""
    import pyspark

    return os.path.join(os.path.dirname(pyspark.__file__), "jars")


def _jar_stamps() -> list[str]:
    """``name size mtime`` of each JAR in :func:`pyspark_jars_folder`."""
    stamps = []
    for entry in sorted(os.scandir(pyspark_jars_folder()), key=lambda e: e.name):
        if entry.name.endswith(".jar"):
            stat = entry.stat()
            stamps.append(f"{entry.name} {stat.st_size} {int(stat.st_mtime)}")
    return stamps


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer_analytics.class_archive")
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
