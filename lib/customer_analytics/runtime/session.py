"""
The session a job runs in: a Spark Connect session when ``spark.remote`` (or ``--remote``, or
``SPARK_REMOTE``) names a server, a classic one otherwise
(:mod:`customer_analytics.runtime.classic`).

Over Spark Connect nothing of this process's JVM is touched; there is none. ``sc://host:port``
connects to a running server: only runtime settings can be set there, and a static one in
``spark.conf`` is refused before any work. ``local[N]`` starts a server in this process (PySpark
ships it) with the same settings a classic local session gets, the Delta Lake JARs included.
The client logs at ``SPARK_CONNECT_LOG_LEVEL`` (``spark.log_level`` when it is INFO or DEBUG
and the variable is unset; otherwise not at all: the job reports its own errors); a server's
logging is the server's.

A session that is already active (a notebook, a test fixture), or the one Databricks compute
makes, is reused; over Connect the user's ``spark.conf`` is set on it as on any Connect session.
"""

from __future__ import annotations

import gc
import os
import re
import socket
import urllib.parse
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from customer_analytics.config.schema import SparkConfig
from customer_analytics.core.connect import hide_token, is_connect, session_master
from customer_analytics.core.delta import (
    DEFAULT_DELTA_MODE,
    DELTA_CATALOG,
    DELTA_EXTENSION,
    check_delta_mode,
)
from customer_analytics.core.errors import ConfigError, first_line
from customer_analytics.core.paths import has_scheme, join
from customer_analytics.runtime import jars
from customer_analytics.runtime.java import check_java
from customer_analytics.runtime.spark_settings import (
    DEFAULT_CONF,
    DRIVER_OPTIONS,
    LOG4J_CONFIG,
    REQUIRED_CONF,
    base_settings,
    conf_text,
    local_driver_options,
    prepare_local_environment,
)

#: Spark Connect's port when the URL names none.
DEFAULT_CONNECT_PORT = 15002
#: The folders of an embedded metastore (tables by name in local mode), under the files path.
METASTORE_FOLDER = "_metastore"
CATALOG_FOLDER = "_catalog"
#: The settings that choose a metastore: one of them in ``spark.conf`` keeps the user's.
METASTORE_KEYS = (
    "spark.sql.catalogImplementation",
    "spark.hadoop.javax.jdo.option.ConnectionURL",
    "spark.sql.catalog.spark_catalog.type",
)


#: The Connect sessions :func:`build` started, which :func:`stop_connect` stops.
_STARTED_CONNECT: weakref.WeakSet[SparkSession] = weakref.WeakSet()


def remote_url(spark_cfg: SparkConfig) -> str | None:
    """The Spark Connect URL: ``spark.remote``, else ``$SPARK_REMOTE``; None for classic."""
    return spark_cfg.remote or os.environ.get("SPARK_REMOTE") or None


def build(
    spark_cfg: SparkConfig,
    *,
    delta: str = DEFAULT_DELTA_MODE,
    paths: tuple[str, ...] = (),
    metastore_path: str | None = None,
) -> SparkSession:
    """
    Get or create the session for a job.

    Parameters
    ----------
    delta : {"auto", "native", "deltalake"}
        ``warehouse.delta``.
    paths : tuple of str
        The warehouse and source paths: an ``s3a://`` one adds ``hadoop-aws``.
    metastore_path : str, optional
        Tables by name (``warehouse.schema``): a new local-mode session keeps its metastore
        (Derby) and managed tables under this folder, unless ``spark.conf`` names a metastore.
    """
    check_delta_mode(delta)
    active = SparkSession.getActiveSession()
    if active is None and os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        # Databricks compute makes the session itself: classic on a cluster, Spark Connect on
        # serverless and in standard access mode
        active = SparkSession.builder.getOrCreate()
    if active is not None:
        if is_connect(active):
            set_runtime_settings(active, spark_cfg)  # the required settings among them
        else:
            _set_required(active)
        return active
    remote = remote_url(spark_cfg)
    master = remote if remote else (spark_cfg.master or "")
    if metastore_path and master.startswith("local") and not _names_a_metastore(spark_cfg):
        spark_cfg = with_embedded_metastore(spark_cfg, metastore_path)
    if remote is None:
        from customer_analytics.runtime import classic

        check_java()
        return classic.start(spark_cfg, delta=delta, paths=paths)
    spark = connect(remote, spark_cfg, delta=delta, paths=paths)
    _STARTED_CONNECT.add(spark)
    return spark


def connect(
    remote: str,
    spark_cfg: SparkConfig,
    *,
    delta: str = DEFAULT_DELTA_MODE,
    paths: tuple[str, ...] = (),
) -> SparkSession:
    """
    A Spark Connect session to ``remote`` (``sc://...``, or ``local[N]`` for a server started
    in this process with the settings a classic local session would get).
    """
    if delta == "deltalake":
        raise ConfigError(
            "warehouse.delta is 'deltalake', which commits files on this machine in a classic "
            "session; over Spark Connect (spark.remote) the server's Delta Lake writes the "
            "tables: use warehouse.delta auto or native"
        )
    if spark_cfg.log_level in ("INFO", "DEBUG"):
        # the client logs nothing unless asked; at WARN it would log every failed query,
        # which the job reports itself
        os.environ.setdefault("SPARK_CONNECT_LOG_LEVEL", spark_cfg.log_level.lower())
    if remote.startswith("local"):
        check_java()
        server = local_server_settings(spark_cfg, paths)
        builder = SparkSession.builder.remote(remote).config(map=server)
        with warnings.catch_warnings():
            # the builder sets the server's launch settings on the session again, and warns
            # for each static one; the server started with them
            warnings.filterwarnings("ignore", message="Failed to set", category=UserWarning)
            spark = builder.getOrCreate()
        return spark
    require_listening(remote)
    spark = SparkSession.builder.remote(remote).getOrCreate()
    try:
        set_runtime_settings(spark, spark_cfg)  # the first call to the server
    except ConfigError:
        spark.stop()
        raise
    except Exception as exc:  # gRPC's, after the client's retries
        spark.stop()
        raise ConfigError(
            f"spark.remote {hide_token(remote)}: the Spark Connect server did not answer "
            f"({hide_token(first_line(exc))})"
        ) from None
    return spark


def cores(spark: SparkSession) -> int:
    """
    The cores the session's tasks run on: Spark's ``defaultParallelism`` in a classic session;
    over Spark Connect, which does not report it, ``spark.default.parallelism`` when the server
    sets it, the N of a ``local[N]`` master (this machine's cores for ``local[*]``), else 2.
    """
    if not is_connect(spark):
        from customer_analytics.runtime import classic

        return classic.default_parallelism(spark)
    configured = spark.conf.get("spark.default.parallelism", None)
    if configured:
        return int(configured)
    local = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]", session_master(spark))
    if local:
        return (os.cpu_count() or 1) if local.group(1) == "*" else int(local.group(1))
    return 2


@contextmanager
def model_release_between_calls(spark: SparkSession) -> Iterator[Callable[[], None]]:
    """
    Over Spark Connect, Python's cycle collector off for the block; the function it yields
    collects at a point the caller chooses (between stages). A model fitted over Connect
    deletes its server copy when it is collected, with a call to the server; a collection that
    starts inside another call to the server (an allocation in gRPC's code) makes that call in
    the same thread, which then waits forever on the first call's lock (PySpark 4.2's client).
    A classic session's block is left as it is.
    """
    if not is_connect(spark) or not gc.isenabled():
        yield lambda: None
        return
    gc.disable()
    try:
        yield gc.collect
    finally:
        gc.enable()
        gc.collect()


def stop_connect(spark: SparkSession) -> None:
    """
    Stop ``spark`` when :func:`build` made it a Spark Connect session (and the server this
    process started for ``local[N]``): a client left open keeps the process from exiting. A
    classic session is left to the process's exit, a session made elsewhere to its maker.
    """
    if spark in _STARTED_CONNECT:
        _STARTED_CONNECT.discard(spark)
        spark.stop()


def require_listening(remote: str, timeout_seconds: float = 10.0) -> None:
    """
    A ``ConfigError`` at once when nothing listens at the host and port of ``remote``
    (``sc://host[:port]``, port 15002 by default): the Connect client would retry for minutes.
    """
    address = urllib.parse.urlparse(remote.replace("sc://", "http://", 1))
    host, port = address.hostname or "localhost", address.port or DEFAULT_CONNECT_PORT
    try:
        socket.create_connection((host, port), timeout=timeout_seconds).close()
    except OSError as exc:
        raise ConfigError(
            f"spark.remote {hide_token(remote)}: no Spark Connect server answers at "
            f"{host}:{port} ({exc.strerror or type(exc).__name__})"
        ) from None


def local_server_settings(spark_cfg: SparkConfig, paths: tuple[str, ...]) -> dict[str, str]:
    """
    The launch settings of a Connect server started in this process: those of a classic local
    session, with the Delta Lake JARs (from the JAR folder, else resolved by Spark) and
    extension.
    """
    prepare_local_environment()
    settings = base_settings(spark_cfg)
    settings["spark.driver.extraJavaOptions"] = local_driver_options(
        settings.get("spark.driver.extraJavaOptions", ""), use_class_archive=False
    )
    settings = jars.JarSettings.for_packages(jars.packages_for(paths)).apply(settings)
    extensions = [e for e in settings.get("spark.sql.extensions", "").split(",") if e]
    if DELTA_EXTENSION not in extensions:
        settings["spark.sql.extensions"] = ",".join([*extensions, DELTA_EXTENSION])
    settings.setdefault("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    return settings


def set_runtime_settings(spark: SparkSession, spark_cfg: SparkConfig) -> None:
    """
    The package's and the user's settings on a session to a running server, which takes only
    runtime settings: the package's static defaults are left to the server; a static one in
    the user's ``spark.conf`` is refused, naming it.
    """
    user = {k: conf_text(v) for k, v in spark_cfg.conf.items()}
    static = sorted(key for key in user if not spark.conf.isModifiable(key))
    if static:
        raise ConfigError(
            f"spark.conf: {', '.join(static)}: static Spark setting(s), which a Spark Connect "
            f"session to {hide_token(spark_cfg.remote or 'the server')} cannot set; set them "
            "on the server, or remove them"
        )
    defaults = {
        k: v
        for k, v in base_settings(spark_cfg).items()
        if k not in user and spark.conf.isModifiable(k)
    }
    for key, value in {**defaults, **user}.items():
        spark.conf.set(key, value)


def with_embedded_metastore(spark_cfg: SparkConfig, files_path: str) -> SparkConfig:
    """
    ``spark_cfg`` with a Hive metastore on an embedded Derby database under ``files_path`` and
    the managed tables beside it, as if the user had set them: what lets separate local-mode
    processes (``ingest``, then ``features``) find each other's tables by name.
    """
    if has_scheme(files_path) and not files_path.startswith("file:"):
        raise ConfigError(
            f"warehouse.path {files_path}: tables by name in local mode keep their metastore "
            "(Derby) under warehouse.path, which must then be a local folder; or name a "
            "metastore in spark.conf (spark.sql.catalogImplementation, "
            "spark.hadoop.javax.jdo.option.ConnectionURL)"
        )
    root = os.path.abspath(files_path.removeprefix("file://").removeprefix("file:"))
    os.makedirs(root, exist_ok=True)
    database = join(root, METASTORE_FOLDER)
    options = spark_cfg.conf.get(DRIVER_OPTIONS, DEFAULT_CONF[DRIVER_OPTIONS])
    conf = {
        **spark_cfg.conf,
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": join(root, CATALOG_FOLDER),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={database};create=true"
        ),
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        # Derby's log beside its database, not derby.log in the working directory
        DRIVER_OPTIONS: f"{options} -Dderby.stream.error.file={database}.log".strip(),
    }
    return spark_cfg.model_copy(update={"conf": conf})


def _names_a_metastore(spark_cfg: SparkConfig) -> bool:
    return any(key in spark_cfg.conf for key in METASTORE_KEYS)


def _set_required(spark: SparkSession) -> None:
    """The settings Delta tables need, on a classic session made elsewhere."""
    for key, value in REQUIRED_CONF.items():
        spark.conf.set(key, value)


__all__ = ["LOG4J_CONFIG", "build", "cores", "connect", "remote_url", "stop_connect"]
