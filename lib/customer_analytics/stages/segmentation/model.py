"""
The segmentation stage: :func:`fit` (sweep K, choose, score, profile, name), :func:`refit`
(an evaluation's cheaper fit) and :func:`score` (a saved model applied to another date), each
returning a :class:`SegmentationResult` of lazy tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from customer_analytics.config.schema import SegmentationConfig, SegmentRule
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.io.model_store import SavedModel
from customer_analytics.stages.period import single_as_of
from customer_analytics.stages.segmentation.k_selection import candidate_ks, choose_k, sweep_k
from customer_analytics.stages.segmentation.kmeans import fit_pipeline
from customer_analytics.stages.segmentation.matching import match_previous
from customer_analytics.stages.segmentation.naming import GENERIC_ACTION, name_segments, names_frame
from customer_analytics.stages.segmentation.preprocessing import fitting_sample
from customer_analytics.stages.segmentation.profiles import (
    cluster_profiles,
    feature_importance,
    is_numeric,
    profile_features,
    segment_profiles,
)
from customer_analytics.stages.segmentation.scoring import assign_clusters, customer_segments


def customers_needed(seg_cfg: SegmentationConfig) -> int:
    """The fewest customers :func:`fit` segments: ``k``, or one more than ``k_min`` (a
    silhouette needs more customers than clusters)."""
    return seg_cfg.k if seg_cfg.k is not None else seg_cfg.k_min + 1


def as_is(df: DataFrame) -> DataFrame:
    """``df`` itself: the ``keep`` that materialises nothing."""
    return df


@dataclass
class SegmentationResult:
    """
    What one fit or score produced; the tables are lazy DataFrames except ``names``.

    ``cluster_ids`` maps the KMeans cluster index to the published segment id (``cluster``);
    ``changes`` says, after a refit, how the clusters were matched to the previous model's.
    """

    model: PipelineModel
    k: int
    as_of: date
    names: dict[int, tuple[str, str]]
    cluster_ids: dict[int, int]
    selection: DataFrame | None
    segments: DataFrame
    profiles: DataFrame
    importance: DataFrame
    scored: DataFrame
    changes: list[str] = field(default_factory=list)

    def saved(
        self, run_id: str, seg_cfg: SegmentationConfig, trained_at: datetime | None = None
    ) -> SavedModel:
        """The model with the metadata :class:`~customer_analytics.io.model_store.ModelStore`
        keeps."""
        metadata = {
            "run_id": run_id,
            "k": self.k,
            "features": list(seg_cfg.features),
            "feature_weights": _effective_weights(seg_cfg.feature_weights),
            "names": {str(c): [n, a] for c, (n, a) in sorted(self.names.items())},
            "cluster_ids": {str(i): c for i, c in sorted(self.cluster_ids.items())},
            "as_of": self.as_of.isoformat(),
            "trained_at": (trained_at or datetime.now(UTC)).isoformat(),
        }
        return SavedModel(self.model, metadata)


def fit(
    customer_features: DataFrame,
    seg_cfg: SegmentationConfig,
    previous: SavedModel | None = None,
    *,
    named: bool = True,
    keep: Callable[[DataFrame], DataFrame] = as_is,
) -> SegmentationResult:
    """
    Sweep K, choose K, score all customers with the sweep's model of that K, profile and name
    the clusters.

    With a ``previous`` model the new clusters are matched to its clusters by centroid
    distance (:func:`match_previous`): a matched cluster keeps its segment id and name.
    ``keep`` materialises what is read more than once (the fitting sample, ``scored``, the
    profiles the names are read from): the caller's :meth:`Persisted.keep
    <customer_analytics.runtime.materialize.Persisted.keep>`, released when the tables are
    written; by default nothing is kept. With ``named=False`` the naming rules are not
    applied, so nothing is profiled until ``profiles`` is read: every segment is
    "Segment <cluster> (unnamed)".

    Raises
    ------
    InputError
        On degenerate input (see :func:`check_input` and :func:`candidate_ks`).
    """
    features = seg_cfg.features
    needed = customers_needed(seg_cfg)
    rows = check_input(customer_features, features, min_rows=needed)
    as_of = single_as_of(customer_features, "customer_features")
    candidate_ks(seg_cfg, rows)
    sweep = sweep_k(customer_features, seg_cfg, rows=rows, keep=keep)
    k = choose_k(sweep.rows, seg_cfg.k, tolerance=seg_cfg.k_tolerance)
    return _named(
        sweep.models[k],
        k,
        as_of,
        customer_features,
        seg_cfg,
        sweep.selection,
        previous,
        named=named,
        keep=keep,
    )


def _named(model, k, as_of, customer_features, seg_cfg, selection, previous, *, named, keep):
    """
    :func:`_describe` a new model, its segment ids carried on from ``previous`` if given, its
    segments named by the rules if ``named``.
    """
    ids, names, changes = {i: i for i in range(k)}, {}, []
    if previous is not None:
        ids, names, changes = match_previous(previous, model, customer_features, seg_cfg)
    rules = seg_cfg.segment_names if named else None
    profiled = profile_features(seg_cfg.features, rules or [], customer_features.dtypes)
    result = _describe(
        model,
        k,
        as_of,
        customer_features,
        seg_cfg.features,
        profiled,
        rules,
        selection,
        cluster_ids=ids,
        names=names,
        keep=keep,
    )
    result.changes = changes
    return result


def refit(
    customer_features: DataFrame,
    seg_cfg: SegmentationConfig,
    *,
    named: bool = True,
    keep: Callable[[DataFrame], DataFrame] = as_is,
) -> SegmentationResult:
    """
    :func:`fit` for an evaluation's training period, at a fraction of the cost: with
    ``segmentation.k`` fixed the model is fitted on the sweep's sample of customers
    (:func:`fitting_sample`) instead of everyone, and K is not measured (``selection`` is
    None). Every customer is still scored. Without a fixed K it is :func:`fit`. ``named`` and
    ``keep`` as in :func:`fit`.
    """
    if seg_cfg.k is None:
        return fit(customer_features, seg_cfg, named=named, keep=keep)
    features = seg_cfg.features
    rows = check_input(customer_features, features, min_rows=seg_cfg.k)
    candidate_ks(seg_cfg, rows)
    as_of = single_as_of(customer_features, "customer_features")
    sample = fitting_sample(customer_features, seg_cfg, rows=rows, at_least=2 * seg_cfg.k)
    model = fit_pipeline(sample, seg_cfg, seg_cfg.k, keep=keep)
    return _named(
        model, seg_cfg.k, as_of, customer_features, seg_cfg, None, None, named=named, keep=keep
    )


def score(
    saved: SavedModel,
    customer_features: DataFrame,
    seg_cfg: SegmentationConfig,
    *,
    keep: Callable[[DataFrame], DataFrame] = as_is,
) -> SegmentationResult:
    """
    Apply a saved model to the customer features of any date, without refitting.

    Segment ids and names come from the model's metadata, so a segment keeps both. ``keep``
    as in :func:`fit`.

    Raises
    ------
    InputError
        When the model's feature list differs from ``segmentation.features``, or its weights
        from ``segmentation.feature_weights`` (a weight of 1.0 equals no weight).
    """
    metadata = saved.metadata
    features = list(metadata.get("features", []))
    if features != list(seg_cfg.features):
        raise InputError(
            f"saved segmentation model {saved.run_id} uses features {features}, but "
            f"segmentation.features is {list(seg_cfg.features)}: refit with --mode fit"
        )
    saved_weights = _effective_weights(metadata.get("feature_weights"))
    if saved_weights != _effective_weights(seg_cfg.feature_weights):
        raise InputError(
            f"saved segmentation model {saved.run_id} uses feature_weights "
            f"{saved_weights}, but segmentation.feature_weights is "
            f"{_effective_weights(seg_cfg.feature_weights)}: refit with --mode fit"
        )
    check_input(customer_features, features, min_rows=1)
    as_of = single_as_of(customer_features, "customer_features")
    profiled = profile_features(features, seg_cfg.segment_names, customer_features.dtypes)
    return _describe(
        saved.model,
        saved.k,
        as_of,
        customer_features,
        features,
        profiled,
        None,
        None,
        cluster_ids=saved.cluster_ids,
        names=saved.names,
        keep=keep,
    )


def _describe(
    model: PipelineModel,
    k: int,
    as_of: date,
    customer_features: DataFrame,
    features: Sequence[str],
    profiled: Sequence[str],
    rules: Sequence[SegmentRule] | None,
    selection: DataFrame | None,
    *,
    cluster_ids: dict[int, int],
    names: dict[int, tuple[str, str]],
    keep: Callable[[DataFrame], DataFrame],
) -> SegmentationResult:
    """
    Score, profile and name. Segments without a name in ``names`` are named by ``rules``
    (those whose names are not taken), or "unnamed" without rules.
    """
    scored = keep(assign_clusters(model, customer_features, cluster_ids))
    profiles = cluster_profiles(scored, profiled)
    names = dict(names)
    present = sorted(cluster_ids.values())
    unnamed = [c for c in present if c not in names]
    if unnamed and rules is not None:
        profiles = keep(profiles)
        taken = {name for name, _ in names.values()}
        rows = profiles.filter(F.col(C.CLUSTER).isin(unnamed)).collect()  # K x features rows
        names.update(name_segments(rows, [r for r in rules if r.name not in taken]))
    for cluster in unnamed:
        names.setdefault(cluster, (f"Segment {cluster} (unnamed)", GENERIC_ACTION))
    named = names_frame(customer_features.sparkSession, {c: names[c] for c in present})
    return SegmentationResult(
        model=model,
        k=k,
        as_of=as_of,
        names={c: names[c] for c in present},
        cluster_ids=dict(cluster_ids),
        selection=selection,
        segments=customer_segments(scored, named),
        profiles=segment_profiles(profiles, named, as_of),
        importance=feature_importance(scored, features),
        scored=scored,
    )


def check_input(customer_features: DataFrame, features: Sequence[str], *, min_rows: int) -> int:
    """
    Check that segmentation can run on ``customer_features``; return its row count.

    One aggregation: row count and, per feature, the count of non-null values.

    Raises
    ------
    InputError
        One line: a configured feature is missing or not numeric, a feature is null for every
        customer, or there are fewer than ``min_rows`` customers.
    """
    types = dict(customer_features.dtypes)
    missing = [f for f in features if f not in types]
    if missing:
        raise InputError(
            f"segmentation.features: column(s) {', '.join(missing)} not in customer_features"
        )
    bad = [f for f in features if not is_numeric(types[f])]
    if bad:
        raise InputError(f"segmentation.features: column(s) {', '.join(bad)} are not numeric")
    row = customer_features.agg(
        F.count(F.lit(1)).alias(C.TOTAL_COUNT),
        *[F.count(F.col(f)).alias(f) for f in features],
    ).first()
    rows = int(row[C.TOTAL_COUNT])
    if rows < min_rows:
        raise InputError(
            f"customer_features has {rows} customer(s); segmentation needs at least {min_rows}"
        )
    all_null = [f for f in features if row[f] == 0]
    if all_null:
        raise InputError(f"segmentation.features: {', '.join(all_null)} is null for every customer")
    return rows


def _effective_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """The weights that change anything (not 1.0), as plain floats."""
    return {f: float(w) for f, w in (weights or {}).items() if float(w) != 1.0}
