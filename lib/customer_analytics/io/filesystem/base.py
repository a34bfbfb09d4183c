"""
What the file layer offers, whichever implementation reaches the files: Hadoop's
``FileSystem`` in a classic session's JVM (:mod:`.hadoop`), or a client-side file system for a
Spark Connect session, which has no JVM in this process (:mod:`.arrow`).

Paths are strings as the user writes them: a relative path is relative to the directory the
job was started from, a path without a scheme is on the default (local) file system.
"""

from __future__ import annotations

import abc
import time

from customer_analytics.core.paths import join


class FileSystem(abc.ABC):
    """Files and folders by path string; each method resolves the path's file system."""

    @abc.abstractmethod
    def qualified(self, path: str) -> str:
        """The absolute URI ``path`` resolves to, e.g. ``file:/home/me/warehouse``."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def is_file(self, path: str) -> bool: ...

    @abc.abstractmethod
    def list_dirs(self, path: str) -> list[str]:
        """Names of the folders directly under ``path``, sorted; empty when ``path`` is absent."""

    @abc.abstractmethod
    def list_files(self, path: str) -> list[str]:
        """Names of the files directly under ``path``, sorted; empty when ``path`` is absent."""

    @abc.abstractmethod
    def last_modified(self, path: str) -> float:
        """
        Seconds since the epoch when ``path`` or anything under it last changed: the newest
        modification time of the folder and every file below it.
        """

    @abc.abstractmethod
    def file_count(self, path: str) -> int:
        """The files under ``path``, at any depth; 0 when ``path`` is absent."""

    @abc.abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace the file with ``data``, creating its parent folders."""

    @abc.abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """The whole file; ``FileNotFoundError`` naming ``path`` when absent."""

    @abc.abstractmethod
    def head(self, path: str, size: int) -> bytes:
        """The first ``size`` bytes of the file (fewer when it is shorter)."""

    @abc.abstractmethod
    def move(self, source: str, target: str) -> None:
        """Move the file ``source`` to ``target``, replacing ``target`` when it exists."""

    @abc.abstractmethod
    def delete(self, path: str) -> bool:
        """Delete a file or a folder with its contents; false when there was nothing."""

    def read_text(self, path: str) -> str:
        """The whole file as UTF-8 text; ``FileNotFoundError`` naming ``path`` when absent."""
        return self.read_bytes(path).decode("utf-8")

    def write_text(self, path: str, text: str) -> None:
        """Create or replace the file with ``text`` (UTF-8), creating its parent folders."""
        self.write_bytes(path, text.encode("utf-8"))

    def idle_folders(self, path: str, idle_seconds: float, *, prefix: str = "") -> list[str]:
        """
        Names of the folders directly under ``path`` (those starting with ``prefix``) in which
        nothing changed for more than ``idle_seconds`` (:meth:`last_modified`), sorted: what a
        killed run left, never what a live run is still writing.
        """
        now = time.time()
        return [
            name
            for name in self.list_dirs(path)
            if name.startswith(prefix) and now - self.last_modified(join(path, name)) > idle_seconds
        ]
