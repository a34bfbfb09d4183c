"""Reading source files (CSV, Parquet, JSON; files, folders or globs) with clear input errors."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from customer_analytics.config import SourceConfig, source_paths
from customer_analytics.errors import InputError

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
            f"source.path: cannot read {source.path!r} as {fmt} ({_first_line(exc)}); "
            "set source.format if the extension is misleading"
        ) from None
    if fmt == "json" and df.columns == ["_corrupt_record"]:
        raise InputError(f"source.path: {source.path!r} holds no JSON records")
    return df


def _first_line(exc: Exception) -> str:
    java = getattr(exc, "java_exception", None)
    if java is not None:  # py4j: report the root cause, not "An error occurred while calling"
        while java.getCause() is not None:
            java = java.getCause()
        return str(java.getMessage() or java.toString())[:300]
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
