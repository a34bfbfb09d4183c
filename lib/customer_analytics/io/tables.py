"""
Delta tables, with or without the Delta Spark extension (SPEC section 9).

Where the extension is active (Databricks, a cluster started with the Delta package), tables are
written and read with ``format("delta")``. Where it is not (Maven unreachable, local mode, CI),
Spark writes the Parquet files into a staging folder inside the table folder, the files are
moved into the table folder, and ``deltalake`` (delta-rs) commits them to ``_delta_log`` as one
transaction. Until that commit, no Delta reader sees the new files: a writer killed between
writing and committing leaves the previous version readable, and the next write succeeds.
Reads go through the log's file list for the current or a given version.

Both paths give tables that ``deltalake.DeltaTable``, Spark with Delta, DuckDB and Polars read,
with version history, and each reads the other's. The native path works on any file system
Spark's Hadoop configuration reaches (``s3a://``, ``abfss://``, ``gs://``, ``dbfs:/``,
``/Volumes/...``); the fallback path supports local file system paths only.

Examples
--------
>>> warehouse = Warehouse.for_path(spark, "/tmp/wh")
>>> warehouse.writer("orders").mode("overwrite").execute(orders_df)
>>> warehouse.read("orders", version=0)
"""

from __future__ import annotations

import contextlib
import glob
import importlib.metadata
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from customer_analytics.core.delta import DEFAULT_DELTA_MODE, DELTA_MODES, native_delta_enabled
from customer_analytics.core.errors import ConcurrentWriteError
from customer_analytics.core.paths import has_scheme, join
from customer_analytics.core.settings import sql_settings
from customer_analytics.io import filesystem
from customer_analytics.io.filesystem import FileSystem

WRITE_MODES = ("overwrite", "append")
STAGING_PREFIX = "_staging-"
HIVE_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
#: The commit field both backends store the commit metadata in (as JSON), and both read.
USER_METADATA = "userMetadata"
#: What Delta Lake raises when another writer committed to the table after this write read it.
NATIVE_CONFLICTS = (
    DeltaConcurrentModificationException,
    ConcurrentWriteException,
    MetadataChangedException,
    ProtocolChangedException,
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentDeleteDeleteException,
    ConcurrentTransactionException,
)

#: The table property a native write creates a table with: no min/max statistics, row counts
#: only (as the deltalake fallback writes). The stages cut tables by date, but each file of a
#: table spans the whole history, so its range skips nothing; and statistics of every column
#: cost about as much as writing the Parquet files. A list of date columns
#: (``delta.dataSkippingStatsColumns``) would outlive an overwrite that drops one of them, and
#: Delta refuses such a write. Delta applies the property when it creates a table: a table
#: created before keeps its own.
STATISTICS_PROPERTIES = {"delta.dataSkippingNumIndexedCols": "0"}


@dataclass(frozen=True)
class Commit:
    """What one write committed: the table version and the rows it wrote."""

    path: str
    version: int
    rows: int


def resolve_backend(spark: SparkSession, backend: str = DEFAULT_DELTA_MODE) -> str:
    """``native`` or ``deltalake``: the Delta implementation for this session."""
    if backend not in DELTA_MODES:
        raise ValueError(f"backend must be one of {DELTA_MODES}, got {backend!r}")
    if backend == "auto":
        return "native" if native_delta_enabled(spark) else "deltalake"
    if backend == "native" and not native_delta_enabled(spark):
        raise ValueError(
            "warehouse.delta is 'native' but the Delta Spark extension is not active in this "
            "session; start Spark with the Delta package or use warehouse.delta=auto"
        )
    return backend


class TableWriter:
    """
    Write a DataFrame to one Delta table as one commit.

    Builder methods return ``self``; nothing happens until :meth:`execute`.
    ``overwrite`` replaces the rows and, when it differs, the schema and partitioning;
    ``append`` adds rows and requires the table's schema.
    """

    def __init__(self, spark: SparkSession, path: str, backend: str) -> None:
        self._spark = spark
        self._path = path
        self._backend = backend
        self._mode = "overwrite"
        self._partition_by: list[str] = []
        self._metadata: dict[str, str] = {}
        self._before_commit: Callable[[], None] | None = None

    @classmethod
    def for_path(
        cls, spark: SparkSession, path: str, backend: str = DEFAULT_DELTA_MODE
    ) -> TableWriter:
        """A writer for the table at ``path`` (created on first write)."""
        if not path:
            raise ValueError("path must not be empty")
        return cls(spark, path, resolve_backend(spark, backend))

    def mode(self, mode: str) -> TableWriter:
        if mode not in WRITE_MODES:
            raise ValueError(f"mode must be one of {WRITE_MODES}, got {mode!r}")
        self._mode = mode
        return self

    def partition_by(self, *columns: str) -> TableWriter:
        self._partition_by = list(columns)
        return self

    def commit_metadata(self, **values: str) -> TableWriter:
        """
        Key-value pairs stored in the commit (e.g. ``run_id``) as the JSON ``userMetadata``
        that Delta Lake's history shows, and :meth:`Warehouse.history` gives as keys.
        """
        self._metadata.update({k: str(v) for k, v in values.items()})
        return self

    def before_commit(self, hook: Callable[[], None]) -> TableWriter:
        """Call ``hook`` after the data files are written and before the commit (for tests)."""
        self._before_commit = hook
        return self

    def execute(self, df: DataFrame) -> Commit:
        """
        Write ``df`` and commit it; return the new version and the rows written.

        Raises
        ------
        ConcurrentWriteError
            Another writer committed to the table after this write read it (two runs on one
            warehouse at once). Nothing of this write is committed; the table keeps the other
            writer's version.
        """
        missing = [c for c in self._partition_by if c not in df.columns]
        if missing:
            raise ValueError(f"partition column(s) not in the DataFrame: {', '.join(missing)}")
        try:
            if self._backend == "native":
                return self._execute_native(df)
            return self._execute_deltalake(df)
        except NATIVE_CONFLICTS as exc:
            raise self._conflict(type(exc).__name__) from None
        except CommitFailedError:
            raise self._conflict("CommitFailedError") from None
        except DeltaError as exc:
            if "already exists" not in str(exc):  # two writers creating the table at once
                raise
            raise self._conflict("table created by another writer") from None

    def _conflict(self, cause: str) -> ConcurrentWriteError:
        return ConcurrentWriteError(
            f"table {self._path}: another run committed to it while this run was writing it "
            f"({cause}); this run's write was not committed and the table keeps the other "
            "run's version: run again when the other run has finished"
        )

    def _execute_native(self, df: DataFrame) -> Commit:
        from delta.tables import DeltaTable as SparkDeltaTable

        if self._mode == "append" and _native_table_exists(self._spark, self._path):
            detail = SparkDeltaTable.forPath(self._spark, self._path).detail().first()
            current = self._spark.read.format("delta").load(self._path).schema
            _check_append_schema(
                current, detail["partitionColumns"], df.schema, self._partition_by, self._path
            )
        writer = df.write.format("delta").mode(self._mode)
        writer = writer.options(**STATISTICS_PROPERTIES)
        if self._mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        if self._partition_by:
            writer = writer.partitionBy(*self._partition_by)
        if self._metadata:
            writer = writer.option(USER_METADATA, _metadata_text(self._metadata))
        if self._before_commit is not None:
            self._before_commit()
        writer.save(self._path)
        last = SparkDeltaTable.forPath(self._spark, self._path).history(1).collect()[0]
        metrics = last["operationMetrics"] or {}
        return Commit(self._path, int(last["version"]), int(metrics.get("numOutputRows", 0)))

    def _execute_deltalake(self, df: DataFrame) -> Commit:
        root = _local_path(self._path)
        os.makedirs(root, exist_ok=True)
        _remove_stale_staging(filesystem.for_session(self._spark), root)
        existing = _open(root)
        if existing is not None and self._mode == "append":
            _check_append_schema(
                StructType.fromJson(json.loads(existing.schema().to_json())),
                existing.metadata().partition_columns,
                df.schema,
                self._partition_by,
                self._path,
            )
        staging = os.path.join(root, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
        writer = df.write.mode("overwrite")
        if self._partition_by:
            writer = writer.partitionBy(*self._partition_by)
        writer.parquet(staging)
        actions: list[AddAction] = []
        try:
            actions, rows = _move_into_table(staging, root)
            if self._before_commit is not None:
                self._before_commit()
            self._commit(root, existing, df.schema, actions)
        except BaseException:
            for action in actions:  # moved in but never committed: no reader will see them
                _remove_file(os.path.join(root, action.path))
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Commit(self._path, DeltaTable(root).version(), rows)

    def _commit(
        self, root: str, table: DeltaTable | None, schema: StructType, actions: list[AddAction]
    ) -> None:
        """
        Commit ``actions`` as the next version after ``table``, the table as this write read it
        before writing its files (``None``: there was no table).
        """
        from deltalake import CommitProperties

        delta_schema = Schema.from_json(schema.json())
        properties = CommitProperties(
            custom_metadata={USER_METADATA: _metadata_text(self._metadata)}
            if self._metadata
            else None
        )
        if table is None:
            create_table_with_add_actions(
                root,
                delta_schema,
                actions,
                mode="error",
                partition_by=self._partition_by or None,
                commit_properties=properties,
            )
        elif self._mode == "append":
            table.create_write_transaction(
                actions,
                "append",
                delta_schema,
                partition_by=table.metadata().partition_columns,
                commit_properties=properties,
            )
        elif _same_layout(table, delta_schema, self._partition_by):
            table.create_write_transaction(
                actions,
                "overwrite",
                delta_schema,
                partition_by=self._partition_by or None,
                commit_properties=properties,
            )
        else:  # a new schema or partitioning: replace the table's metadata in the same commit
            if _open(root).version() != table.version():
                raise CommitFailedError("the table has a newer version than this write read")
            create_table_with_add_actions(
                root,
                delta_schema,
                actions,
                mode="overwrite",
                partition_by=self._partition_by or None,
                commit_properties=properties,
            )


class Warehouse:
    """All tables of one warehouse folder: table ``T`` lives at ``<path>/T``."""

    def __init__(self, spark: SparkSession, path: str, backend: str) -> None:
        self.spark = spark
        self.path = path
        self.backend = backend

    @classmethod
    def for_path(
        cls, spark: SparkSession, path: str, backend: str = DEFAULT_DELTA_MODE
    ) -> Warehouse:
        """
        The warehouse at ``path``; ``ValueError`` when the backend cannot reach it (the
        deltalake fallback on object storage).
        """
        if not path:
            raise ValueError("warehouse path must not be empty")
        backend = resolve_backend(spark, backend)
        if backend == "deltalake":
            _local_path(path)
        return cls(spark, path, backend)

    def describe(self) -> str:
        """How tables are written, for the job's first line."""
        if self.backend == "native":
            return f"Delta Lake {_spark_delta_version()}, native"
        return f"Delta tables committed with deltalake {deltalake_version()} (delta-rs)"

    def table_path(self, name: str) -> str:
        if not name or "/" in name or name.startswith((".", "_")):
            raise ValueError(f"invalid table name {name!r}")
        return join(self.path, name)

    def writer(self, name: str) -> TableWriter:
        return TableWriter(self.spark, self.table_path(name), self.backend)

    def write(self, name: str, df: DataFrame, mode: str = "overwrite", **metadata: str) -> Commit:
        """Shorthand for ``writer(name).mode(mode).commit_metadata(...).execute(df)``."""
        return self.writer(name).mode(mode).commit_metadata(**metadata).execute(df)

    def exists(self, name: str) -> bool:
        if self.backend == "native":
            return _native_table_exists(self.spark, self.table_path(name))
        return table_exists(self.table_path(name))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        return read_table(self.spark, self.table_path(name), version, self.backend)

    def history(self, name: str) -> list[dict]:
        """
        The table's commits, newest first: ``version``, ``timestamp``, ``operation`` and the
        commit metadata's keys (``run_id``), whichever backend wrote them.
        """
        if self.backend == "native":
            return _native_history(self.spark, self.table_path(name))
        return table_history(self.table_path(name))

    def table_names(self) -> list[str]:
        """
        The Delta tables of the warehouse: its folders whose ``_delta_log`` holds a commit (a
        writer killed while creating a table leaves a log folder without one).
        """
        fs = filesystem.for_session(self.spark)
        return [
            name
            for name in fs.list_dirs(self.path)
            if not name.startswith((".", "_"))
            and fs.exists(join(self.path, name, "_delta_log"))
            and self.exists(name)
        ]

    def vacuum(self, name: str, retention_hours: float) -> int:
        """
        Delete the files of table ``name`` that its current version does not use and that are
        older than ``retention_hours``: those a killed or losing writer left uncommitted, and
        those of versions replaced more than ``retention_hours`` ago (which time travel can then
        no longer read). A running writer's files are younger than the retention, so they stay.
        Returns the number of files deleted.
        """
        path = self.table_path(name)
        if self.backend == "native":
            settings = {
                # Delta refuses a retention under its 7-day default unless this check is off,
                "spark.databricks.delta.retentionDurationCheck.enabled": "false",
                # and since 4.0 ignores RETAIN for the table property (a commit per table)
                # unless this one is off.
                "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled": "false",
                # Its file listing runs this many tasks (Spark's default 10,000: 40 s a table)
                "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
                    self.spark.sparkContext.defaultParallelism
                ),
            }
            with sql_settings(self.spark, settings):
                statement = f"VACUUM delta.`{path}` RETAIN {retention_hours} HOURS"
                doomed = self.spark.sql(f"{statement} DRY RUN").count()
                self.spark.sql(statement).count()
            return doomed
        root = _local_path(path)
        stale = _remove_stale_staging(
            filesystem.for_session(self.spark), root, older_than_seconds=retention_hours * 3600
        )
        table = _open(root)
        if table is None:
            raise FileNotFoundError(f"no Delta table at {path}")
        deleted = table.vacuum(
            retention_hours=int(retention_hours),
            dry_run=False,
            enforce_retention_duration=False,
            full=True,
        )
        return len(deleted) + stale

    def row_count(self, name: str) -> int:
        """Rows of the current version: from the log's file statistics where it can."""
        if self.backend == "native":
            return self.read(name).count()
        table = _open(_local_path(self.table_path(name)))
        if table is None:
            raise FileNotFoundError(f"no Delta table at {self.table_path(name)}")
        counts = pa.table(table.get_add_actions(flatten=True)).column("num_records")
        return int(pc.sum(counts).as_py() or 0)


def _spark_delta_version() -> str:
    return importlib.metadata.version("delta-spark")


def deltalake_version() -> str:
    return importlib.metadata.version("deltalake")


def table_exists(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "_delta_log")) and _open(path) is not None


def read_table(
    spark: SparkSession, path: str, version: int | None = None, backend: str = DEFAULT_DELTA_MODE
) -> DataFrame:
    """
    Read a Delta table, the current version or ``version``.

    Raises
    ------
    FileNotFoundError
        When ``path`` holds no Delta table.
    """
    if resolve_backend(spark, backend) == "native":
        if not _native_table_exists(spark, path):
            raise FileNotFoundError(f"no Delta table at {path}")
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(path)
    root = _local_path(path)
    table = _open(root, version)
    if table is None:
        raise FileNotFoundError(f"no Delta table at {path}")
    schema = StructType.fromJson(json.loads(table.schema().to_json()))
    files = table.file_uris()
    if not files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).option("basePath", root).parquet(*files)


def table_history(path: str) -> list[dict]:
    """
    The table's commits, newest first, as ``deltalake`` reports them, with the keys of the
    commit metadata (``run_id``) added.
    """
    table = _open(_local_path(path))
    if table is None:
        raise FileNotFoundError(f"no Delta table at {path}")
    return [{**entry, **_metadata_keys(entry.get(USER_METADATA))} for entry in table.history()]


def _native_table_exists(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable as SparkDeltaTable

    return bool(SparkDeltaTable.isDeltaTable(spark, path))


def _native_history(spark: SparkSession, path: str) -> list[dict]:
    from delta.tables import DeltaTable as SparkDeltaTable

    if not _native_table_exists(spark, path):
        raise FileNotFoundError(f"no Delta table at {path}")
    entries = []
    # the log's history is one row per commit: small, and read by the driver anyway
    for row in SparkDeltaTable.forPath(spark, path).history().collect():
        entry = {
            "version": int(row["version"]),
            "timestamp": row["timestamp"],
            "operation": row["operation"],
        }
        entry.update(_metadata_keys(row[USER_METADATA]))
        entries.append(entry)
    return entries


def _metadata_text(metadata: dict[str, str]) -> str:
    return json.dumps(metadata, sort_keys=True)


def _metadata_keys(text: str | None) -> dict[str, str]:
    """The keys a commit's ``userMetadata`` holds, when this package wrote it (JSON)."""
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _open(root: str, version: int | None = None) -> DeltaTable | None:
    try:
        return DeltaTable(root, version=version)
    except TableNotFoundError:
        return None


def _local_path(path: str) -> str:
    if has_scheme(path) and not path.startswith("file:"):
        raise ValueError(
            f"warehouse.path {path}: the deltalake fallback writes local paths only; object "
            "storage needs the Delta Lake JARs (warehouse.delta: auto or native, see README)"
        )
    return os.path.abspath(path.removeprefix("file://").removeprefix("file:"))


def _remove_stale_staging(fs: FileSystem, root: str, older_than_seconds: float = 3600.0) -> int:
    """
    Remove staging folders that a killed writer left behind in the table folder ``root`` (never
    a live writer's); return how many files they held.
    """
    table = f"file://{root}"
    removed = 0
    for name in fs.idle_folders(table, older_than_seconds, prefix=STAGING_PREFIX):
        folder = join(table, name)
        removed += fs.file_count(folder)
        fs.delete(folder)
    return removed


def _move_into_table(staging: str, root: str) -> tuple[list[AddAction], int]:
    """Move Spark's Parquet files from ``staging`` into ``root``; return add actions and rows."""
    actions = []
    total_rows = 0
    now_ms = int(time.time() * 1000)
    for source in sorted(glob.glob(os.path.join(staging, "**", "*.parquet"), recursive=True)):
        relative = os.path.relpath(source, staging)
        target = os.path.join(root, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        rows = pq.read_metadata(source).num_rows
        os.replace(source, target)
        total_rows += rows
        actions.append(
            AddAction(
                path=relative,
                size=os.path.getsize(target),
                partition_values=_partition_values(relative),
                modification_time=now_ms,
                data_change=True,
                stats=json.dumps({"numRecords": rows}),
            )
        )
    return actions, total_rows


def _remove_file(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _partition_values(relative_path: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for segment in relative_path.split(os.sep)[:-1]:
        key, _, value = segment.partition("=")
        value = unquote(value)
        values[unquote(key)] = None if value == HIVE_NULL_PARTITION else value
    return values


def _same_layout(table: DeltaTable, schema: Schema, partition_by: list[str]) -> bool:
    same_schema = json.loads(table.schema().to_json()) == json.loads(schema.to_json())
    return same_schema and list(table.metadata().partition_columns) == list(partition_by)


def _check_append_schema(
    current: StructType,
    partitions: list[str],
    schema: StructType,
    partition_by: list[str],
    path: str,
) -> None:
    have = {f.name: f.dataType for f in current.fields}
    new = {f.name: f.dataType for f in schema.fields}
    if have != new:
        raise ValueError(
            f"append to {path}: schema differs from the table's "
            f"(table: {current.simpleString()}, data: {schema.simpleString()})"
        )
    if partition_by and list(partitions) != list(partition_by):
        raise ValueError(
            f"append to {path}: partition columns {partition_by} differ from the table's "
            f"{list(partitions)}"
        )
