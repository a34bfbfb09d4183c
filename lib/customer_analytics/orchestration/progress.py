"""One line per stage: what went in, what came out, how long it took."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TextIO


@dataclass
class StageSummary:
    """The figures of one stage; the stage fills ``rows_in``, ``rows_out`` and ``detail``."""

    stage: str
    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0
    detail: dict[str, object] = field(default_factory=dict)
    #: ``ran``, or ``skipped`` (``detail["reason"]`` says why).
    status: str = "ran"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        extra = "".join(f", {k} {_fmt(v)}" for k, v in self.detail.items())
        return (
            f"[{self.stage}] rows in {self.rows_in:,}, rows out {self.rows_out:,}{extra}, "
            f"{self.seconds:.1f} s"
        )


#: Seconds between the lines that say a stage is still at work.
HEARTBEAT_SECONDS = 30.0


class Progress:
    """
    Collects stage summaries of one run and prints each as it ends. While a stage runs, every
    ``heartbeat_seconds`` a line says what it is doing (the last :meth:`doing`), so a long
    stage never sits silent.
    """

    def __init__(
        self, stream: TextIO | None = None, *, heartbeat_seconds: float = HEARTBEAT_SECONDS
    ) -> None:
        self._stream = stream
        self._heartbeat_seconds = heartbeat_seconds
        self._doing = ""
        self.stages: list[StageSummary] = []

    def say(self, message: str) -> None:
        print(message, file=self._stream or sys.stdout, flush=True)

    def doing(self, what: str) -> None:
        """Name the work the running stage starts now, for its heartbeat lines."""
        self._doing = what

    @contextmanager
    def stage(self, name: str) -> Iterator[StageSummary]:
        summary = StageSummary(stage=name)
        started = time.perf_counter()
        self.say(f"[{name}] started")
        self._doing = ""
        stopped = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(name, started, stopped), daemon=True)
        beat.start()
        try:
            yield summary
        finally:
            stopped.set()
            beat.join()
            summary.seconds = round(time.perf_counter() - started, 3)
            self.stages.append(summary)
        self.say(summary.line())

    def _heartbeat(self, name: str, started: float, stopped: threading.Event) -> None:
        while not stopped.wait(self._heartbeat_seconds):
            elapsed = time.perf_counter() - started
            doing = f": {self._doing}" if self._doing else ""
            self.say(f"[{name}] still running after {elapsed:.0f} s{doing}")

    def skip(self, name: str, reason: str) -> StageSummary:
        """Record stage ``name`` as skipped, and say why."""
        summary = StageSummary(stage=name, status="skipped", detail={"reason": reason})
        self.stages.append(summary)
        self.say(f"[{name}] skipped: {reason}")
        return summary


def _fmt(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
