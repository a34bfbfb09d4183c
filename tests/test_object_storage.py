"""
A warehouse on object storage: the pipeline against a real S3-compatible server (moto's
standalone server on 127.0.0.1, stopped by its PID), through ``s3a://`` and native Delta.

The jobs run as the ``customer-analytics`` command, as a user runs them: a local session that
adds ``hadoop-aws`` (for the Hadoop PySpark ships) because the paths are ``s3a://``, with the
credentials in the environment only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from deltalake import DeltaTable

from tests.conftest import FIXTURES, REPO

BUCKET = "analytics"
#: The members of the fixture (tests/fixtures/product_json_pipeline.csv).
MEMBERS = ["201", "202", "203", "204", "205", "206"]
ACCESS_KEY = "AKIAEXAMPLEKEY000001"
SECRET_KEY = "s3cr3t-never-logged-0123456789abcdef"
TABLES = (
    "order_lines",
    "orders",
    "customers",
    "quarantine",
    "ingest_reconciliation",
    "customer_features",
    "monthly_sales",
    "kmeans_selection",
    "customer_segments",
    "segment_profiles",
    "feature_importance",
    "segment_top_products",
    "basket_rules",
    "customer_recommendations",
    "runs",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 with the bucket and the source file; stopped by PID."""
    pytest.importorskip("moto.server", reason="moto[server] is in the test extras")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"moto server did not start: {log.read_text()}") from None
                time.sleep(0.2)
        s3 = _client(boto3, endpoint)
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(FIXTURES / "product_json_pipeline.csv"), BUCKET, "raw/orders.csv")
        yield endpoint
    finally:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()


def _client(boto3, endpoint: str):
    """A boto3 S3 client of the test's credentials on the moto server."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )


def _run(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("customer-analytics") or os.path.join(
        os.path.dirname(sys.executable), "customer-analytics"
    )
    s3a = "spark.conf.spark.hadoop.fs.s3a"
    command = [
        exe,
        *args,
        "--set",
        f"source.path=s3a://{BUCKET}/raw/orders.csv",
        "--set",
        f"warehouse.path=s3a://{BUCKET}/wh",
        "--set",
        "segmentation.k=2",
        "--set",
        "segmentation.features=[total_visits, total_spend, recency_days]",
        "--set",
        f"{s3a}.endpoint={endpoint}",
        "--set",
        f"{s3a}.endpoint.region=us-east-1",
        "--set",
        f"{s3a}.path.style.access=true",
        "--set",
        f"{s3a}.connection.ssl.enabled=false",
        "--set",
        "spark.conf.spark.sql.shuffle.partitions=1",
        "--set",
        "spark.master=local[2]",
    ]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
    }
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)


def _storage_options(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }


@pytest.fixture(scope="module")
def s3_pipeline(s3_endpoint):
    """The pipeline on the bucket, then ``segment --mode score`` reading it back."""
    # 6 customers: too few for clv; evaluate reads and writes tables as the stages before it
    # do, and would add a minute against the S3 server
    first = _run(
        s3_endpoint,
        "pipeline",
        "--skip",
        "clv",
        "--skip",
        "evaluate",
        "--set",
        "report.exports=[segments]",  # each file is a copy and a delete on S3
    )
    second = _run(s3_endpoint, "segment", "--mode", "score")
    return s3_endpoint, first, second


def test_pipeline_writes_every_table_to_the_bucket(s3_pipeline):
    endpoint, first, _ = s3_pipeline

    assert first.returncode == 0, first.stderr[-3000:]
    assert "Delta Lake" in first.stdout and "native" in first.stdout
    options = _storage_options(endpoint)
    versions = {
        table: DeltaTable(f"s3://{BUCKET}/wh/{table}", storage_options=options).version()
        for table in TABLES
    }
    # one commit each by the pipeline (version 0); ``segment --mode score`` then rewrites the
    # segments, their profiles and importance, and appends its run (version 1)
    rewritten = ("customer_segments", "segment_profiles", "feature_importance", "runs")
    assert versions == {table: int(table in rewritten) for table in TABLES}


def test_the_report_is_written_to_the_bucket_beside_the_tables(s3_pipeline):
    import boto3

    endpoint, first, _ = s3_pipeline
    s3 = _client(boto3, endpoint)

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="wh/_report/")["Contents"]
    keys = {o["Key"].removeprefix("wh/_report/") for o in listed}
    assert {"report.html", "charts/segment_sizes.png", "exports/segments.csv"} <= keys
    assert not [k for k in keys if "_staging-" in k]  # the CSV parts were moved, staging removed
    page = s3.get_object(Bucket=BUCKET, Key="wh/_report/report.html")["Body"].read().decode()
    assert "Customers as of 2023-03-31: 2 segments" in page
    segments = s3.get_object(Bucket=BUCKET, Key="wh/_report/exports/segments.csv")["Body"]
    lines = segments.read().decode().splitlines()
    assert lines[0] == "customer_id,as_of,cluster,segment_name,distance"
    assert sorted(line.split(",")[0] for line in lines[1:]) == MEMBERS
    assert f"report s3a://{BUCKET}/wh/_report/report.html" in first.stdout


def test_tables_on_the_bucket_hold_the_fixture_counted_by_hand(s3_pipeline):
    endpoint, first, _ = s3_pipeline
    options = _storage_options(endpoint)

    orders = DeltaTable(f"s3://{BUCKET}/wh/orders", storage_options=options).to_pyarrow_table()
    members = DeltaTable(f"s3://{BUCKET}/wh/customers", storage_options=options)

    # 14 transactions T01..T14, none rejected
    assert orders.num_rows == 14
    assert sorted(members.to_pyarrow_table().column("customer_id").to_pylist()) == MEMBERS


def test_a_second_run_scores_with_the_model_saved_on_the_bucket(s3_pipeline):
    endpoint, first, second = s3_pipeline

    assert second.returncode == 0, second.stderr[-3000:]
    runs = DeltaTable(f"s3://{BUCKET}/wh/runs", storage_options=_storage_options(endpoint))
    rows = sorted(runs.to_pyarrow_table().to_pylist(), key=lambda r: r["started_at"])
    assert [(r["job"], r["status"]) for r in rows] == [
        ("pipeline", "succeeded"),
        ("segment", "succeeded"),
    ]
    stage = json.loads(rows[1]["stages"])[0]
    assert stage["detail"]["mode"] == "score"
    model_run = stage["detail"]["model_run"]
    assert model_run == rows[0]["run_id"]


def test_credentials_appear_in_no_log_and_no_runs_row(s3_pipeline):
    endpoint, first, second = s3_pipeline
    runs = DeltaTable(f"s3://{BUCKET}/wh/runs", storage_options=_storage_options(endpoint))

    for text in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert SECRET_KEY not in text
    for row in runs.to_pyarrow_table().to_pylist():
        assert SECRET_KEY not in json.dumps(row, default=str)
