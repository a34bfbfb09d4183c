"""
The file layer of a classic session: Hadoop's ``FileSystem`` API in the session's JVM, so the
same calls work on local paths and on ``s3a://``, ``abfss://``, ``gs://``, ``dbfs:/`` and
``/Volumes/...``, with the credentials and settings the session's Hadoop configuration holds.

Examples
--------
>>> fs = HadoopFileSystem(spark)
>>> fs.write_text(join("s3a://bucket/wh", "_models", "run-1", "metadata.json"), "{}")
>>> fs.list_dirs(join("s3a://bucket/wh", "_models"))
['run-1']
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from customer_analytics.io.filesystem.base import FileSystem

#: Hadoop's file systems that write a checksum file beside every file (``file:``'s default).
CHECKSUM_FS_CLASS = "org.apache.hadoop.fs.ChecksumFileSystem"


class HadoopFileSystem(FileSystem):
    """Files and folders through Hadoop's ``FileSystem``; one instance per classic session."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm = spark.sparkContext._jvm
        self._hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
        self._checksummed = self._jvm.java.lang.Class.forName(CHECKSUM_FS_CLASS)

    def qualified(self, path: str) -> str:
        """The absolute URI Hadoop resolves ``path`` to, e.g. ``file:/home/me/warehouse``."""
        jpath, fs = self._resolve(path)
        return str(fs.makeQualified(jpath).toString())

    def exists(self, path: str) -> bool:
        jpath, fs = self._resolve(path)
        return bool(fs.exists(jpath))

    def is_file(self, path: str) -> bool:
        jpath, fs = self._resolve(path)
        return bool(fs.isFile(jpath))

    def list_dirs(self, path: str) -> list[str]:
        """Names of the folders directly under ``path``, sorted; empty when ``path`` is absent."""
        jpath, fs = self._resolve(path)
        if not fs.exists(jpath):
            return []
        return sorted(str(s.getPath().getName()) for s in fs.listStatus(jpath) if s.isDirectory())

    def last_modified(self, path: str) -> float:
        """
        Seconds since the epoch when ``path`` or anything under it last changed: the newest
        modification time of the folder and every file below it.
        """
        jpath, fs = self._resolve(path)
        newest = fs.getFileStatus(jpath).getModificationTime()
        files = fs.listFiles(jpath, True)
        while files.hasNext():
            newest = max(newest, files.next().getModificationTime())
        return newest / 1000.0

    def file_count(self, path: str) -> int:
        """The files under ``path``, at any depth; 0 when ``path`` is absent."""
        jpath, fs = self._resolve(path)
        if not fs.exists(jpath):
            return 0
        files, count = fs.listFiles(jpath, True), 0
        while files.hasNext():
            files.next()
            count += 1
        return count

    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace the file with ``data``, creating its parent folders."""
        jpath, fs = self._resolve(path)
        stream = fs.create(jpath, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def read_bytes(self, path: str) -> bytes:
        """The whole file; ``FileNotFoundError`` naming ``path`` when absent."""
        jpath, fs = self._resolve(path)
        if not fs.exists(jpath):
            raise FileNotFoundError(f"no file at {path}")
        stream = fs.open(jpath)
        try:
            return bytes(stream.readAllBytes())
        finally:
            stream.close()

    def head(self, path: str, size: int) -> bytes:
        """The first ``size`` bytes of the file (fewer when it is shorter)."""
        jpath, fs = self._resolve(path)
        stream = fs.open(jpath)
        try:
            return bytes(stream.readNBytes(size))
        finally:
            stream.close()

    def list_files(self, path: str) -> list[str]:
        """Names of the files directly under ``path``, sorted; empty when ``path`` is absent."""
        jpath, fs = self._resolve(path)
        if not fs.exists(jpath):
            return []
        return sorted(str(s.getPath().getName()) for s in fs.listStatus(jpath) if s.isFile())

    def move(self, source: str, target: str) -> None:
        """Move the file ``source`` to ``target``, replacing ``target`` when it exists."""
        jsource, fs = self._resolve(source)
        jtarget, _ = self._resolve(target)
        if fs.exists(jtarget):
            fs.delete(jtarget, False)
        fs.mkdirs(jtarget.getParent())
        if not fs.rename(jsource, jtarget):
            raise OSError(f"could not move {source} to {target}")

    def delete(self, path: str) -> bool:
        """Delete a file or a folder with its contents; false when there was nothing."""
        jpath, fs = self._resolve(path)
        return bool(fs.delete(jpath, True))

    def _resolve(self, path: str):
        if not path:
            raise ValueError("path must not be empty")
        jpath = self._jvm.org.apache.hadoop.fs.Path(path)
        fs = jpath.getFileSystem(self._hadoop_conf)
        if self._checksummed.isInstance(fs):
            # the file system under it: no ``.<name>.crc`` file beside each file written
            fs = fs.getRawFileSystem()
        return jpath, fs
