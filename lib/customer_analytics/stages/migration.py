"""
Segment migration between two dates, and stable cluster ids across refits (SPEC section 4).

Method
------
:func:`segment_migration` compares two ``customer_segments`` frames, each scored at one
``as_of``: a full outer join on ``customer_id`` pairs every customer's segment before with their
segment after, one ``groupBy`` counts the customers of each (from, to) pair, and a window over
the from-segment turns the counts into shares of that segment's customers. A customer only in
the later frame comes from the pseudo-segment :data:`NEW_SEGMENT`; one only in the earlier
frame goes to :data:`LAPSED_SEGMENT`. Segments are compared by ``segment_name``: a model scored
at several dates keeps its names, and a refit can keep them by matching its clusters to the
previous model's (:func:`match_clusters`). The result has at most ``(K + 1) ** 2`` rows, so
:func:`format_matrix` prints it from collected rows.

:func:`match_clusters` maps a refit's clusters to the previous model's by their centroids (in
the model's scaled feature space): the optimal assignment
(:func:`scipy.optimize.linear_sum_assignment`) minimising the total Euclidean distance between
matched centroids. A greedy nearest-first choice can take a pair that forces a far worse one
later; the assignment cannot. When K grows, the new clusters left over get fresh ids after the
largest previous id; when it shrinks, the previous ids left over are retired.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
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


def segment_migration(before: DataFrame, after: DataFrame) -> DataFrame:
    """
    Count the customers moving from each segment at one date to each segment at a later date.

    Parameters
    ----------
    before, after : DataFrame
        ``customer_segments`` at two dates; each needs ``customer_id`` (one row per customer),
        ``as_of`` (one non-null value per frame, ``before``'s earlier) and ``segment_name``.
        Other columns (``cluster``, ``distance``) are ignored. A null ``segment_name`` is
        counted under a null segment.

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
        When a required column is missing, a frame has no rows, more than one ``as_of`` or a
        null ``as_of``, or ``before``'s ``as_of`` is not earlier than ``after``'s.

    Examples
    --------
    >>> schema = "customer_id string, as_of date, segment_name string"
    >>> before = spark.createDataFrame([("c1", date(2022, 6, 30), "Big"),
    ...     ("c2", date(2022, 6, 30), "Big")], schema)
    >>> after = spark.createDataFrame([("c1", date(2022, 12, 31), "Small"),
    ...     ("c3", date(2022, 12, 31), "Big")], schema)
    >>> sorted(tuple(r)[2:] for r in segment_migration(before, after).collect())
    [('(new)', 'Big', 1, 1.0), ('Big', '(lapsed)', 1, 0.5), ('Big', 'Small', 1, 0.5)]
    """
    _check_columns(before, "before")
    _check_columns(after, "after")
    from_as_of = _single_as_of(before, "before")
    to_as_of = _single_as_of(after, "after")
    if from_as_of == to_as_of:
        raise ValueError(
            f"before and after have the same as_of ({from_as_of}): a migration needs two dates"
        )
    if from_as_of > to_as_of:
        raise ValueError(
            f"before's as_of ({from_as_of}) is later than after's ({to_as_of}): swap them"
        )
    counts = (
        _moves(before, after)
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


def consecutive_migrations(history: DataFrame) -> DataFrame | None:
    """
    Table ``segment_migration`` from ``segment_history``: :func:`segment_migration` between
    each two consecutive dates of :func:`latest_runs`, oldest first; None with fewer than two
    dates. Collects the distinct dates only.
    """
    latest = latest_runs(history)
    dates = [r[0] for r in latest.select(C.AS_OF).distinct().orderBy(C.AS_OF).collect()]
    views = [latest.filter(F.col(C.AS_OF) == F.lit(day)) for day in dates]
    moves = [segment_migration(a, b) for a, b in zip(views, views[1:], strict=False)]
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


def _single_as_of(frame: DataFrame, name: str):
    """The one ``as_of`` of ``frame`` (a tiny aggregation: at most two distinct values read)."""
    values = [row[0] for row in frame.select(C.AS_OF).distinct().limit(2).collect()]
    if not values:
        raise ValueError(f"{name} has no rows, so no as_of")
    if len(values) > 1:
        shown = ", ".join(sorted(str(v) for v in values))
        raise ValueError(f"{name} must hold one as_of, found more than one ({shown}, ...)")
    if values[0] is None:
        raise ValueError(f"{name} has a null as_of")
    return values[0]


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
    >>> for line in format_matrix(segment_migration(before, after).collect()):
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


@dataclass(frozen=True)
class ClusterMatching:
    """
    How a refit's clusters map to the previous model's (:func:`describe_matching`).

    Attributes
    ----------
    ids : dict of int to int
        New cluster index -> stable id: the matched previous id, or a fresh id after the
        largest previous id.
    distances : dict of int to float
        New cluster index -> Euclidean distance to its matched previous centroid (matched
        clusters only).
    retired : list of int
        Previous ids that no new cluster took (K shrank), ascending.
    lines : list of str
        What changed, one line each: a summary, then each new cluster, then each retired id.
    """

    ids: dict[int, int]
    distances: dict[int, float]
    retired: list[int]
    lines: list[str]


def match_clusters(
    previous_centers: Sequence[Sequence[float]] | Mapping[int, Sequence[float]],
    new_centers: Sequence[Sequence[float]],
) -> dict[int, int]:
    """
    Map each new cluster index to a previous cluster id: the ``ids`` of
    :func:`describe_matching`.

    Examples
    --------
    >>> match_clusters([[0.0, 0.0], [10.0, 0.0]], [[20.0, 0.0], [6.0, 0.0]])
    {0: 1, 1: 0}
    """
    return describe_matching(previous_centers, new_centers).ids


def describe_matching(
    previous_centers: Sequence[Sequence[float]] | Mapping[int, Sequence[float]],
    new_centers: Sequence[Sequence[float]],
) -> ClusterMatching:
    """
    Match a refit's centroids to the previous model's by an optimal assignment.

    The assignment (:func:`scipy.optimize.linear_sum_assignment` on the Euclidean distances)
    pairs ``min(K_previous, K_new)`` clusters so that the total distance between paired
    centroids is the smallest possible. New clusters left unpaired (K grew) get fresh ids
    ``max(previous ids) + 1, + 2, ...`` in order of new index; previous ids left unpaired (K
    shrank) are retired.

    Parameters
    ----------
    previous_centers : sequence of vectors, or mapping of int to vector
        The previous model's centroids (``KMeansModel.clusterCenters()``, in its scaled
        space): a sequence when cluster ``i`` has id ``i``, a mapping id -> centroid when ids
        were carried over from earlier refits. At least one.
    new_centers : sequence of vectors
        The refit's centroids, indexed by its cluster index; at least one, and of the same
        length as the previous ones (same features, same scaling).

    Returns
    -------
    ClusterMatching
        ``ids``, ``distances``, ``retired`` and printable ``lines``.

    Raises
    ------
    ValueError
        When a list is empty, vectors differ in length, or a value is not finite.

    Examples
    --------
    >>> describe_matching([[0.0], [10.0]], [[10.5], [0.0], [40.0]]).lines
    ['K 2 -> 3: 2 matched, 1 new, 0 retired',
     'cluster 0 takes id 1 (moved 0.50)',
     'cluster 1 takes id 0 (moved 0.00)',
     'new cluster 2 has no match: new id 2']
    """
    previous_ids, previous = _previous_matrix(previous_centers)
    new = _matrix(new_centers, "new_centers")
    if previous.shape[1] != new.shape[1]:
        raise ValueError(
            f"new_centers have {new.shape[1]} values each, previous_centers "
            f"{previous.shape[1]}: the models must share features"
        )
    from scipy.optimize import linear_sum_assignment  # scipy loads only when a refit matches

    cost = np.linalg.norm(new[:, np.newaxis, :] - previous[np.newaxis, :, :], axis=2)
    new_index, previous_index = linear_sum_assignment(cost)
    ids = {int(n): previous_ids[p] for n, p in zip(new_index, previous_index, strict=True)}
    distances = {int(n): float(cost[n, p]) for n, p in zip(new_index, previous_index, strict=True)}
    fresh = [n for n in range(len(new)) if n not in ids]
    for offset, n in enumerate(fresh, start=1):
        ids[n] = max(previous_ids) + offset
    ids = dict(sorted(ids.items()))
    retired = sorted(set(previous_ids) - set(ids.values()))
    lines = [
        f"K {len(previous_ids)} -> {len(new)}: {len(distances)} matched, {len(fresh)} new, "
        f"{len(retired)} retired"
    ]
    for n, stable in ids.items():
        if n not in distances:
            lines.append(f"new cluster {n} has no match: new id {stable}")
        else:
            verb = "keeps" if n == stable else "takes"
            lines.append(f"cluster {n} {verb} id {stable} (moved {distances[n]:.2f})")
    lines += [f"previous cluster {p} has no match: id {p} retired" for p in retired]
    return ClusterMatching(ids=ids, distances=distances, retired=retired, lines=lines)


def _previous_matrix(
    centers: Sequence[Sequence[float]] | Mapping[int, Sequence[float]],
) -> tuple[list[int], np.ndarray]:
    if isinstance(centers, Mapping):
        ids = sorted(int(i) for i in centers)
        vectors = [centers[i] for i in sorted(centers, key=int)]
    else:
        ids = list(range(len(centers)))
        vectors = list(centers)
    return ids, _matrix(vectors, "previous_centers")


def _matrix(centers: Sequence[Sequence[float]], name: str) -> np.ndarray:
    """``centers`` as a (K, d) float array; K >= 1, d >= 1, every vector of length d."""
    vectors = [np.asarray(v, dtype=float).ravel() for v in centers]
    if not vectors:
        raise ValueError(f"{name} is empty: at least one centroid is needed")
    lengths = sorted({len(v) for v in vectors})
    if len(lengths) > 1 or lengths[0] == 0:
        raise ValueError(f"{name} must be vectors of one non-zero length, got lengths {lengths}")
    matrix = np.vstack(vectors)
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} holds a value that is not finite")
    return matrix
