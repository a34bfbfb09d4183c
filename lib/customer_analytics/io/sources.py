"""Reading source files (CSV, Parquet, JSON; files, folders or globs) with clear input errors."""

from __future__ import annotations

import glob
import os

from pyspark.sql import DataFrame, SparkSession

from customer_analytics.config.schema import SourceConfig
from customer_analytics.core.errors import InputError, first_line
from customer_analytics.core.paths import has_scheme
from customer_analytics.io import filesystem
from customer_analytics.io.filesystem import FileSystem

#: Reader options applied before ``source.read_options``: RFC 4180 CSV with a header row, whose
#: quoted fields may hold line breaks (Online Retail's descriptions do: read line by line, a
#: record would count as several rows). A file is then read by one task: for one large CSV
#: without such fields, ``source.read_options: {multiLine: "false"}`` splits it.
DEFAULT_READ_OPTIONS: dict[str, dict[str, str]] = {
    "csv": {"header": "true", "escape": '"', "mode": "PERMISSIVE", "multiLine": "true"},
    "json": {"mode": "PERMISSIVE"},
    "parquet": {},
}


#: File extensions and the format they name; compressed files are named by the extension
#: before their codec's (``sales.csv.gz`` is CSV), which Spark reads by that codec.
FORMAT_OF_EXTENSION = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
}
COMPRESSION_EXTENSIONS = (".gz", ".bz2", ".zst", ".deflate", ".lz4", ".snappy")


def format_of_name(name: str) -> str | None:
    """The format a file name or glob names by its extension (codec extensions skipped)."""
    name = name.rstrip("/*").lower()
    for codec in COMPRESSION_EXTENSIONS:
        name = name.removesuffix(codec)
    return next((fmt for ext, fmt in FORMAT_OF_EXTENSION.items() if name.endswith(ext)), None)


def source_format(spark: SparkSession, source: SourceConfig, paths: list[str]) -> str:
    """
    ``source.format`` if set; else the format the path's extension names; else, for folders,
    the one format of the files they hold (by extension; Spark's own ``_`` and ``.`` files
    aside); else Parquet.

    Raises
    ------
    InputError
        When the folders hold files of several formats.
    """
    if source.format:
        return source.format
    named = format_of_name(source.path)
    if named:
        return named
    files = filesystem.for_session(spark)
    found = {
        format_of_name(name)
        for path in paths
        for name in files.list_files(path)
        if not name.startswith(("_", "."))
    } - {None}
    if len(found) > 1:
        raise InputError(
            f"source.path: {source.path!r} holds {' and '.join(sorted(found))} files: name one "
            "kind with a glob (e.g. folder/*.csv) or set source.format"
        )
    return found.pop() if found else "parquet"


def read_source(spark: SparkSession, source: SourceConfig) -> DataFrame:
    """
    Read ``source.path`` in the format :func:`source_format` finds.

    CSV columns are read as strings; ingest casts them. Raises :class:`InputError` when the
    path matches nothing or the files are not of the format.
    """
    paths = source_paths(source)
    fmt = source_format(spark, source, paths)
    if fmt == "parquet":
        _require_parquet(filesystem.for_session(spark), source, paths)
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


#: The first bytes of every Parquet file.
PARQUET_MAGIC = b"PAR1"


def _require_parquet(files: FileSystem, source: SourceConfig, paths: list[str]) -> None:
    """
    Refuse, in one line, a path read as Parquet whose first data file is not: Spark would log
    its executor's stack trace before failing.
    """
    for path in paths:
        if files.is_file(path):
            first = path
        else:
            names = [n for n in files.list_files(path) if not n.startswith(("_", "."))]
            if not names:
                continue
            first = f"{path.rstrip('/')}/{names[0]}"
        start = files.head(first, len(PARQUET_MAGIC))
        if start != PARQUET_MAGIC:
            raise InputError(
                f"source.path: {first} is not Parquet (it starts with {start!r}); name the "
                "file with its extension (.csv, .json, .csv.gz, ...) or set source.format"
            )


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
