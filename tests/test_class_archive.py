"""
The JVM class archive: where it lives, which options a local session gets from it, and that a
JVM given an archive it cannot use runs the job as without one, silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from pyspark.sql import SparkSession

from customer_analytics.config.schema import SparkConfig
from customer_analytics.runtime import class_archive, classic
from tests.conftest import FIXTURES, REPO


@pytest.fixture
def archive_folder(tmp_path, monkeypatch):
    folder = tmp_path / "jvm"
    monkeypatch.setenv(class_archive.ARCHIVE_FOLDER_ENV, str(folder))
    return folder


def test_without_an_archive_a_session_gets_no_option(archive_folder):
    assert class_archive.java_options() == []


def test_an_archive_in_the_folder_is_mapped_silently(archive_folder):
    path = class_archive.archive_path()
    os.makedirs(archive_folder)
    open(path, "wb").close()

    assert path.startswith(str(archive_folder))
    assert class_archive.java_options() == [
        f"-XX:SharedArchiveFile={path}",
        "-Xshare:auto",
        "-Xlog:cds=off",
        "-Xlog:cds+dynamic=off",
    ]


def test_another_pyspark_version_names_another_archive(archive_folder, monkeypatch):
    before = class_archive.archive_path()
    monkeypatch.setattr(class_archive, "_version", lambda name: f"{name}-9.9.9")

    assert class_archive.archive_path() != before


def test_a_rewritten_pyspark_jar_names_another_archive(archive_folder, tmp_path, monkeypatch):
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "spark-core.jar").write_bytes(b"jar")
    os.utime(jars / "spark-core.jar", (1_700_000_000, 1_700_000_000))
    monkeypatch.setattr(class_archive, "pyspark_jars_folder", lambda: str(jars))
    before = class_archive.archive_path()

    os.utime(jars / "spark-core.jar", (1_700_000_100, 1_700_000_100))  # reinstalled, same bytes

    assert class_archive.archive_path() != before


def test_off_switches_the_archive_off(monkeypatch):
    monkeypatch.setenv(class_archive.ARCHIVE_FOLDER_ENV, "off")

    assert class_archive.archive_path() is None
    assert class_archive.java_options() == []


def test_a_local_session_adds_the_archive_to_the_driver_options(archive_folder, monkeypatch):
    os.makedirs(archive_folder)
    open(class_archive.archive_path(), "wb").close()
    monkeypatch.setattr(classic, "_jvm_started", lambda: False)
    cfg = SparkConfig(conf={"spark.driver.extraJavaOptions": "-Dmine=1"})

    builder = classic.configure(SparkSession.Builder(), cfg, delta="deltalake")

    options = builder._options["spark.driver.extraJavaOptions"]
    assert options.startswith("-Dmine=1 -XX:+UseParallelGC -Dlog4j2.configurationFile=")
    assert " -XX:SharedArchiveFile=" in options
    assert options.endswith("-Xlog:cds+dynamic=off")


def test_a_cluster_session_gets_no_archive(archive_folder, monkeypatch):
    os.makedirs(archive_folder)
    open(class_archive.archive_path(), "wb").close()
    monkeypatch.setattr(classic, "_jvm_started", lambda: False)
    cfg = SparkConfig(master="spark://127.0.0.1:7077")

    builder = classic.configure(SparkSession.Builder(), cfg, delta="deltalake")

    assert "SharedArchiveFile" not in builder._options["spark.driver.extraJavaOptions"]


def test_an_archive_the_jvm_cannot_use_is_ignored_without_a_word(archive_folder, tmp_path):
    os.makedirs(archive_folder)
    with open(class_archive.archive_path(), "wb") as handle:
        handle.write(b"not an archive" * 1000)
    exe = shutil.which("customer-analytics") or os.path.join(
        os.path.dirname(sys.executable), "customer-analytics"
    )
    command = [
        exe,
        "ingest",
        "--set",
        f"source.path={FIXTURES / 'product_json_pipeline.csv'}",
        "--set",
        f"warehouse.path={tmp_path / 'wh'}",
        "--set",
        "warehouse.delta=deltalake",
    ]

    result = subprocess.run(
        command, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=600
    )

    assert result.returncode == 0, result.stderr[-3000:]
    output = (result.stdout + result.stderr).lower()
    assert "cds" not in output
    assert "shared archive" not in output
    assert "[ingest] rows in 14" in result.stdout
