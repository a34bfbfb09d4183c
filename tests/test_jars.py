"""The Maven packages a local session loads (no Spark: settings and files only)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pyspark.sql import SparkSession

from customer_analytics.runtime import jars

POM = "{http://maven.apache.org/POM/4.0.0}"


def test_delta_package_is_the_one_delta_pip_utils_names():
    from delta import configure_spark_with_delta_pip

    builder = SparkSession.Builder()
    before = dict(builder._options)
    try:
        named = configure_spark_with_delta_pip(builder)._options["spark.jars.packages"]
    finally:  # the builder's options are shared by every builder in the process
        builder._options.clear()
        builder._options.update(before)

    assert jars.delta_package() == named


def test_delta_package_is_the_spark_4_2_build_of_delta_4_4_0():
    # setup.py pins delta-spark 4.4.0: the newest whose JARs Maven Central has for Spark 4.2
    assert jars.delta_package() == "io.delta:delta-spark_4.2_2.13:4.4.0"


def test_an_s3a_path_adds_hadoop_aws_for_the_hadoop_pyspark_ships():
    packages = jars.packages_for(["warehouse", "s3a://bucket/wh", "s3a://bucket/raw/x.csv"])

    assert packages == [
        jars.delta_package(),
        "org.apache.hadoop:hadoop-aws:3.5.0",  # pyspark 4.2 ships hadoop-client-api-3.5.0.jar
    ]
    assert jars.packages_for(["/data/wh", "abfss://c@a.dfs.core.windows.net/wh"]) == [
        jars.delta_package()
    ]


def test_hadoop_version_is_read_from_the_client_jar_pyspark_ships(tmp_path, monkeypatch):
    import pyspark

    package = tmp_path / "pyspark"
    (package / "jars").mkdir(parents=True)
    (package / "jars" / "hadoop-client-api-3.4.1.jar").write_bytes(b"")
    monkeypatch.setattr(pyspark, "__file__", str(package / "__init__.py"))

    assert jars.hadoop_version() == "3.4.1"


def test_without_a_jar_folder_spark_resolves_the_packages_with_exclusions(tmp_path):
    settings = jars.JarSettings.for_packages(["io.delta:delta-spark_4.2_2.13:4.4.0"], str(tmp_path))

    applied = settings.apply({"spark.jars.packages": "org.example:mine:1.0"})

    assert (
        applied["spark.jars.packages"] == "org.example:mine:1.0,io.delta:delta-spark_4.2_2.13:4.4.0"
    )
    assert "io.delta:delta-kernel-api" in applied["spark.jars.excludes"].split(",")
    assert "spark.jars" not in applied


def test_jars_resolved_with_maven_are_loaded_from_the_folder(tmp_path):
    for name in ("delta-spark_4.2_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"):
        (tmp_path / name).write_bytes(b"")
    packages = ["io.delta:delta-spark_4.2_2.13:4.4.0", "org.apache.hadoop:hadoop-aws:3.5.0"]

    applied = jars.JarSettings.for_packages(packages, str(tmp_path)).apply({})

    assert applied["spark.jars"].split(",") == [
        str(tmp_path / "delta-spark_4.2_2.13-4.4.0.jar"),
        str(tmp_path / "delta-storage-4.4.0.jar"),
    ]
    assert applied["spark.jars.packages"] == "org.apache.hadoop:hadoop-aws:3.5.0"


def test_pom_lists_each_package_with_the_exclusions():
    root = ET.fromstring(jars.pom(["io.delta:delta-spark_4.2_2.13:4.4.0"]))

    dependency = root.find(f"{POM}dependencies/{POM}dependency")
    coordinate = [dependency.find(f"{POM}{k}").text for k in ("groupId", "artifactId", "version")]
    excluded = {e.find(f"{POM}artifactId").text for e in dependency.iter(f"{POM}exclusion")}
    assert coordinate == ["io.delta", "delta-spark_4.2_2.13", "4.4.0"]
    assert {"delta-kernel-api", "unitycatalog-client", "scala-library"} <= excluded
