"""
The ingest reconciliation: every input row is accepted, quarantined (by reason) or excluded
(by rule), counted in one aggregation over the prepared rows and checked before anything is
written as current.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError

ACCEPTED, QUARANTINED, EXCLUDED = "accepted", "quarantined", "excluded"

RECONCILIATION_SCHEMA = StructType(
    [
        StructField(C.RUN_ID, StringType(), False),
        StructField(C.SOURCE, StringType(), False),
        StructField(C.CATEGORY, StringType(), False),
        StructField(C.REASON, StringType(), True),
        StructField(C.ROWS, LongType(), False),
        StructField(C.LINES, LongType(), True),
    ]
)


def reconciliation_counts(prepared: DataFrame) -> DataFrame:
    """
    The counts of one aggregation over the prepared rows, per ``reason`` (null = accepted):
    ``distinct_rows``, ``duplicate_rows`` (input rows beyond the first of identical ones),
    ``lines`` and ``sample`` (one ``detail`` of the reason, the least). Small: one row per
    reason.
    """
    return prepared.groupBy(C.REASON).agg(
        F.count(F.lit(1)).alias("distinct_rows"),
        F.sum(F.col(C.COPIES) - 1).alias("duplicate_rows"),
        F.sum(F.when(F.col(C.REASON).isNull(), F.col(C.LINE_COUNT))).alias("lines"),
        F.min(C.DETAIL).alias("sample"),
    )


@dataclass(frozen=True)
class Reconciliation:
    """Input rows = accepted + quarantined (by reason) + excluded (by rule)."""

    source: str
    input_rows: int
    accepted_rows: int
    lines_written: int
    quarantined: dict[str, int]
    excluded: dict[str, int]
    #: One ``detail`` of each quarantine reason, to show what was wrong.
    samples: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_counts(
        cls, source: str, counts: list, input_rows: int | None = None
    ) -> Reconciliation:
        """
        Build from the collected rows of :func:`reconciliation_counts` and the input's row
        count, counted on its own (``input_rows``; without it the parts' sum is assumed, and
        :attr:`balanced` says nothing).
        """
        quarantined: dict[str, int] = {}
        samples: dict[str, str] = {}
        accepted_rows = lines = duplicates = 0
        for row in counts:
            duplicates += int(row["duplicate_rows"] or 0)
            if row[C.REASON] is None:
                accepted_rows = int(row["distinct_rows"])
                lines = int(row["lines"] or 0)
            else:
                quarantined[row[C.REASON]] = int(row["distinct_rows"])
                if row["sample"] is not None:
                    samples[row[C.REASON]] = row["sample"]
        excluded = {"exact_duplicate": duplicates} if duplicates else {}
        total = accepted_rows + sum(quarantined.values()) + duplicates
        if input_rows is not None:
            total = input_rows
        return cls(
            source,
            total,
            accepted_rows,
            lines,
            dict(sorted(quarantined.items())),
            excluded,
            samples,
        )

    @property
    def balanced(self) -> bool:
        parts = self.accepted_rows + sum(self.quarantined.values()) + sum(self.excluded.values())
        return parts == self.input_rows

    def require_balanced(self) -> Reconciliation:
        """``self`` when input rows = accepted + quarantined + excluded; else nothing is written."""
        if not self.balanced:
            raise RuntimeError(f"ingest does not reconcile, nothing written: {self}")
        return self

    def require_accepted(self, max_rejected_share: float, *, path: str) -> Reconciliation:
        """
        ``self`` when some row was accepted and at most ``max_rejected_share`` of the input
        rows were quarantined; else nothing may be written as current. ``path`` names the
        input in the message.

        Raises
        ------
        InputError
            Naming the share, the setting and the top reasons with a sample of each.
        """
        rejected = sum(self.quarantined.values())
        if self.accepted_rows == 0:
            raise InputError(
                f"ingest accepted none of the {self.input_rows:,} input rows of {path}, "
                f"nothing written: {self.top_reasons()}"
            )
        share = rejected / self.input_rows
        if share > max_rejected_share:
            raise InputError(
                f"ingest quarantined {rejected:,} of the {self.input_rows:,} input rows of "
                f"{path} ({share:.1%}), more than source.max_rejected_share "
                f"({max_rejected_share:g}), nothing written: {self.top_reasons()}"
            )
        return self

    def top_reasons(self, limit: int = 3) -> str:
        """The commonest quarantine reasons with their counts and a sample detail, in a line."""
        ranked = sorted(self.quarantined.items(), key=lambda item: (-item[1], item[0]))[:limit]
        parts = []
        for reason, count in ranked:
            sample = self.samples.get(reason)
            parts.append(f"{reason} {count:,}" + (f" (e.g. {sample})" if sample else ""))
        return "; ".join(parts) if parts else "no rows"

    def require_written(self, lines: int) -> Reconciliation:
        """``self`` when ``lines`` order lines were written, as many as the accepted rows hold."""
        if lines != self.lines_written:
            raise RuntimeError(f"ingest does not reconcile: {self} but {lines} lines were written")
        return self

    def frame(self, spark, run_id: str) -> DataFrame:
        """Table ``ingest_reconciliation``'s rows of this run."""
        return spark.createDataFrame(self.rows(run_id), RECONCILIATION_SCHEMA)

    def rows(self, run_id: str) -> list[tuple]:
        result = [(run_id, self.source, ACCEPTED, None, self.accepted_rows, self.lines_written)]
        result += [
            (run_id, self.source, QUARANTINED, r, n, None) for r, n in self.quarantined.items()
        ]
        result += [(run_id, self.source, EXCLUDED, r, n, None) for r, n in self.excluded.items()]
        return result

    def lines(self) -> list[str]:
        """A small table for the console."""
        rows = [
            ("input rows", self.input_rows, ""),
            ("accepted", self.accepted_rows, f"  ({self.lines_written:,} lines)"),
        ]
        rows += [(f"quarantined {r}", n, "") for r, n in self.quarantined.items()]
        rows += [(f"excluded {r}", n, "") for r, n in self.excluded.items()]
        width = max(len(label) for label, _, _ in rows)
        out = [f"  {label:<{width}} {n:>12,}{note}" for label, n, note in rows]
        return out
