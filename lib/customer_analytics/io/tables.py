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
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from customer_analytics.config.schema import WarehouseConfig
from customer_analytics.core import catalog
from customer_analytics.core.connect import is_connect
from customer_analytics.core.delta import DEFAULT_DELTA_MODE, DELTA_MODES, native_delta_enabled
from customer_analytics.core.errors import ConcurrentWriteError
from customer_analytics.core.paths import has_scheme, join
from customer_analytics.core.settings import sql_settings
from customer_analytics.core.sql import qualified_name, quoted
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
    """What one write committed: the table (its path or name), its version and the rows."""

    table: str
    version: int
    rows: int


@dataclass(frozen=True)
class TableLocation:
    """
    Where one Delta table lives: a folder (``path``) or a name in a catalog (``name``, its
    parts quoted, e.g. ```main`.`analytics`.`orders```). Exactly one is set.
    """

    path: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.name is None):
            raise ValueError("a table location is a path or a name, not both or neither")

    @property
    def sql(self) -> str:
        """The table in a SQL statement: its name, or ``delta.`<path>```."""
        return self.name if self.name is not None else f"delta.{quoted(self.path)}"

    def __str__(self) -> str:
        return self.name if self.name is not None else self.path


def resolve_backend(spark: SparkSession, backend: str = DEFAULT_DELTA_MODE) -> str:
    """
    ``native`` or ``deltalake``: the Delta implementation for this session. Over Spark Connect
    the server writes the tables, so always ``native``.
    """
    if backend not in DELTA_MODES:
        raise ValueError(f"backend must be one of {DELTA_MODES}, got {backend!r}")
    if is_connect(spark):
        if backend == "deltalake":
            raise ValueError(
                "warehouse.delta is 'deltalake', which commits files on this machine in a "
                "classic session; over Spark Connect the server's Delta Lake writes the tables "
                "(warehouse.delta: auto or native)"
            )
        return "native"
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

    def __init__(self, spark: SparkSession, location: TableLocation | str, backend: str) -> None:
        self._spark = spark
        self._location = (
            location if isinstance(location, TableLocation) else TableLocation(location)
        )
        self._path = self._location.path
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
        return cls(spark, TableLocation(path=path), resolve_backend(spark, backend))

    @classmethod
    def for_name(cls, spark: SparkSession, name: str) -> TableWriter:
        """A writer for the catalog table ``name`` (quoted parts), with native Delta."""
        return cls(spark, TableLocation(name=name), resolve_backend(spark, "native"))

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
            f"table {self._location}: another run committed to it while this run was writing it "
            f"({cause}); this run's write was not committed and the table keeps the other "
            "run's version: run again when the other run has finished"
        )

    def _execute_native(self, df: DataFrame) -> Commit:
        location = self._location
        if self._mode == "append" and _native_table_exists(self._spark, location):
            detail = self._spark.sql(f"DESCRIBE DETAIL {location.sql}").first()
            current = _native_reader(self._spark, location).schema
            _check_append_schema(
                current, detail["partitionColumns"], df.schema, self._partition_by, str(location)
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
        if location.name is not None:
            writer.saveAsTable(location.name)
        else:
            writer.save(location.path)
        last = self._spark.sql(f"DESCRIBE HISTORY {location.sql} LIMIT 1").first()
        metrics = last["operationMetrics"] or {}
        return Commit(str(location), int(last["version"]), int(metrics.get("numOutputRows", 0)))

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
    """
    All tables of one warehouse. By path (the default): table ``T`` lives at ``<path>/T``. By
    name (``schema`` set, ``catalog`` optional): table ``T`` is ``catalog.schema.T`` in the
    session's catalog, and ``path`` holds only the files beside the tables (models, report,
    checkpoints).
    """

    def __init__(
        self,
        spark: SparkSession,
        path: str,
        backend: str,
        *,
        schema: str | None = None,
        catalog: str | None = None,
    ) -> None:
        if catalog and not schema:
            raise ValueError("warehouse.catalog needs warehouse.schema")
        self.spark = spark
        self.path = path
        self.backend = backend
        self.schema = schema
        self.catalog = catalog

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

    @classmethod
    def for_schema(
        cls,
        spark: SparkSession,
        schema: str,
        files_path: str,
        *,
        catalog: str | None = None,
        backend: str = DEFAULT_DELTA_MODE,
    ) -> Warehouse:
        """
        The tables of ``[catalog.]schema``, created when absent, with their files (models,
        report, checkpoints) under ``files_path``. Tables by name need native Delta.
        """
        if resolve_backend(spark, backend) != "native":
            raise ValueError(
                "warehouse.schema: tables by name need native Delta (the Delta Lake JARs); "
                "warehouse.delta is 'deltalake' or the JARs could not be loaded"
            )
        warehouse = cls(spark, files_path, "native", schema=schema, catalog=catalog)
        if not spark.catalog.databaseExists(".".join(filter(None, (catalog, schema)))):
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {warehouse.namespace}")
        return warehouse

    @classmethod
    def for_config(cls, spark: SparkSession, config: WarehouseConfig) -> Warehouse:
        """The warehouse ``warehouse`` in the configuration describes: by name or by path."""
        if config.schema_:
            return cls.for_schema(
                spark, config.schema_, config.path, catalog=config.catalog, backend=config.delta
            )
        return cls.for_path(spark, config.path, config.delta)

    @property
    def by_name(self) -> bool:
        """True when tables are addressed by catalog name, not by path."""
        return self.schema is not None

    @property
    def namespace(self) -> str:
        """The quoted ``catalog.schema`` (or ``schema``) the tables are in; by name only."""
        return qualified_name(self.catalog, self.schema)

    def where(self, path: str | None = None) -> str:
        """Where the tables are, for messages: the schema, or the folder (``path`` if given)."""
        return self.namespace if self.by_name else (path or self.path)

    def describe(self) -> str:
        """How tables are written, for the job's first line."""
        if self.backend == "native":
            return f"Delta Lake {_spark_delta_version()}, native"
        return f"Delta tables committed with deltalake {deltalake_version()} (delta-rs)"

    def table_path(self, name: str) -> str:
        """The folder of table ``name``; by path only."""
        _check_table_name(name)
        if self.by_name:
            raise ValueError(f"table {name!r} is addressed by name in {self.namespace}")
        return join(self.path, name)

    def location(self, name: str) -> TableLocation:
        """Where table ``name`` lives: its catalog name or its folder."""
        _check_table_name(name)
        if self.by_name:
            return TableLocation(name=f"{self.namespace}.{quoted(name)}")
        return TableLocation(path=self.table_path(name))

    def writer(self, name: str) -> TableWriter:
        return TableWriter(self.spark, self.location(name), self.backend)

    def write(self, name: str, df: DataFrame, mode: str = "overwrite", **metadata: str) -> Commit:
        """Shorthand for ``writer(name).mode(mode).commit_metadata(...).execute(df)``."""
        return self.writer(name).mode(mode).commit_metadata(**metadata).execute(df)

    def exists(self, name: str) -> bool:
        if self.backend == "native":
            return _native_table_exists(self.spark, self.location(name))
        return table_exists(self.table_path(name))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        if self.backend == "native":
            return _native_read(self.spark, self.location(name), version)
        return read_table(self.spark, self.table_path(name), version, self.backend)

    def history(self, name: str) -> list[dict]:
        """
        The table's commits, newest first: ``version``, ``timestamp``, ``operation`` and the
        commit metadata's keys (``run_id``), whichever backend wrote them.
        """
        if self.backend == "native":
            return _native_history(self.spark, self.location(name))
        return table_history(self.table_path(name))

    def table_names(self) -> list[str]:
        """
        The Delta tables of the warehouse, sorted. By path: its folders whose ``_delta_log``
        holds a commit (a writer killed while creating a table leaves a log folder without
        one). By name: the schema's tables.
        """
        if self.by_name:
            # one row per table of the schema: a few dozen
            rows = self.spark.sql(f"SHOW TABLES IN {self.namespace}").collect()
            return sorted(row["tableName"] for row in rows if not row["isTemporary"])
        fs = filesystem.for_session(self.spark)
        return [
            name
            for name in fs.list_dirs(self.path)
            if not name.startswith((".", "_")) and self.exists(name)
        ]

    def idle_seconds(self, name: str) -> float:
        """Seconds since table ``name`` last changed (its last commit); native Delta."""
        detail = self.spark.sql(f"DESCRIBE DETAIL {self.location(name).sql}").first()
        return time.time() - detail["lastModified"].timestamp()

    def drop(self, name: str) -> None:
        """Drop table ``name``: from the catalog (by name), or its folder (by path)."""
        location = self.location(name)
        if location.name is not None:
            self.spark.sql(f"DROP TABLE IF EXISTS {location.name}")
        else:
            filesystem.for_session(self.spark).delete(location.path)

    def vacuum(self, name: str, retention_hours: float) -> int:
        """
        Delete the files of table ``name`` that its current version does not use and that are
        older than ``retention_hours``: those a killed or losing writer left uncommitted, and
        those of versions replaced more than ``retention_hours`` ago (which time travel can then
        no longer read). A running writer's files are younger than the retention, so they stay.
        Returns the number of files deleted.
        """
        if self.backend == "native":
            settings = {
                # Delta refuses a retention under its 7-day default unless this check is off,
                "spark.databricks.delta.retentionDurationCheck.enabled": "false",
                # and since 4.0 ignores RETAIN for the table property (a commit per table)
                # unless this one is off.
                "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled": "false",
                # Its file listing runs this many tasks (Spark's default 10,000: 40 s a table)
                "spark.sql.sources.parallelPartitionDiscovery.parallelism": self.spark.conf.get(
                    "spark.sql.shuffle.partitions"
                ),
            }
            with sql_settings(self.spark, settings):
                statement = f"VACUUM {self.location(name).sql} RETAIN {retention_hours} HOURS"
                doomed = self.spark.sql(f"{statement} DRY RUN").count()
                self.spark.sql(statement).count()
            return doomed
        path = self.table_path(name)
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


class ScratchTables:
    """
    Frames written to Delta tables and read back, all dropped together: how a run keeps a
    frame it reads more than once where neither cache nor checkpoint is offered (Databricks
    serverless; ``spark.materialize: table``). By path under ``<path>/_scratch/<run id>/``,
    by name as ``scratch_<run id>_<n>`` in the warehouse's schema.
    """

    def __init__(self, warehouse: Warehouse, run_id: str) -> None:
        self._warehouse = warehouse
        self._run = run_id.lower().replace("-", "_")
        self._folder = join(warehouse.path, catalog.SCRATCH_FOLDER, run_id)
        self._written: list[TableLocation] = []

    def keep(self, df: DataFrame) -> DataFrame:
        """``df`` computed now into a new scratch table; the table, read back."""
        number = len(self._written) + 1
        warehouse = self._warehouse
        if warehouse.by_name:
            name = quoted(f"{catalog.SCRATCH_PREFIX}{self._run}_{number}")
            location = TableLocation(name=f"{warehouse.namespace}.{name}")
        else:
            location = TableLocation(path=join(self._folder, str(number)))
        TableWriter(warehouse.spark, location, warehouse.backend).execute(df)
        self._written.append(location)
        if warehouse.backend == "native":
            return _native_reader(warehouse.spark, location)
        return read_table(warehouse.spark, location.path, backend=warehouse.backend)

    def drop(self) -> None:
        """Drop every scratch table written (by path: delete the run's scratch folder)."""
        for location in self._written:
            if location.name is not None:
                self._warehouse.spark.sql(f"DROP TABLE IF EXISTS {location.name}")
        if self._written and not self._warehouse.by_name:
            filesystem.for_session(self._warehouse.spark).delete(self._folder)
        self._written.clear()


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
    Read the Delta table at ``path``, the current version or ``version``.

    Raises
    ------
    FileNotFoundError
        When ``path`` holds no Delta table.
    """
    if resolve_backend(spark, backend) == "native":
        return _native_read(spark, TableLocation(path=path), version)
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


def _native_table_exists(spark: SparkSession, location: TableLocation) -> bool:
    if location.name is not None:
        return bool(spark.catalog.tableExists(location.name))
    if not filesystem.for_session(spark).exists(join(location.path, "_delta_log")):
        return False  # asked first: Spark Connect logs every failed query as an error
    try:
        detail = spark.sql(f"DESCRIBE DETAIL {location.sql}").first()
    except AnalysisException:  # DELTA_MISSING_DELTA_TABLE: no table, or no folder
        return False
    return detail["format"] == "delta"


def _native_reader(spark: SparkSession, location: TableLocation) -> DataFrame:
    if location.name is not None:
        return spark.table(location.name)
    return spark.read.format("delta").load(location.path)


def _native_read(spark: SparkSession, location: TableLocation, version: int | None) -> DataFrame:
    if not _native_table_exists(spark, location):
        raise FileNotFoundError(f"no Delta table at {location}")
    if version is None:
        return _native_reader(spark, location)
    return spark.sql(f"SELECT * FROM {location.sql} VERSION AS OF {int(version)}")


def _native_history(spark: SparkSession, location: TableLocation) -> list[dict]:
    if not _native_table_exists(spark, location):
        raise FileNotFoundError(f"no Delta table at {location}")
    entries = []
    # the log's history is one row per commit: small, and read by the driver anyway
    for row in spark.sql(f"DESCRIBE HISTORY {location.sql}").collect():
        entry = {
            "version": int(row["version"]),
            "timestamp": row["timestamp"],
            "operation": row["operation"],
        }
        entry.update(_metadata_keys(row[USER_METADATA]))
        entries.append(entry)
    return entries


def _check_table_name(name: str) -> None:
    if not name or "/" in name or "`" in name or name.startswith((".", "_")):
        raise ValueError(f"invalid table name {name!r}")


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
