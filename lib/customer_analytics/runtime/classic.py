"""
The classic SparkSession (a JVM driven from this process through py4j): local mode by
default, settings from ``spark`` in the configuration, quiet logs, and native Delta Lake. The
Spark Connect session is built in :mod:`customer_analytics.runtime.session`.

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
from customer_analytics.runtime import jars
from customer_analytics.runtime.spark_settings import (
    base_settings,
    local_driver_options,
    prepare_local_environment,
)


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
    settings = base_settings(spark_cfg)
    if spark_cfg.master:
        settings["spark.master"] = spark_cfg.master
    if settings.get("spark.master", "").startswith("local"):
        prepare_local_environment()
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


def start(spark_cfg: SparkConfig, **options) -> SparkSession:
    """A new classic session: :func:`configure` with ``options``, logging at ``spark.log_level``."""
    spark = configure(SparkSession.builder, spark_cfg, **options).getOrCreate()
    spark.sparkContext.setLogLevel(spark_cfg.log_level)
    return spark


def default_parallelism(spark: SparkSession) -> int:
    """The cores the session's tasks run on (Spark's ``defaultParallelism``)."""
    return spark.sparkContext.defaultParallelism


def checkpoint_folder(spark: SparkSession) -> str | None:
    """The session's checkpoint directory; None when none is set."""
    return spark.sparkContext.getCheckpointDir()


def set_checkpoint_folder(spark: SparkSession, folder: str) -> str:
    """Checkpoints under ``folder`` from now on; returns the folder Spark made in it."""
    spark.sparkContext.setCheckpointDir(folder)
    return spark.sparkContext.getCheckpointDir()


def _jvm_started() -> bool:
    """True once this process has a JVM gateway, or when spark-submit started one for it."""
    return SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ


def _start_jvm(settings: dict[str, str]) -> None:
    """Start (or attach to) the JVM gateway with launch-time ``settings``."""
    conf = SparkConf(loadDefaults=True).setAll(list(settings.items()))
    SparkContext._ensure_initialized(conf=conf)


__all__ = ["configure", "start"]
