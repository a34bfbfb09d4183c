"""
Where the Delta Lake JARs cannot be had: a job started with an Ivy that resolves nothing (as
for a user without Maven access) says so in one line and writes with deltalake, or stops
with exit 2 when ``warehouse.delta`` asks for native Delta.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from deltalake import DeltaTable

from tests.conftest import FIXTURES, REPO

IVY_SETTINGS = """<ivysettings>
  <settings defaultResolver="nowhere"/>
  <caches defaultCacheDir="{root}/cache"/>
  <resolvers>
    <filesystem name="nowhere">
      <ivy pattern="{root}/repo/[organisation]/[module]/[revision]/ivy.xml"/>
      <artifact pattern="{root}/repo/[organisation]/[module]/[revision]/[artifact].[ext]"/>
    </filesystem>
  </resolvers>
</ivysettings>
"""


@pytest.fixture
def without_maven(tmp_path):
    """``--set`` arguments and an environment in which no Delta JAR can be resolved."""
    (tmp_path / "ivysettings.xml").write_text(IVY_SETTINGS.format(root=tmp_path))
    env = {**os.environ, "CUSTOMER_ANALYTICS_JARS": str(tmp_path / "no-jars")}
    args = [
        "--set",
        f"spark.conf.spark.jars.ivySettings={tmp_path / 'ivysettings.xml'}",
        "--set",
        f"spark.conf.spark.jars.ivy={tmp_path / 'ivy'}",
    ]
    return args, env


def _ingest(tmp_path, extra_args, env):
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
        "spark.master=local[1]",
        *extra_args,
    ]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_without_the_jars_auto_says_so_once_and_writes_with_deltalake(tmp_path, without_maven):
    args, env = without_maven

    result = _ingest(tmp_path, args, env)

    assert result.returncode == 0, result.stderr[-3000:]
    notices = [line for line in result.stderr.splitlines() if "could not be loaded" in line]
    assert len(notices) == 1
    assert "io.delta:delta-spark_4.2_2.13:4.4.0" in notices[0]
    assert "writing tables with deltalake (delta-rs) instead" in notices[0]
    assert "committed with deltalake" in result.stdout
    assert DeltaTable(str(tmp_path / "wh" / "orders")).to_pyarrow_table().num_rows == 14


def test_without_the_jars_native_is_a_configuration_error(tmp_path, without_maven):
    args, env = without_maven

    result = _ingest(tmp_path, [*args, "--set", "warehouse.delta=native"], env)

    assert result.returncode == 2
    assert "warehouse.delta is 'native'" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "wh" / "orders").exists()


def test_sql_settings_apply_inside_the_block_and_are_put_back(spark):
    from customer_analytics.core.settings import sql_settings

    suite_partitions = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "3")
    spark.conf.unset("spark.sql.test.unsetKey")
    with sql_settings(spark, {"spark.sql.shuffle.partitions": "5", "spark.sql.test.unsetKey": "x"}):
        inside = (
            spark.conf.get("spark.sql.shuffle.partitions"),
            spark.conf.get("spark.sql.test.unsetKey"),
        )
    after = (
        spark.conf.get("spark.sql.shuffle.partitions"),
        spark.conf.get("spark.sql.test.unsetKey", None),
    )
    spark.conf.set("spark.sql.shuffle.partitions", suite_partitions)
    assert inside == ("5", "x")
    assert after == ("3", None)


def _driver_options(monkeypatch, **spark_cfg) -> list[str]:
    """The driver JVM options a new session of ``spark_cfg`` would start with."""
    from pyspark.sql import SparkSession

    from customer_analytics.config.schema import SparkConfig
    from customer_analytics.runtime import class_archive, classic

    monkeypatch.setenv(class_archive.ARCHIVE_FOLDER_ENV, "off")
    monkeypatch.setattr(classic, "_jvm_started", lambda: False)
    builder = classic.configure(SparkSession.Builder(), SparkConfig(**spark_cfg), delta="deltalake")
    return builder._options["spark.driver.extraJavaOptions"].split()


def test_a_local_session_uses_the_parallel_collector_and_the_package_logging(monkeypatch):
    from customer_analytics.runtime.spark_settings import LOG4J_CONFIG

    assert _driver_options(monkeypatch, master="local[2]") == [
        "-Xss16m",
        "-XX:+UseParallelGC",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
    ]
    assert os.path.isfile(LOG4J_CONFIG)


def test_a_local_session_keeps_a_collector_and_logging_the_user_chose(monkeypatch):
    mine = "-XX:+UseG1GC -Dlog4j2.configurationFile=/etc/mine.properties"
    options = _driver_options(
        monkeypatch, master="local[2]", conf={"spark.driver.extraJavaOptions": mine}
    )

    assert options == mine.split()


def test_a_cluster_session_keeps_the_jvm_default_collector(monkeypatch):
    assert _driver_options(monkeypatch, master="spark://127.0.0.1:7077") == ["-Xss16m"]
