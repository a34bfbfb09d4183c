"""
The file layer of a Spark Connect session, which has no JVM in this process: Arrow's
client-side file systems (``pyarrow.fs``) on local paths, ``/Volumes/...`` (a local path on
Databricks compute), ``s3a://``/``s3://``, ``gs://`` and ``abfss://``.

Object-store credentials come from the environment as the cloud SDKs read them
(``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ...), not from a Hadoop configuration.

Examples
--------
>>> fs = ArrowFileSystem()
>>> fs.write_text("/Volumes/main/customer_analytics/files/_models/run-1/metadata.json", "{}")
"""

from __future__ import annotations

import os

from pyarrow import fs as pafs

from customer_analytics.io.filesystem.base import FileSystem

#: Hadoop's URI schemes and the ones Arrow knows them by.
SCHEMES = {"s3a": "s3", "s3n": "s3", "abfss": "abfs", "gcs": "gs"}


class ArrowFileSystem(FileSystem):
    """Files and folders through ``pyarrow.fs``, resolved from each path's scheme."""

    def qualified(self, path: str) -> str:
        filesystem, resolved = self._resolve(path)
        if isinstance(filesystem, pafs.LocalFileSystem):
            return f"file:{resolved}"
        return path

    def exists(self, path: str) -> bool:
        return self._info(path).type != pafs.FileType.NotFound

    def is_file(self, path: str) -> bool:
        return self._info(path).type == pafs.FileType.File

    def list_dirs(self, path: str) -> list[str]:
        return self._names(path, pafs.FileType.Directory)

    def list_files(self, path: str) -> list[str]:
        return self._names(path, pafs.FileType.File)

    def last_modified(self, path: str) -> float:
        filesystem, resolved = self._resolve(path)
        infos = [filesystem.get_file_info(resolved)]
        if infos[0].type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"nothing at {path}")
        if infos[0].type == pafs.FileType.Directory:
            infos += filesystem.get_file_info(pafs.FileSelector(resolved, recursive=True))
        # object stores give folders no time: the files under them tell
        times = [info.mtime.timestamp() for info in infos if info.mtime is not None]
        return max(times, default=0.0)

    def file_count(self, path: str) -> int:
        filesystem, resolved = self._resolve(path)
        selector = pafs.FileSelector(resolved, recursive=True, allow_not_found=True)
        if filesystem.get_file_info(resolved).type != pafs.FileType.Directory:
            return 0
        return sum(info.type == pafs.FileType.File for info in filesystem.get_file_info(selector))

    def write_bytes(self, path: str, data: bytes) -> None:
        filesystem, resolved = self._resolve(path)
        filesystem.create_dir(_parent(resolved), recursive=True)
        with filesystem.open_output_stream(resolved) as stream:
            stream.write(data)

    def read_bytes(self, path: str) -> bytes:
        filesystem, resolved = self._resolve(path)
        if filesystem.get_file_info(resolved).type != pafs.FileType.File:
            raise FileNotFoundError(f"no file at {path}")
        with filesystem.open_input_stream(resolved) as stream:
            return stream.read()

    def head(self, path: str, size: int) -> bytes:
        filesystem, resolved = self._resolve(path)
        with filesystem.open_input_stream(resolved) as stream:
            return stream.read(size)

    def move(self, source: str, target: str) -> None:
        filesystem, resolved_source = self._resolve(source)
        _, resolved_target = self._resolve(target)
        if filesystem.get_file_info(resolved_target).type == pafs.FileType.File:
            filesystem.delete_file(resolved_target)
        filesystem.create_dir(_parent(resolved_target), recursive=True)
        filesystem.move(resolved_source, resolved_target)

    def delete(self, path: str) -> bool:
        filesystem, resolved = self._resolve(path)
        kind = filesystem.get_file_info(resolved).type
        if kind == pafs.FileType.Directory:
            filesystem.delete_dir(resolved)
        elif kind == pafs.FileType.File:
            filesystem.delete_file(resolved)
        return kind != pafs.FileType.NotFound

    def _info(self, path: str) -> pafs.FileInfo:
        filesystem, resolved = self._resolve(path)
        return filesystem.get_file_info(resolved)

    def _names(self, path: str, kind: pafs.FileType) -> list[str]:
        filesystem, resolved = self._resolve(path)
        if filesystem.get_file_info(resolved).type != pafs.FileType.Directory:
            return []
        entries = filesystem.get_file_info(pafs.FileSelector(resolved))
        return sorted(info.base_name for info in entries if info.type == kind)

    def _resolve(self, path: str) -> tuple[pafs.FileSystem, str]:
        if not path:
            raise ValueError("path must not be empty")
        scheme, separator, rest = path.partition("://")
        if not separator or scheme == "file":
            local = path.removeprefix("file://") if separator else path.removeprefix("file:")
            return pafs.LocalFileSystem(), os.path.abspath(local)
        if scheme == "dbfs":  # DBFS is mounted at /dbfs on Databricks compute
            return pafs.LocalFileSystem(), "/dbfs/" + rest.lstrip("/")
        return pafs.FileSystem.from_uri(f"{SCHEMES.get(scheme, scheme)}://{rest}")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path.strip("/") else path
