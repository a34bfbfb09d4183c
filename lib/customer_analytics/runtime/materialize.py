"""
Materialisation: computing a DataFrame once and keeping it, decided by the caller that reads
it more than once (a job, or the stage function a job hands :meth:`Persisted.keep` to).

Lineage is cut with checkpoints. In local mode a local checkpoint; on a cluster a checkpoint in
a folder of the shared file system (:func:`reliable_checkpoints`), because the blocks of a
local checkpoint live on the executor that computed them and cannot be recomputed when it is
lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark import StorageLevel
from pyspark.sql import SparkSession

from customer_analytics.io import filesystem


def is_local(spark: SparkSession) -> bool:
    """True when the session runs in Spark local mode (driver and executors in one JVM)."""
    return spark.sparkContext.master.startswith("local")


@contextmanager
def reliable_checkpoints(spark: SparkSession, folder: str) -> Iterator[str | None]:
    """
    On a cluster, checkpoints under ``folder`` for the block, removed after it; in local mode,
    nothing (``None``). A checkpoint directory already set (by the user) is kept and left
    alone.

    Lineage is cut with checkpoints (:func:`cut_lineage`): local
    ones keep their blocks on the executor that computed them, and a lost executor would fail
    the job, so on a cluster they are written to the shared file system instead.
    """
    context = spark.sparkContext
    if is_local(spark) or context.getCheckpointDir() is not None:
        yield None
        return
    context.setCheckpointDir(folder)
    created = context.getCheckpointDir()  # <folder>/<a new id>
    try:
        yield created
    finally:
        filesystem.for_session(spark).delete(created)


def cut_lineage(df, level: StorageLevel):
    """
    ``df`` computed now and kept as a new leaf of the plans built on it. In local mode a local
    checkpoint stored at ``level``; on a cluster a checkpoint in the session's checkpoint
    directory (:func:`reliable_checkpoints`), because the blocks of a local checkpoint
    live on the executor that computed them and cannot be recomputed when it is lost.
    """
    if is_local(df.sparkSession):
        return df.localCheckpoint(eager=True, storageLevel=level)
    return df.checkpoint(eager=True)


class Persisted:
    """
    DataFrames a job reads more than once: ``keep(df)`` persists one at ``level``,
    ``release()`` all (or leave the ``with`` block).

    With ``cut_lineage``, ``keep`` computes the frame now into a checkpoint instead
    (:func:`cut_lineage`): the frames built on it then plan from a leaf, not from the whole
    lineage before it, which Spark otherwise analyses again and compares with every cached
    plan at each step. The blocks of a checkpoint are not freed by ``release()`` but when the
    frame is garbage collected (Spark's context cleaner), at the latest when the job's session
    stops.
    """

    def __init__(
        self, level: StorageLevel = StorageLevel.MEMORY_AND_DISK, *, cut_lineage: bool = False
    ) -> None:
        self._frames = []
        self._level = level
        self._cut_lineage = cut_lineage

    def keep(self, df, level: StorageLevel | None = None):
        """``df`` persisted (or checkpointed) at ``level``, by default the instance's."""
        level = level or self._level
        if self._cut_lineage:
            self._frames.append(cut_lineage(df, level))
        else:
            self._frames.append(df.persist(level))
        return self._frames[-1]

    def release(self) -> None:
        for df in self._frames:
            df.unpersist()
        self._frames.clear()

    def __enter__(self) -> Persisted:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
