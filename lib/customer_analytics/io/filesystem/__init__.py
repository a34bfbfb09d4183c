"""
File-system access for everything that is not a table row (models, report files, staging,
leftovers of killed runs): one interface, :class:`FileSystem`, and the implementation a
session calls for. A classic session reaches files through Hadoop in its JVM (object storage
with the session's Hadoop settings); a Spark Connect session, which has no JVM in this
process, through Arrow's client-side file systems.

Examples
--------
>>> fs = filesystem.for_session(spark)
>>> fs.list_dirs(join(warehouse, "_models"))
['run-1']
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from customer_analytics.core.connect import is_connect
from customer_analytics.io.filesystem.arrow import ArrowFileSystem
from customer_analytics.io.filesystem.base import FileSystem
from customer_analytics.io.filesystem.hadoop import HadoopFileSystem


def for_session(spark: SparkSession) -> FileSystem:
    """The file layer for ``spark``: Hadoop's in a classic session, Arrow's over Connect."""
    return ArrowFileSystem() if is_connect(spark) else HadoopFileSystem(spark)


__all__ = ["ArrowFileSystem", "FileSystem", "HadoopFileSystem", "for_session"]
