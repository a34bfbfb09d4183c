"""One line per stage: what went in, what came out, how long it took."""

from __future__ import annotations

import sys
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


class Progress:
    """Collects stage summaries of one run and prints each as it ends."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.stages: list[StageSummary] = []

    def say(self, message: str) -> None:
        print(message, file=self._stream or sys.stdout, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[StageSummary]:
        summary = StageSummary(stage=name)
        started = time.perf_counter()
        self.say(f"[{name}] started")
        try:
            yield summary
        finally:
            summary.seconds = round(time.perf_counter() - started, 3)
            self.stages.append(summary)
        self.say(summary.line())

    def skip(self, name: str, reason: str) -> StageSummary:
        """Record stage ``name`` as skipped, and say why."""
        summary = StageSummary(stage=name, status="skipped", detail={"reason": reason})
        self.stages.append(summary)
        self.say(f"[{name}] skipped: {reason}")
        return summary


def _fmt(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
