"""
Materialisation: computing a DataFrame once and keeping it, decided by the caller that reads
it more than once (a job, or the stage function a job hands :meth:`Persisted.keep` to).

How frames are kept is ``spark.materialize`` (:class:`Materializer`):

- ``checkpoint`` (default): persisted; where the caller cuts the lineage, a checkpoint. In
  local mode (and over Spark Connect) a local checkpoint; on a classic cluster a checkpoint in
  a folder of the shared file system (:func:`reliable_checkpoints`), because the blocks of a
  local checkpoint live on the executor that computed them and cannot be recomputed when it is
  lost.
- ``cache``: persisted only, computed at once where the caller cuts the lineage.
- ``table``: written to a scratch Delta table and read back, the tables dropped when the run
  ends (:class:`~customer_analytics.io.tables.ScratchTables`): for servers that offer neither
  cache nor checkpoint (Databricks serverless).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from customer_analytics.config.schema import MATERIALIZE_MODES
from customer_analytics.core.connect import is_connect, session_master
from customer_analytics.io import filesystem
from customer_analytics.io.tables import ScratchTables, Warehouse


def is_local(spark: SparkSession) -> bool:
    """True when the session runs in Spark local mode (driver and executors in one JVM)."""
    return session_master(spark).startswith("local")


@contextmanager
def reliable_checkpoints(spark: SparkSession, folder: str) -> Iterator[str | None]:
    """
    On a classic cluster, checkpoints under ``folder`` for the block, removed after it;
    otherwise (local mode, Spark Connect) nothing (``None``). A checkpoint directory already
    set (by the user) is kept and left alone.
    """
    if is_connect(spark) or is_local(spark):
        yield None
        return
    from customer_analytics.runtime import classic

    if classic.checkpoint_folder(spark) is not None:
        yield None
        return
    created = classic.set_checkpoint_folder(spark, folder)  # <folder>/<a new id>
    try:
        yield created
    finally:
        filesystem.for_session(spark).delete(created)


def cut_lineage(df: DataFrame, level: StorageLevel) -> DataFrame:
    """
    ``df`` computed now and kept as a new leaf of the plans built on it: a local checkpoint
    stored at ``level`` in local mode and over Spark Connect, else a checkpoint in the
    session's checkpoint directory (:func:`reliable_checkpoints`).
    """
    spark = df.sparkSession
    if is_connect(spark) or is_local(spark):
        return df.localCheckpoint(eager=True, storageLevel=level)
    return df.checkpoint(eager=True)


class Materializer:
    """
    How a run keeps frames (``spark.materialize``): ``checkpoint``, ``cache`` or ``table``
    (then ``warehouse`` and ``run_id`` name the scratch tables). :meth:`close` drops what
    ``table`` wrote.
    """

    def __init__(
        self, mode: str = "checkpoint", warehouse: Warehouse | None = None, run_id: str = ""
    ) -> None:
        if mode not in MATERIALIZE_MODES:
            choices = ", ".join(MATERIALIZE_MODES)
            raise ValueError(f"spark.materialize must be one of {choices}, got {mode!r}")
        if mode == "table" and warehouse is None:
            raise ValueError("spark.materialize 'table' needs a warehouse for its scratch tables")
        self.mode = mode
        self._scratch = ScratchTables(warehouse, run_id) if mode == "table" else None

    def keep(self, df: DataFrame, level: StorageLevel, *, cut: bool) -> DataFrame:
        """``df`` kept at ``level``; computed now into a new leaf when ``cut``."""
        if self._scratch is not None:
            return self._scratch.keep(df)
        if self.mode == "checkpoint" and cut:
            return cut_lineage(df, level)
        kept = df.persist(level)
        if cut:
            kept.count()  # computed now, as a checkpoint would be
        return kept

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.drop()


class Persisted:
    """
    DataFrames a job reads more than once: ``keep(df)`` keeps one at ``level``, ``release()``
    all (or leave the ``with`` block), the way ``materializer`` says (by default persisted,
    checkpointed with ``cut_lineage``).

    With ``cut_lineage``, ``keep`` computes the frame now into a checkpoint instead
    (:func:`cut_lineage`): the frames built on it then plan from a leaf, not from the whole
    lineage before it, which Spark otherwise analyses again and compares with every cached
    plan at each step. The blocks of a checkpoint are not freed by ``release()`` but when the
    frame is garbage collected (Spark's context cleaner), at the latest when the job's session
    stops.
    """

    def __init__(
        self,
        level: StorageLevel = StorageLevel.MEMORY_AND_DISK,
        *,
        cut_lineage: bool = False,
        materializer: Materializer | None = None,
    ) -> None:
        self._frames = []
        self._level = level
        self._cut_lineage = cut_lineage
        self._materializer = materializer or Materializer()

    def keep(self, df, level: StorageLevel | None = None):
        """``df`` kept at ``level``, by default the instance's."""
        kept = self._materializer.keep(df, level or self._level, cut=self._cut_lineage)
        self._frames.append(kept)
        return kept

    def release(self) -> None:
        for df in self._frames:
            df.unpersist()
        self._frames.clear()

    def __enter__(self) -> Persisted:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
