"""Reading source files (CSV, Parquet, JSON; files, folders or globs) with clear input errors."""

from __future__ import annotations

import glob
import os

from pyspark.sql import DataFrame, SparkSession

from customer_analytics.config.schema import SourceConfig
from customer_analytics.core.errors import InputError, first_line
from customer_analytics.core.paths import has_scheme

#: Reader options applied before ``source.read_options``: RFC 4180 CSV with a header row, whose
#: quoted fields may hold line breaks (Online Retail's descriptions do: read line by line, a
#: record would count as several rows). A file is then read by one task: for one large CSV
#: without such fields, ``source.read_options: {multiLine: "false"}`` splits it.
DEFAULT_READ_OPTIONS: dict[str, dict[str, str]] = {
    "csv": {"header": "true", "escape": '"', "mode": "PERMISSIVE", "multiLine": "true"},
    "json": {"mode": "PERMISSIVE"},
    "parquet": {},
}


def read_source(spark: SparkSession, source: SourceConfig) -> DataFrame:
    """
    Read ``source.path`` in ``source.format`` (or the format its extension implies).

    CSV columns are read as strings; ingest casts them. Raises :class:`InputError` when the
    path matches nothing or the files are not of the format.
    """
    paths = source_paths(source)
    fmt = source.effective_format()
    options = {**DEFAULT_READ_OPTIONS[fmt], **source.read_options}
    try:
        df = spark.read.format(fmt).options(**options).load(paths)
    except Exception as exc:  # Spark raises several types for an unreadable file
        raise InputError(
            f"source.path: cannot read {source.path!r} as {fmt} ({first_line(exc)}); "
            "set source.format if the extension is misleading"
        ) from None
    if fmt == "json" and df.columns == ["_corrupt_record"]:
        raise InputError(f"source.path: {source.path!r} holds no JSON records")
    return df


def source_paths(source: SourceConfig) -> list[str]:
    """
    The files or folders ``source.path`` names (globs expanded), sorted.

    A URI (``s3a://bucket/raw/*.parquet``) is returned as it is: Spark expands it and reports
    a path that matches nothing when the job reads it, since its file system is only reachable
    through the session.

    Raises
    ------
    InputError
        When nothing matches a local path, naming the path and the working directory.
    """
    if has_scheme(source.path) and not source.path.startswith("file:"):
        return [source.path]
    pattern = os.path.expanduser(source.path.removeprefix("file://").removeprefix("file:"))
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    matches = [m for m in matches if os.path.exists(m)]
    if not matches:
        raise InputError(
            f"source.path: nothing found at {source.path!r} (relative to {os.getcwd()})"
        )
    return matches
