"""
The Maven packages a local session loads: Delta Lake's JARs for the installed ``delta-spark``
and, for an ``s3a://`` path, ``hadoop-aws`` for the Hadoop that PySpark ships.

``python -m customer_analytics.runtime.jars fetch`` (run by the set-up scripts) resolves them
from Maven Central once, with Spark's own resolver (``spark.jars.packages``, as Delta's
``configure_spark_with_delta_pip`` does) or, where that cannot reach the repository, with ``mvn
dependency:copy-dependencies``, and puts the JARs in :func:`jar_folder`. A package whose JAR is
in that folder is loaded from there with ``spark.jars``: no session resolves again (nor prints
Ivy's report). Without the folder, a session resolves with ``spark.jars.packages``.

Delta 4.4's published dependencies include the Delta Kernel, a Unity Catalog client, and the
Scala, logging and Hadoop libraries that Spark already ships in other versions. Tables at a
path need none of them, so they are excluded (``spark.jars.excludes``): the session gets
``delta-spark`` and ``delta-storage`` only.
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from customer_analytics.core.errors import first_line

SCALA_VERSION = "2.13"
DELTA_EXCLUDES = (
    "io.delta:delta-kernel-api",
    "io.delta:delta-kernel-defaults",
    "io.delta:delta-kernel-unitycatalog",
    "io.unitycatalog:unitycatalog-client",
    "io.unitycatalog:unitycatalog-hadoop",
    "org.slf4j:slf4j-api",
    "org.apache.logging.log4j:log4j-slf4j2-impl",
    "org.apache.logging.log4j:log4j-api",
    "org.apache.logging.log4j:log4j-core",
    "com.google.code.findbugs:jsr305",
    "org.scala-lang:scala-library",
)
#: URI schemes whose Hadoop connector is added to a local session automatically.
SCHEME_CONNECTORS = {"s3a": "hadoop-aws"}
JAR_FOLDER_ENV = "CUSTOMER_ANALYTICS_JARS"


def delta_package() -> str:
    """
    The Maven coordinate of the Delta Lake JAR that matches the installed ``delta-spark`` and
    ``pyspark``, named as ``delta.configure_spark_with_delta_pip`` names it, e.g.
    ``io.delta:delta-spark_4.2_2.13:4.4.0``.
    """
    import pyspark

    delta_version = importlib.metadata.version("delta-spark")
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_{SCALA_VERSION}:{delta_version}"


def hadoop_version() -> str:
    """The version of the Hadoop client JARs inside the installed ``pyspark``, e.g. ``3.5.0``."""
    import pyspark

    jars = glob.glob(
        os.path.join(os.path.dirname(pyspark.__file__), "jars", "hadoop-client-api-*.jar")
    )
    if not jars:
        raise RuntimeError("pyspark ships no hadoop-client-api JAR: cannot tell its Hadoop version")
    return os.path.basename(jars[0]).removeprefix("hadoop-client-api-").removesuffix(".jar")


def connector_package(scheme: str) -> str | None:
    """The Hadoop connector for a URI scheme (``s3a`` -> ``org.apache.hadoop:hadoop-aws:...``)."""
    artifact = SCHEME_CONNECTORS.get(scheme)
    return f"org.apache.hadoop:{artifact}:{hadoop_version()}" if artifact else None


def packages_for(paths: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Delta Lake, plus the connector of every scheme among ``paths`` that needs one."""
    packages = [delta_package()]
    for path in paths:
        scheme, sep, _ = (path or "").partition("://")
        connector = connector_package(scheme) if sep else None
        if connector and connector not in packages:
            packages.append(connector)
    return packages


def jar_folder() -> str:
    """Where ``fetch`` puts JARs resolved with Maven: ``$CUSTOMER_ANALYTICS_JARS`` or a cache."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "customer-analytics", "jars")
    return os.environ.get(JAR_FOLDER_ENV) or default


@dataclass
class JarSettings:
    """The Spark settings that load a list of packages: from the JAR folder, else by Ivy."""

    packages: list[str]
    jars: list[str] = field(default_factory=list)

    @classmethod
    def for_packages(cls, packages: list[str], folder: str | None = None) -> JarSettings:
        folder = jar_folder() if folder is None else folder
        found = sorted(glob.glob(os.path.join(folder, "*.jar")))
        names = {os.path.basename(j) for j in found}
        missing = [p for p in packages if not _jar_names(p) & names]
        return cls(packages=missing, jars=found if len(missing) < len(packages) else [])

    def apply(self, settings: dict[str, str]) -> dict[str, str]:
        """``settings`` with these JARs and packages added to any the user configured."""
        result = dict(settings)
        if self.packages:
            result["spark.jars.packages"] = _merge(result.get("spark.jars.packages"), self.packages)
            result["spark.jars.excludes"] = _merge(
                result.get("spark.jars.excludes"), DELTA_EXCLUDES
            )
        if self.jars:
            result["spark.jars"] = _merge(result.get("spark.jars"), self.jars)
        return result


def pom(packages: list[str]) -> str:
    """A ``pom.xml`` whose dependencies are ``packages`` without :data:`DELTA_EXCLUDES`."""
    exclusions = "".join(
        f"<exclusion><groupId>{g}</groupId><artifactId>{a}</artifactId></exclusion>"
        for g, a in (e.split(":") for e in DELTA_EXCLUDES)
    )
    dependencies = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>"
        f"<exclusions>{exclusions}</exclusions></dependency>"
        for g, a, v in (p.split(":") for p in packages)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<project xmlns="http://maven.apache.org/POM/4.0.0">'
        "<modelVersion>4.0.0</modelVersion><groupId>customer-analytics</groupId>"
        "<artifactId>session-jars</artifactId><version>1</version><packaging>pom</packaging>"
        f"<dependencies>{dependencies}</dependencies></project>\n"
    )


def fetch_with_spark(packages: list[str], folder: str) -> None:
    """
    Resolve ``packages`` with Spark's own resolver (its Ivy cache) and copy the JARs it
    resolved into ``folder``, so that sessions load them from there without resolving again
    (raises on failure).
    """
    from pyspark import SparkConf, SparkContext

    conf = SparkConf().setAll(list(JarSettings(packages).apply({}).items()))
    SparkContext._ensure_initialized(conf=conf)
    try:
        resolved = SparkContext._jvm.System.getProperty("spark.jars") or ""
    finally:
        SparkContext._gateway.shutdown()
        SparkContext._gateway = SparkContext._jvm = None
    os.makedirs(folder, exist_ok=True)
    for uri in filter(None, resolved.split(",")):
        path = uri.removeprefix("file://")
        shutil.copyfile(path, os.path.join(folder, os.path.basename(path)))


def fetch_with_maven(packages: list[str], folder: str) -> None:
    """Resolve ``packages`` with ``mvn dependency:copy-dependencies`` into ``folder``."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("mvn is not installed")
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        pom_path = os.path.join(work, "pom.xml")
        with open(pom_path, "w", encoding="utf-8") as handle:
            handle.write(pom(packages))
        subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                pom_path,
                "dependency:copy-dependencies",
                f"-DoutputDirectory={folder}",
                "-DincludeScope=runtime",
            ],
            check=True,
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m customer_analytics.runtime.jars fetch [--s3]``: cache the JARs before a job."""
    parser = argparse.ArgumentParser(prog="python -m customer_analytics.runtime.jars")
    parser.add_argument("action", choices=["fetch", "show"])
    parser.add_argument("--s3", action="store_true", help="also hadoop-aws, for s3a:// paths")
    parser.add_argument("--maven", action="store_true", help="resolve with mvn, not with Spark")
    args = parser.parse_args(argv)
    packages = packages_for(["s3a://"] if args.s3 else [])
    if args.action == "show":
        print("\n".join(packages))
        return 0
    errors = []
    if not args.maven:
        try:
            fetch_with_spark(packages, jar_folder())
            print(
                f"Delta Lake JARs resolved by Spark's resolver into {jar_folder()}: "
                f"{', '.join(packages)}"
            )
            return 0
        except Exception as exc:  # the gateway fails to start when Ivy cannot resolve
            errors.append(f"Spark's resolver: {first_line(exc)}")
    try:
        fetch_with_maven(packages, jar_folder())
        print(f"Delta Lake JARs resolved with Maven into {jar_folder()}: {', '.join(packages)}")
        return 0
    except Exception as exc:
        errors.append(f"mvn: {exc}")
    print(
        f"The Delta Lake JARs ({', '.join(packages)}) could not be had ({'; '.join(errors)}): "
        "jobs will write tables with deltalake (delta-rs) instead.",
        file=sys.stderr,
    )
    return 1


def _jar_names(package: str) -> set[str]:
    """The file names of a package's JAR: Maven's ``artifact-version.jar``, Ivy's with the group."""
    group, artifact, version = package.split(":")
    return {f"{artifact}-{version}.jar", f"{group}_{artifact}-{version}.jar"}


def _merge(current: str | None, extra) -> str:
    items = [i for i in (current or "").split(",") if i]
    return ",".join(items + [e for e in extra if e not in items])


if __name__ == "__main__":
    sys.exit(main())
