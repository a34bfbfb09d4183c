"""
The SparkSession builder: local mode by default, settings from ``spark`` in the configuration,
quiet logs, and the Delta Spark extension switched on when its classes are on the classpath.

Defaults (``DEFAULT_CONF``, under the user's settings) include a 16 MB thread stack for FPGrowth.
Settings the Delta fallback relies on are always set: Parquet timestamps as microseconds
(delta-rs and other Delta readers do not read INT96), session time zone UTC unless configured,
and Parquet timestamps without a zone read as ``timestamp``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from customer_analytics.config import SparkConfig
from customer_analytics.errors import UserError

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

REQUIRED_CONF = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
}
#: MLlib's FPGrowth (``recommend.basket_rules``) serializes its FP-trees recursively, one level
#: per frequent product in a basket: orders of hundreds of products (Online Retail has one of
#: 1,114) overflow the default 1 MB thread stack. Only effective where Spark starts the JVMs.
THREAD_STACK = "-Xss16m"
DEFAULT_CONF = {
    "spark.driver.extraJavaOptions": THREAD_STACK,
    "spark.executor.extraJavaOptions": THREAD_STACK,
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


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


def delta_classes_available(settings: dict[str, str] | None = None) -> bool:
    """
    True when the Delta Spark extension can be loaded by the driver JVM.

    Starts the JVM gateway (not a SparkContext) if none is running, with ``settings`` so that
    launch-time options such as ``spark.driver.memory`` still take effect.
    """
    try:
        conf = SparkConf(loadDefaults=True).setAll(list((settings or {}).items()))
        SparkContext._ensure_initialized(conf=conf)
        jvm = SparkContext._jvm
        return bool(jvm.org.apache.spark.util.Utils.classIsLoadable(DELTA_EXTENSION))
    except Exception:  # a gateway that cannot start is reported by getOrCreate itself
        return False


def configure(builder: SparkSession.Builder, spark_cfg: SparkConfig) -> SparkSession.Builder:
    """
    Apply the configuration to a builder and return it (the pattern Delta's
    ``configure_spark_with_delta_pip`` uses): master, app name, defaults, the user's
    ``spark.conf`` over them, the settings Delta tables require, and the Delta extension when
    its classes are loadable.
    """
    settings = {**DEFAULT_CONF, **{k: _conf_text(v) for k, v in spark_cfg.conf.items()}}
    settings.update(REQUIRED_CONF)
    settings["spark.app.name"] = spark_cfg.app_name
    if spark_cfg.master:
        settings["spark.master"] = spark_cfg.master
    if DELTA_EXTENSION not in settings.get("spark.sql.extensions", "") and (
        delta_classes_available(settings)
    ):
        extensions = [e for e in settings.get("spark.sql.extensions", "").split(",") if e]
        settings["spark.sql.extensions"] = ",".join([*extensions, DELTA_EXTENSION])
        settings.setdefault("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder


def build(spark_cfg: SparkConfig) -> SparkSession:
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
    spark = configure(SparkSession.builder, spark_cfg).getOrCreate()
    spark.sparkContext.setLogLevel(spark_cfg.log_level)
    return spark


def native_delta_enabled(spark: SparkSession) -> bool:
    """True when this session writes Delta through the Delta Spark extension."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return True
    return DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", "") or "")


def _conf_text(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


__all__ = ["build", "configure", "native_delta_enabled", "check_java"]
