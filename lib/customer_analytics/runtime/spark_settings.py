"""
The Spark settings a session of this package starts with, classic or Spark Connect: defaults
under the user's ``spark.conf``, the settings Delta tables need, and the driver options and
environment of a local-mode driver. Nothing here starts or touches a JVM.
"""

from __future__ import annotations

import os
import re
import sys

from customer_analytics.config.schema import SparkConfig
from customer_analytics.runtime import class_archive

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
#: The driver JVM's options, which only a new JVM takes.
DRIVER_OPTIONS = "spark.driver.extraJavaOptions"
DEFAULT_CONF = {
    DRIVER_OPTIONS: THREAD_STACK,
    "spark.executor.extraJavaOptions": THREAD_STACK,
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    # the plans of the 40-column single view are longer than Spark's default of 25 fields, and
    # each one cut short printed a warning
    "spark.sql.debug.maxToStringFields": "200",
}


def base_settings(spark_cfg: SparkConfig) -> dict[str, str]:
    """The defaults, the user's ``spark.conf`` over them, the settings Delta needs, the name."""
    settings = {**DEFAULT_CONF, **{k: conf_text(v) for k, v in spark_cfg.conf.items()}}
    settings.update(REQUIRED_CONF)
    settings["spark.app.name"] = spark_cfg.app_name
    return settings


def prepare_local_environment() -> None:
    """The environment a local-mode driver reads when it starts."""
    # The Python workers (the clv scoring) otherwise run `python3` from PATH, which may lack
    # this package and its dependencies: in local mode they use the job's interpreter. The
    # SparkContext reads the variable, not spark.pyspark.python, when it starts.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # One machine: the driver binds to the loopback address, and Spark need not warn that the
    # host name resolves to it.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


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


def conf_text(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
