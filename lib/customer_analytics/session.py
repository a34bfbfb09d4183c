"""
The SparkSession builder: local mode by default, settings from ``spark`` in the configuration,
quiet logs, and native Delta Lake.

Native Delta is the default (``warehouse.delta: auto``): a local session loads the Delta Lake
JARs that match the installed ``delta-spark`` (see :mod:`customer_analytics.jars`) and switches
on the Delta extension and catalog. Where those JARs cannot be loaded (no Maven access, an
empty cache), the session starts without them, says so in one line on stderr, and tables are
written with ``deltalake`` (delta-rs). ``warehouse.delta: deltalake`` never loads them.

Under ``spark-submit`` the JVM is started before this code runs: the JARs come from its
``--packages`` or ``--jars``, and the extension is switched on when its classes are there.

Defaults (``DEFAULT_CONF``, under the user's settings) include a 16 MB thread stack for FPGrowth.
Settings the Delta fallback relies on are always set: Parquet timestamps as microseconds
(delta-rs and other Delta readers do not read INT96), session time zone UTC unless configured,
and Parquet timestamps without a zone read as ``timestamp``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from customer_analytics import class_archive, jars
from customer_analytics.config import SparkConfig
from customer_analytics.errors import UserError
from customer_analytics.storage import FileSystem

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

REQUIRED_CONF = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
    # pandas and pyarrow write nanosecond timestamps, which Spark otherwise refuses to read
    # (Illegal Parquet type: INT64 (TIMESTAMP(NANOS,false))); as longs, ingest converts them
    "spark.sql.legacy.parquet.nanosAsLong": "true",
}
#: MLlib's FPGrowth (``recommend.basket_rules``) serializes its FP-trees recursively, one level
#: per frequent product in a basket: orders of hundreds of products (Online Retail has one of
#: 1,114) overflow the default 1 MB thread stack. Only effective where Spark starts the JVMs.
THREAD_STACK = "-Xss16m"
#: Local mode, where one JVM on a few cores is driver and executor: the throughput collector
#: instead of G1, whose concurrent marking and refinement threads take CPU from the tasks.
#: Added only when the driver's options choose no collector of their own.
LOCAL_GC = "-XX:+UseParallelGC"
DEFAULT_CONF = {
    "spark.driver.extraJavaOptions": THREAD_STACK,
    "spark.executor.extraJavaOptions": THREAD_STACK,
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}
DELTA_MODES = ("auto", "native", "deltalake")


class JavaMissingError(UserError):
    """Spark needs a Java runtime and none was found."""


def check_java() -> None:
    """Raise :class:`JavaMissingError` with one line when no ``java`` can be found."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
        return
    if shutil.which("java") is None:
        raise JavaMissingError(
            "Java was not found: Spark needs Java 17 or 21 (install it, e.g. "
            "'apt-get install openjdk-17-jre-headless', or set JAVA_HOME)"
        )


def java_version() -> str:
    """The first line ``java -version`` prints, for run records and error messages."""
    out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else ""


def configure(
    builder: SparkSession.Builder,
    spark_cfg: SparkConfig,
    *,
    delta: str = "auto",
    paths: tuple[str, ...] = (),
    use_class_archive: bool = True,
) -> SparkSession.Builder:
    """
    Apply the configuration to a builder and return it (the pattern of Delta's
    ``configure_spark_with_delta_pip``): master, app name, defaults, the user's ``spark.conf``
    over them, the settings Delta tables require, and the Delta JARs and extension.

    Starts the JVM gateway (not a SparkContext) when none runs, so that a JAR that cannot be
    resolved is known before the session exists.

    Parameters
    ----------
    delta : {"auto", "native", "deltalake"}
        ``warehouse.delta``: ``deltalake`` loads no Delta JARs.
    paths : tuple of str
        The warehouse and source paths: an ``s3a://`` one adds ``hadoop-aws``.
    use_class_archive : bool
        In local mode, map the JVM class archive when there is one
        (:mod:`customer_analytics.class_archive`).
    """
    if delta not in DELTA_MODES:
        raise ValueError(f"delta must be one of {DELTA_MODES}, got {delta!r}")
    settings = {**DEFAULT_CONF, **{k: _conf_text(v) for k, v in spark_cfg.conf.items()}}
    settings.update(REQUIRED_CONF)
    settings["spark.app.name"] = spark_cfg.app_name
    if spark_cfg.master:
        settings["spark.master"] = spark_cfg.master
    if settings.get("spark.master", "").startswith("local"):
        # The Python workers (the clv scoring) otherwise run `python3` from PATH, which may
        # lack this package and its dependencies: in local mode they use the job's interpreter.
        # The SparkContext reads the variable, not spark.pyspark.python, when it starts.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if not _jvm_started():
            options = settings.get("spark.driver.extraJavaOptions", "")
            if not re.search(r"-XX:\+Use\w+GC\b", options):
                options = f"{options} {LOCAL_GC}"
            if use_class_archive:
                options = " ".join([options, *class_archive.java_options()])
            settings["spark.driver.extraJavaOptions"] = options.strip()
    if delta != "deltalake" and not _jvm_started():
        packages = jars.packages_for(paths)
        with_jars = jars.JarSettings.for_packages(packages).apply(settings)
        try:
            _start_jvm(with_jars)
            settings = with_jars
        except Exception as exc:  # Ivy could not resolve the packages: the JVM did not start
            fallback = (
                "; writing tables with deltalake (delta-rs) instead" if delta == "auto" else ""
            )
            print(
                f"customer-analytics: the Delta Lake JARs ({', '.join(packages)}) could not be "
                f"loaded ({_first_line(exc)}){fallback}",
                file=sys.stderr,
                flush=True,
            )
    if delta != "deltalake" and DELTA_EXTENSION not in settings.get("spark.sql.extensions", ""):
        _start_jvm(settings)
        if SparkContext._jvm.org.apache.spark.util.Utils.classIsLoadable(DELTA_EXTENSION):
            extensions = [e for e in settings.get("spark.sql.extensions", "").split(",") if e]
            settings["spark.sql.extensions"] = ",".join([*extensions, DELTA_EXTENSION])
            settings.setdefault("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder


def build(
    spark_cfg: SparkConfig, *, delta: str = "auto", paths: tuple[str, ...] = ()
) -> SparkSession:
    """
    Get or create the SparkSession for a job.

    An active session (Databricks, a test fixture, ``pyspark`` shell) is reused; the settings
    Delta tables need are applied to it at run time where Spark allows it.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in REQUIRED_CONF.items():
            active.conf.set(key, value)
        return active
    check_java()
    spark = configure(SparkSession.builder, spark_cfg, delta=delta, paths=paths).getOrCreate()
    spark.sparkContext.setLogLevel(spark_cfg.log_level)
    return spark


def native_delta_enabled(spark: SparkSession) -> bool:
    """True when this session writes Delta through the Delta Spark extension."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return True
    return DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", "") or "")


@contextmanager
def sql_settings(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """
    Set runtime SQL ``settings`` on ``spark`` for the ``with`` block, then put back what was
    there (unset where nothing was).
    """
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def is_local(spark: SparkSession) -> bool:
    """True when the session runs in Spark local mode (driver and executors in one JVM)."""
    return spark.sparkContext.master.startswith("local")


#: Where a cluster run keeps its checkpoints, under the warehouse (one folder per run).
CHECKPOINTS_FOLDER = "_checkpoints"


@contextmanager
def reliable_checkpoints(spark: SparkSession, folder: str) -> Iterator[str | None]:
    """
    On a cluster, checkpoints under ``folder`` for the block, removed after it; in local mode,
    nothing (``None``). A checkpoint directory already set (by the user) is kept and left
    alone.

    Lineage is cut with checkpoints (:func:`customer_analytics.pipeline.cut_lineage`): local
    ones keep their blocks on the executor that computed them, and a lost executor would fail
    the job, so on a cluster they are written to the shared file system instead.
    """
    context = spark.sparkContext
    if is_local(spark) or context.getCheckpointDir() is not None:
        yield None
        return
    context.setCheckpointDir(folder)
    created = context.getCheckpointDir()  # <folder>/<a new id>
    try:
        yield created
    finally:
        FileSystem.for_session(spark).delete(created)


def _jvm_started() -> bool:
    """True once this process has a JVM gateway, or when spark-submit started one for it."""
    return SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ


def _start_jvm(settings: dict[str, str]) -> None:
    """Start (or attach to) the JVM gateway with launch-time ``settings``."""
    conf = SparkConf(loadDefaults=True).setAll(list(settings.items()))
    SparkContext._ensure_initialized(conf=conf)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _conf_text(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


__all__ = ["build", "configure", "native_delta_enabled", "check_java"]
