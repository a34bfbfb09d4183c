"""
The JVM class archive of local sessions: a class-data-sharing archive (JDK CDS, ``-XX:
SharedArchiveFile``) of the classes a job loads, so that the JVM of every later local job maps
them instead of loading, verifying and linking them one by one from Spark's JARs.

A job in local mode starts its own JVM. On a 2-core machine, a session that starts and counts
a Delta table takes 21 to 24 s without the archive and 13.5 to 15.5 s with it: the session
starts in 3.7 s instead of 7 to 8 s, and its first queries run 2 to 3 s sooner.

The archive is made once, by ``python -m customer_analytics.tools.class_archive create``, which
the set-up scripts run after caching the Delta JARs. Its file name carries the versions it was
made for (Java, PySpark, ``delta-spark``), so an upgrade makes a new one instead of using a stale
one; a JVM that finds the archive does not match its class path ignores it (no message), and
runs as without it.

Only where this package starts the JVM (local mode); under ``spark-submit`` and on
Databricks the JVM is started before this code runs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os

from customer_analytics.runtime.java import java_executable

#: JVM options that use an archive and stay silent when it cannot be used.
USE_OPTIONS = ("-Xshare:auto", "-Xlog:cds=off", "-Xlog:cds+dynamic=off")
ARCHIVE_FOLDER_ENV = "CUSTOMER_ANALYTICS_CLASS_ARCHIVE"


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
    java = java_executable()
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
