"""
Stable segment ids across refits: a refit's clusters matched to the previous model's.

:func:`describe_matching` maps a refit's clusters to the previous model's by their centroids
(in the model's scaled feature space): the optimal assignment
(:func:`scipy.optimize.linear_sum_assignment`) minimising the total Euclidean distance between
matched centroids. A greedy nearest-first choice can take a pair that forces a far worse one
later; the assignment cannot. When K grows, the new clusters left over get fresh ids after the
largest previous id; when it shrinks, the previous ids left over are retired.
:func:`match_previous` puts both models' centres in the new model's space first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from customer_analytics.config.schema import SegmentationConfig
from customer_analytics.core import columns as C
from customer_analytics.io.model_store import SavedModel
from customer_analytics.stages.segmentation.scoring import assign_clusters


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


def match_previous(
    previous: SavedModel,
    model: PipelineModel,
    customer_features: DataFrame,
    seg_cfg: SegmentationConfig,
) -> tuple[dict[int, int], dict[int, tuple[str, str]], list[str]]:
    """
    Segment ids for a new model's clusters that carry on the ``previous`` model's.

    Both models' centres are compared in the new model's space: the previous model's centre
    of a segment is the mean of the new model's scaled vectors of the customers the previous
    model puts in it. The new clusters are matched to them by an optimal assignment of the
    Euclidean distances (:func:`describe_matching`).

    Returns
    -------
    tuple
        (cluster index -> segment id, segment id -> (name, action) for the matched ids, lines
        saying what changed). When the previous model used other features nothing is
        matched and the ids are the indices.
    """
    k = len(model.stages[-1].clusterCenters())
    if list(previous.metadata.get("features", [])) != list(seg_cfg.features):
        note = f"previous model {previous.run_id} used other features: segment ids start afresh"
        return {i: i for i in range(k)}, {}, [note]
    keyed = customer_features.select(C.CUSTOMER_ID, *seg_cfg.features)
    before = assign_clusters(previous.model, keyed, previous.cluster_ids).select(
        C.CUSTOMER_ID, F.col(C.CLUSTER).alias(C.PREVIOUS_CLUSTER)
    )
    now = model.transform(keyed).select(C.CUSTOMER_ID, C.SCALED)
    rows = (
        now.join(before, C.CUSTOMER_ID)
        .groupBy(C.PREVIOUS_CLUSTER)
        .agg(Summarizer.mean(F.col(C.SCALED)).alias(C.MEAN))
        .collect()  # one row per previous segment
    )
    centres = {int(r[C.PREVIOUS_CLUSTER]): list(r[C.MEAN]) for r in rows}
    new_centres = [list(c) for c in model.stages[-1].clusterCenters()]
    matching = describe_matching(centres, new_centres)
    names = {i: previous.names[i] for i in matching.ids.values() if i in previous.names}
    return (
        matching.ids,
        names,
        [f"matched to model {previous.run_id}: {matching.lines[0]}", *matching.lines[1:]],
    )
