"""
What describes a segment: its profile per feature (``segment_profiles``: size, share, mean,
median and index against all customers) and each feature's importance to the clustering
(``feature_importance``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from customer_analytics.config.schema import SegmentRule
from customer_analytics.core import columns as C


def is_numeric(dtype: str) -> bool:
    numeric = ("int", "bigint", "smallint", "tinyint", "double", "float")
    return dtype in numeric or dtype.startswith("decimal")


def _rule_features(rules: Sequence[SegmentRule]) -> list[str]:
    """The features the rules test, in rule order, each once."""
    return list(dict.fromkeys(cond.feature for rule in rules for cond in rule.when))


def profile_features(
    features: Sequence[str], rules: Sequence[SegmentRule], dtypes: Sequence[tuple[str, str]]
) -> list[str]:
    """
    The columns profiled in ``segment_profiles``: the clustered ``features``, then the columns
    the naming ``rules`` test, then ``total_spend`` (for generic names), then ``p_alive`` and
    ``ltv_predicted`` (when ``customer_clv`` was joined on), each once; of all but the first
    only the numeric columns of the input (``dtypes``, as ``DataFrame.dtypes``).

    So a rule may test a column that is not clustered on (e.g. ``total_spend`` when visits and
    basket spend are the features): it is profiled and named by, not clustered on. A rule on a
    column the input lacks never holds (see :func:`name_segments`).

    Examples
    --------
    >>> rule = SegmentRule(name="Big", action="a", when=[{"feature": "tenure_weeks", "below": 1}])
    >>> profile_features(["total_visits"], [rule],
    ...     [("total_visits", "bigint"), ("tenure_weeks", "double"), ("total_spend", "double")])
    ['total_visits', 'tenure_weeks', 'total_spend']
    """
    types = dict(dtypes)
    candidates = [*_rule_features(rules), C.TOTAL_SPEND, C.P_ALIVE, C.LTV_PREDICTED]
    extra = [f for f in candidates if f in types and is_numeric(types[f])]
    return list(dict.fromkeys([*features, *extra]))


def cluster_profiles(scored: DataFrame, features: Sequence[str]) -> DataFrame:
    """
    Per cluster and raw feature: size, share, mean, median, overall mean and index.

    Parameters
    ----------
    scored : DataFrame
        Needs ``cluster`` and the ``features``.

    Returns
    -------
    DataFrame
        ``cluster``, ``size`` (long), ``share`` (double), ``feature``, ``mean``, ``median``,
        ``overall_mean``, ``index`` (null when the overall mean is 0 or null).
    """
    long = scored.select(C.CLUSTER, *[F.col(f).cast("double").alias(f) for f in features]).unpivot(
        C.CLUSTER, list(features), C.FEATURE, C.VALUE
    )
    per_cluster = long.groupBy(C.CLUSTER, C.FEATURE).agg(
        F.avg(C.VALUE).alias(C.MEAN),
        F.percentile_approx(C.VALUE, 0.5, 10_000).alias(C.MEDIAN),
    )
    overall = long.groupBy(C.FEATURE).agg(F.avg(C.VALUE).alias(C.OVERALL_MEAN))
    sizes = scored.groupBy(C.CLUSTER).agg(F.count(F.lit(1)).alias(C.SIZE))
    total = scored.agg(F.count(F.lit(1)).alias(C.TOTAL_COUNT))
    sizes = (
        sizes.crossJoin(total)
        .withColumn(C.SHARE, F.col(C.SIZE) / F.col(C.TOTAL_COUNT))
        .drop(C.TOTAL_COUNT)
    )
    return (
        per_cluster.join(overall, C.FEATURE)
        .join(sizes, C.CLUSTER)
        .withColumn(
            C.INDEX,
            F.when(F.col(C.OVERALL_MEAN) != 0, F.col(C.MEAN) / F.col(C.OVERALL_MEAN)),
        )
        .select(C.CLUSTER, C.SIZE, C.SHARE, C.FEATURE, C.MEAN, C.MEDIAN, C.OVERALL_MEAN, C.INDEX)
    )


def feature_importance(scored: DataFrame, features: Sequence[str]) -> DataFrame:
    """
    Between-cluster variance / total variance of each scaled feature.

    Parameters
    ----------
    scored : DataFrame
        Needs ``cluster`` and ``_scaled`` (the vector the model clustered).

    Returns
    -------
    DataFrame
        ``feature``, ``importance`` (double in 0..1; null for a constant feature), ``rank``
        (int, 1 = most important; ties by feature order).
    """
    names = F.array(*[F.lit(f) for f in features])
    values = scored.select(
        C.CLUSTER, F.posexplode(vector_to_array(F.col(C.SCALED))).alias(C.POSITION, C.VALUE)
    )
    total = values.groupBy(C.POSITION).agg(
        F.var_pop(C.VALUE).alias(C.TOTAL_VARIANCE),
        F.avg(C.VALUE).alias(C.OVERALL_MEAN),
        F.count(F.lit(1)).alias(C.TOTAL_COUNT),
    )
    per_cluster = values.groupBy(C.POSITION, C.CLUSTER).agg(
        F.count(F.lit(1)).alias(C.CLUSTER_SIZE), F.avg(C.VALUE).alias(C.CLUSTER_MEAN)
    )
    between = (
        per_cluster.join(total, C.POSITION)
        .groupBy(C.POSITION, C.TOTAL_VARIANCE, C.TOTAL_COUNT)
        .agg(
            F.sum(
                F.col(C.CLUSTER_SIZE) * F.pow(F.col(C.CLUSTER_MEAN) - F.col(C.OVERALL_MEAN), 2)
            ).alias(C.VALUE)
        )
    )
    importance = F.when(
        F.col(C.TOTAL_VARIANCE) > 1e-12,
        F.least(F.lit(1.0), F.col(C.VALUE) / F.col(C.TOTAL_COUNT) / F.col(C.TOTAL_VARIANCE)),
    )
    ranked = between.select(
        F.element_at(names, F.col(C.POSITION) + 1).alias(C.FEATURE),
        importance.alias(C.IMPORTANCE),
        C.POSITION,
    )
    # one row per feature: sorted in one array (importance descending, nulls last, then the
    # feature order), whose positions are the ranks
    key = F.struct(
        F.col(C.IMPORTANCE).isNull().alias("no_importance"),
        (-F.col(C.IMPORTANCE)).alias("descending"),
        F.col(C.POSITION),
        F.col(C.FEATURE),
        F.col(C.IMPORTANCE),
    )
    in_order = ranked.agg(F.sort_array(F.collect_list(key)).alias(C.VALUE))
    return in_order.select(F.posexplode(C.VALUE).alias(C.RANK, "row")).select(
        F.col(f"row.{C.FEATURE}").alias(C.FEATURE),
        F.col(f"row.{C.IMPORTANCE}").alias(C.IMPORTANCE),
        (F.col(C.RANK) + 1).cast("int").alias(C.RANK),
    )


def segment_profiles(profiles: DataFrame, names: DataFrame, as_of: date) -> DataFrame:
    """
    Table ``segment_profiles``: ``as_of``, then :func:`cluster_profiles` plus
    ``segment_name`` and ``action``.
    """
    return profiles.join(F.broadcast(names), C.CLUSTER).select(
        F.lit(as_of).alias(C.AS_OF),
        C.CLUSTER,
        C.SEGMENT_NAME,
        C.ACTION,
        C.SIZE,
        C.SHARE,
        C.FEATURE,
        C.MEAN,
        C.MEDIAN,
        C.OVERALL_MEAN,
        C.INDEX,
    )
