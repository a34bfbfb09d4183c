"""
A Spark Connect server with Delta Lake for the tests, in a process of its own, as a cluster's
would be: ``python -m tests.connect_server PORT WAREHOUSE_DIR``. A classic local session with
Spark's Connect plugin, the way ``start-connect-server.sh`` starts one; it prints ``ready`` once
it listens on PORT, and clients authenticate with ``$SPARK_CONNECT_AUTHENTICATE_TOKEN``. The
test that starts it stops it by its PID.
"""

from __future__ import annotations

import signal
import sys

from pyspark.sql import SparkSession

from customer_analytics.config.schema import SparkConfig
from customer_analytics.runtime.classic import configure

CONNECT_PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"


def main(port: str, warehouse_dir: str) -> None:
    spark_cfg = SparkConfig(
        master="local[2]",
        app_name="connect-server",
        conf={
            "spark.plugins": CONNECT_PLUGIN,
            "spark.connect.grpc.binding.port": port,
            "spark.sql.warehouse.dir": warehouse_dir,
            "spark.ui.enabled": False,
            "spark.driver.memory": "2g",
        },
    )
    configure(SparkSession.builder, spark_cfg).getOrCreate()
    print("ready", flush=True)
    signal.pause()


if __name__ == "__main__":
    main(*sys.argv[1:3])
