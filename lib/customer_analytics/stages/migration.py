"""
Segment migration between two dates (SPEC section 4).

Method
------
:func:`segment_migration` compares two ``customer_segments`` frames, each scored at one
``as_of``: a full outer join on ``customer_id`` pairs every customer's segment before with their
segment after, one ``groupBy`` counts the customers of each (from, to) pair, and a window over
the from-segment turns the counts into shares of that segment's customers. A customer only in
the later frame comes from the pseudo-segment :data:`NEW_SEGMENT`; one only in the earlier
frame goes to :data:`LAPSED_SEGMENT`. Segments are compared by ``segment_name``: a model scored
at several dates keeps its names, and a refit can keep them by matching its clusters to the
previous model's (:mod:`customer_analytics.stages.segmentation.matching`). The result has at
most ``(K + 1) ** 2`` rows, so :func:`format_matrix` prints it from collected rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from customer_analytics.core import columns as C

#: The from-segment of customers present only in the later frame (joiners).
NEW_SEGMENT = "(new)"
#: The to-segment of customers present only in the earlier frame (lapsed customers).
LAPSED_SEGMENT = "(lapsed)"
#: How :func:`format_matrix` shows a null ``segment_name``.
NULL_SEGMENT = "(null)"
#: Columns of :func:`segment_migration`, in order.
MIGRATION_COLUMNS = (
    C.FROM_AS_OF,
    C.TO_AS_OF,
    C.FROM_SEGMENT,
    C.TO_SEGMENT,
    C.CUSTOMERS,
    C.SHARE,
)
REQUIRED_COLUMNS = (C.CUSTOMER_ID, C.AS_OF, C.SEGMENT_NAME)


def segment_migration(
    before: DataFrame, after: DataFrame, *, from_as_of: date, to_as_of: date
) -> DataFrame:
    """
    Count the customers moving from each segment at one date to each segment at a later date.

    Parameters
    ----------
    before, after : DataFrame
        ``customer_segments`` rows; each needs ``customer_id``, ``as_of`` and
        ``segment_name``. Of ``before`` the rows as of ``from_as_of`` are read (one per
        customer), of ``after`` those as of ``to_as_of``; other columns (``cluster``,
        ``distance``) are ignored. A null ``segment_name`` is counted under a null segment.
    from_as_of, to_as_of : date
        The two dates, ``from_as_of`` the earlier.

    Returns
    -------
    DataFrame
        One row per (from, to) pair that has customers: ``from_as_of`` and ``to_as_of`` (the
        frames' ``as_of``, type of ``as_of``), ``from_segment`` (string; :data:`NEW_SEGMENT` for
        customers only in ``after``), ``to_segment`` (string; :data:`LAPSED_SEGMENT` for
        customers only in ``before``), ``customers`` (long, > 0) and ``share`` (double,
        customers / customers of the from-segment: the shares of a from-segment sum to 1).

    Raises
    ------
    ValueError
        When a required column is missing, or ``from_as_of`` is not earlier than
        ``to_as_of``.

    Examples
    --------
    >>> schema = "customer_id string, as_of date, segment_name string"
    >>> before = spark.createDataFrame([("c1", date(2022, 6, 30), "Big"),
    ...     ("c2", date(2022, 6, 30), "Big")], schema)
    >>> after = spark.createDataFrame([("c1", date(2022, 12, 31), "Small"),
    ...     ("c3", date(2022, 12, 31), "Big")], schema)
    >>> moves = segment_migration(before, after, from_as_of=date(2022, 6, 30),
    ...     to_as_of=date(2022, 12, 31))
    >>> sorted(tuple(r)[2:] for r in moves.collect())
    [('(new)', 'Big', 1, 1.0), ('Big', '(lapsed)', 1, 0.5), ('Big', 'Small', 1, 0.5)]
    """
    _check_columns(before, "before")
    _check_columns(after, "after")
    if from_as_of == to_as_of:
        raise ValueError(
            f"from_as_of and to_as_of are the same ({from_as_of}): a migration needs two dates"
        )
    if from_as_of > to_as_of:
        raise ValueError(f"from_as_of {from_as_of} is later than to_as_of {to_as_of}: swap them")
    counts = (
        _moves(_as_of(before, from_as_of), _as_of(after, to_as_of))
        .groupBy(C.FROM_SEGMENT, C.TO_SEGMENT)
        .agg(F.count(F.lit(1)).alias(C.CUSTOMERS))
    )
    # the counts have at most (K + 1) ** 2 rows; a sum over the whole partition needs no order
    from_total = F.sum(C.CUSTOMERS).over(Window.partitionBy(C.FROM_SEGMENT))
    return counts.select(
        F.lit(from_as_of).alias(C.FROM_AS_OF),
        F.lit(to_as_of).alias(C.TO_AS_OF),
        C.FROM_SEGMENT,
        C.TO_SEGMENT,
        C.CUSTOMERS,
        (F.col(C.CUSTOMERS) / from_total).cast("double").alias(C.SHARE),
    )


def latest_runs(history: DataFrame) -> DataFrame:
    """
    The rows of ``segment_history`` (needs ``as_of`` and ``run_id``) that each date's latest
    run wrote: a date segmented again replaces its earlier segments.
    """
    latest = history.groupBy(C.AS_OF).agg(F.max(C.RUN_ID).alias(C.RUN_ID))
    kept = history.join(F.broadcast(latest), [C.AS_OF, C.RUN_ID], "left_semi")
    return kept.select(*history.columns)


def segment_dates(history: DataFrame) -> DataFrame:
    """The dates of ``segment_history`` (``as_of``, one row each), oldest first."""
    return history.select(C.AS_OF).distinct().orderBy(C.AS_OF)


def consecutive_migrations(history: DataFrame, dates: Sequence[date]) -> DataFrame | None:
    """
    Table ``segment_migration`` from ``segment_history``: :func:`segment_migration` of
    :func:`latest_runs` between each two consecutive ``dates`` (those of
    :func:`segment_dates`), oldest first; None with fewer than two dates.
    """
    latest = latest_runs(history)
    dates = sorted(dates)
    moves = [
        segment_migration(latest, latest, from_as_of=a, to_as_of=b)
        for a, b in zip(dates, dates[1:], strict=False)
    ]
    if not moves:
        return None
    table = moves[0]
    for more in moves[1:]:
        table = table.unionByName(more)
    return table


def _check_columns(frame: DataFrame, name: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)}")


def _as_of(frame: DataFrame, day: date) -> DataFrame:
    return frame.filter(F.col(C.AS_OF) == F.lit(day))


def _moves(before: DataFrame, after: DataFrame) -> DataFrame:
    """``from_segment``, ``to_segment`` per customer of either frame (full outer join)."""
    left = before.select(
        C.CUSTOMER_ID, F.col(C.SEGMENT_NAME).alias(C.FROM_SEGMENT), F.lit(True).alias(C.IN_FROM)
    )
    right = after.select(
        C.CUSTOMER_ID, F.col(C.SEGMENT_NAME).alias(C.TO_SEGMENT), F.lit(True).alias(C.IN_TO)
    )
    # the presence flags, not the names, tell a missing customer from a null segment_name
    return left.join(right, C.CUSTOMER_ID, "full").select(
        F.when(F.col(C.IN_FROM).isNull(), F.lit(NEW_SEGMENT))
        .otherwise(F.col(C.FROM_SEGMENT))
        .alias(C.FROM_SEGMENT),
        F.when(F.col(C.IN_TO).isNull(), F.lit(LAPSED_SEGMENT))
        .otherwise(F.col(C.TO_SEGMENT))
        .alias(C.TO_SEGMENT),
    )


def format_matrix(rows: Iterable) -> list[str]:
    """
    The collected rows of :func:`segment_migration` as printable, aligned lines.

    A header line names the two dates; then the matrix: from-segments as rows, to-segments as
    columns, both the segments of either date sorted by name, with :data:`NEW_SEGMENT` the
    last row and :data:`LAPSED_SEGMENT` the last column. A cell is ``customers (share)``, the
    share of the row's customers with one decimal, or ``-`` when no customer moved that way.

    Parameters
    ----------
    rows : iterable of Row or mapping
        All rows of one migration (``from_as_of``, ``to_as_of``, ``from_segment``,
        ``to_segment``, ``customers``, ``share``).

    Returns
    -------
    list of str
        The header, the column header, then one line per from-segment; no trailing spaces.

    Raises
    ------
    ValueError
        When ``rows`` is empty or mixes dates.

    Examples
    --------
    >>> for line in format_matrix(moves.collect()):
    ...     print(line)
    Segment migration 2022-06-30 → 2022-12-31: customers (share of the from-segment)
    from \\ to         Big      Small   (lapsed)
    Big                 -  1 (50.0%)  1 (50.0%)
    Small               -          -          -
    (new)      1 (100.0%)          -          -
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: no migration to format")
    dates = {(row[C.FROM_AS_OF], row[C.TO_AS_OF]) for row in rows}
    if len(dates) > 1:
        raise ValueError(f"rows mix dates: {sorted(dates, key=str)}")
    (from_as_of, to_as_of) = dates.pop()
    cells = {
        (_label(row[C.FROM_SEGMENT]), _label(row[C.TO_SEGMENT])): (
            f"{row[C.CUSTOMERS]} ({row[C.SHARE]:.1%})"
        )
        for row in rows
    }
    pseudo = {NEW_SEGMENT, LAPSED_SEGMENT}
    segments = sorted({name for pair in cells for name in pair} - pseudo)
    from_labels = [*segments, NEW_SEGMENT]
    to_labels = [*segments, LAPSED_SEGMENT]
    table = [["from \\ to", *to_labels]] + [
        [source, *(cells.get((source, target), "-") for target in to_labels)]
        for source in from_labels
    ]
    header = f"Segment migration {from_as_of} → {to_as_of}: customers (share of the from-segment)"
    return [header, *_aligned(table)]


def _aligned(table: list[list[str]]) -> list[str]:
    """Rows of cells as lines: the first column left-aligned, the others right-aligned."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return [
        "  ".join(
            [
                line[0].ljust(widths[0]),
                *(cell.rjust(w) for cell, w in zip(line[1:], widths[1:], strict=True)),
            ]
        ).rstrip()
        for line in table
    ]


def _label(name: str | None) -> str:
    return NULL_SEGMENT if name is None else name
