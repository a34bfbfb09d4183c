"""
How a session writes Delta tables, asked by every layer that touches one: the modes of
``warehouse.delta`` and whether the Delta Spark extension is active.
"""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

#: ``warehouse.delta``: ``auto`` (native when the extension is active, else delta-rs),
#: ``native`` (the Delta Spark extension, required) or ``deltalake`` (delta-rs commits).
DELTA_MODES = ("auto", "native", "deltalake")
#: ``warehouse.delta`` when it is not set, and the backend of a table opened without one.
DEFAULT_DELTA_MODE = "auto"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def native_delta_enabled(spark: SparkSession) -> bool:
    """True when this session writes Delta through the Delta Spark extension."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return True
    return DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", "") or "")


def check_delta_mode(mode: str) -> str:
    """``mode`` when it is one of :data:`DELTA_MODES`; a ``ValueError`` naming them otherwise."""
    if mode not in DELTA_MODES:
        raise ValueError(f"warehouse.delta must be one of {', '.join(DELTA_MODES)}, got {mode!r}")
    return mode
