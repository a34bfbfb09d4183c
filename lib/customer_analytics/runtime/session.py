"""
The SparkSession builder: local mode by default, settings from ``spark`` in the configuration,
quiet logs, and native Delta Lake.

Native Delta is the default (``warehouse.delta: auto``): a local session loads the Delta Lake
JARs that match the installed ``delta-spark`` (see :mod:`customer_analytics.runtime.jars`) and
switches on the Delta extension and catalog. Where those JARs cannot be loaded (no Maven access, an
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
import sys

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from customer_analytics.config.schema import SparkConfig
from customer_analytics.core.delta import (
    DEFAULT_DELTA_MODE,
    DELTA_CATALOG,
    DELTA_EXTENSION,
    check_delta_mode,
)
from customer_analytics.core.errors import first_line
from customer_analytics.runtime import class_archive, jars
from customer_analytics.runtime.java import check_java

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
#: Local sessions log as Spark's shell does (warnings and errors on stderr), without Spark's
#: lines about its default logging profile, and without Hadoop's warning that its optional
#: native library is absent (it uses its Java code then).
LOG4J_CONFIG = os.path.join(os.path.dirname(__file__), "log4j2.properties")
DEFAULT_CONF = {
    "spark.driver.extraJavaOptions": THREAD_STACK,
    "spark.executor.extraJavaOptions": THREAD_STACK,
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    # the plans of the 40-column single view are longer than Spark's default of 25 fields, and
    # each one cut short printed a warning
    "spark.sql.debug.maxToStringFields": "200",
}


def configure(
    builder: SparkSession.Builder,
    spark_cfg: SparkConfig,
    *,
    delta: str = DEFAULT_DELTA_MODE,
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
        (:mod:`customer_analytics.runtime.class_archive`).
    """
    check_delta_mode(delta)
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
        # One machine: the driver binds to the loopback address, and Spark need not warn that
        # the host name resolves to it.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        if not _jvm_started():
            settings["spark.driver.extraJavaOptions"] = local_driver_options(
                settings.get("spark.driver.extraJavaOptions", ""), use_class_archive
            )
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
                f"loaded ({first_line(exc)}){fallback}",
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


def local_driver_options(options: str, use_class_archive: bool = True) -> str:
    """
    The driver JVM options of a local session: the user's, plus the throughput collector
    unless they choose one, the logging of :data:`LOG4J_CONFIG` unless they name a file, and
    the class archive's options when there is one.
    """
    parts = [options]
    if not re.search(r"-XX:\+Use\w+GC\b", options):
        parts.append(LOCAL_GC)
    if "log4j2.configurationFile" not in options:
        parts.append(f"-Dlog4j2.configurationFile={LOG4J_CONFIG}")
    if use_class_archive:
        parts.extend(class_archive.java_options())
    return " ".join(parts).strip()


def build(
    spark_cfg: SparkConfig, *, delta: str = DEFAULT_DELTA_MODE, paths: tuple[str, ...] = ()
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


def _jvm_started() -> bool:
    """True once this process has a JVM gateway, or when spark-submit started one for it."""
    return SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ


def _start_jvm(settings: dict[str, str]) -> None:
    """Start (or attach to) the JVM gateway with launch-time ``settings``."""
    conf = SparkConf(loadDefaults=True).setAll(list(settings.items()))
    SparkContext._ensure_initialized(conf=conf)


def _conf_text(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


__all__ = ["build", "configure"]
