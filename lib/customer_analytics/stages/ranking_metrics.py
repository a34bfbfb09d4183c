"""
Ranking metrics of recommendation lists against what customers then bought.

For each scored customer, precision@K is hits / K, recall@K is hits / relevant products and
AP@K is the sum of precision@i at each hit ``i <= K`` divided by ``min(K, relevant)``; each is
averaged over the customers. Coverage is the share of the catalogue that appears in anybody's
first K.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from customer_analytics.core import columns as C

METRICS_SCHEMA = T.StructType(
    [
        T.StructField(C.K, T.IntegerType(), False),
        T.StructField(C.USERS, T.LongType(), False),
        T.StructField(C.PRECISION_AT_K, T.DoubleType(), True),
        T.StructField(C.RECALL_AT_K, T.DoubleType(), True),
        T.StructField(C.MAP_AT_K, T.DoubleType(), True),
        T.StructField(C.COVERAGE, T.DoubleType(), True),
    ]
)


def ranking_metrics(
    recommended: DataFrame,
    relevant: DataFrame,
    *,
    ks: Sequence[int],
    catalogue_size: int,
    keys: Sequence[str] = (),
) -> DataFrame:
    """
    Precision@K, recall@K, MAP@K and coverage of ranked lists against what was bought.

    Parameters
    ----------
    recommended : DataFrame
        ``customer_id``, ``rank`` (1 = first), ``product_id``, and those of the ``keys`` the
        lists depend on; unique ranks per customer and key. A key it lacks (e.g. ``target``)
        scores the same list against every value of that key in ``relevant``.
    relevant : DataFrame
        ``customer_id``, ``product_id`` and the ``keys``: the hits. Its customers are the
        ones scored; a customer with no list scores 0.
    ks : sequence of int
        List lengths, each >= 1.
    catalogue_size : int
        Products that could have been recommended (the denominator of coverage), >= 1.
    keys : sequence of str
        Columns to score apart (e.g. ``recommender``, ``target``), so that many lists are
        scored in one pass.

    Returns
    -------
    DataFrame
        The ``keys`` and :data:`METRICS_SCHEMA`, one row per key combination in ``relevant``
        and K: ``users`` scored, the three means over them, and ``coverage``: distinct
        products in the scored customers' first K / catalogue. Without ``keys`` there is a row
        per K even when nobody is scored (``users`` 0, null means).

    Every list entry is read once for all K: a customer's hits so far at a rank do not
    depend on K, and each K's sums are conditional sums over the first K ranks. The lists meet
    the hits in one join by customer, which also partitions them for the window and the sums.
    """
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must list values >= 1, got {list(ks)}")
    if catalogue_size < 1:
        raise ValueError(f"catalogue_size must be >= 1, got {catalogue_size}")
    keys = list(keys)
    ks = sorted(set(int(k) for k in ks))
    entries = _list_entries(recommended, relevant, keys, max(ks))
    means = _user_means(entries, keys, ks)
    coverage = _coverage(entries, keys, ks, catalogue_size)
    # Without keys both are global aggregates: one row each, also when nobody is scored.
    rows = means.join(coverage, keys, "left") if keys else means.crossJoin(coverage)
    return rows.select(*keys, C.USERS, _per_k(ks).alias("_per_k")).select(
        *keys,
        F.col(f"_per_k.{C.K}").cast("int").alias(C.K),
        F.coalesce(C.USERS, F.lit(0)).cast("long").alias(C.USERS),
        f"_per_k.{C.PRECISION_AT_K}",
        f"_per_k.{C.RECALL_AT_K}",
        f"_per_k.{C.MAP_AT_K}",
        F.coalesce(f"_per_k.{C.COVERAGE}", F.lit(0.0)).alias(C.COVERAGE),
    )


def _list_entries(
    recommended: DataFrame, relevant: DataFrame, keys: list[str], longest: int
) -> DataFrame:
    """
    One row per scored customer (and key) and list entry up to rank ``longest`` (one with null
    ``rank`` and ``product_id`` for a customer without a list): ``relevant_count``, ``hit``
    (0 or 1) and ``hits_so_far`` (hits up to and including the rank).
    """
    user_keys = [*keys, C.CUSTOMER_ID]
    list_keys = [key for key in user_keys if key in recommended.columns]
    per_user = (
        relevant.select(*user_keys, C.PRODUCT_ID)
        .groupBy(*user_keys)
        .agg(F.collect_set(C.PRODUCT_ID).alias(C.WANTED))
        .withColumn(C.RELEVANT_COUNT, F.size(C.WANTED))
    )
    listed = recommended.filter(F.col(C.RANK) <= longest).select(*list_keys, C.RANK, C.PRODUCT_ID)
    hit = F.when(F.array_contains(C.WANTED, F.col(C.PRODUCT_ID)), 1).otherwise(0)
    return (
        per_user.join(listed, list_keys, "left")
        .withColumn(C.HIT, hit)
        .withColumn(
            C.HITS_SO_FAR, F.sum(C.HIT).over(Window.partitionBy(*user_keys).orderBy(C.RANK))
        )
    )


def _user_means(entries: DataFrame, keys: list[str], ks: list[int]) -> DataFrame:
    """Per key combination: ``users`` and each K's mean precision, recall and AP."""

    def in_first(k: int, value: Column) -> Column:
        return F.coalesce(F.sum(F.when(F.col(C.RANK) <= k, value)), F.lit(0))

    hits = F.col(C.HIT)
    users = entries.groupBy(*keys, C.CUSTOMER_ID, C.RELEVANT_COUNT).agg(
        *[in_first(k, hits).alias(f"{C.HIT}_{k}") for k in ks],
        *[
            in_first(k, hits * F.col(C.HITS_SO_FAR) / F.col(C.RANK)).alias(f"{C.MAP_AT_K}_{k}")
            for k in ks
        ],
    )
    relevant_count = F.col(C.RELEVANT_COUNT)
    return users.groupBy(*keys).agg(
        F.count("*").alias(C.USERS),
        *[F.avg(F.col(f"{C.HIT}_{k}") / k).alias(f"{C.PRECISION_AT_K}_{k}") for k in ks],
        *[F.avg(F.col(f"{C.HIT}_{k}") / relevant_count).alias(f"{C.RECALL_AT_K}_{k}") for k in ks],
        *[
            F.avg(F.col(f"{C.MAP_AT_K}_{k}") / F.least(F.lit(k), relevant_count)).alias(
                f"{C.MAP_AT_K}_{k}"
            )
            for k in ks
        ],
    )


def _coverage(entries: DataFrame, keys: list[str], ks: list[int], catalogue: int) -> DataFrame:
    """Per key combination, each K's distinct products in anybody's first K / ``catalogue``."""
    best_ranks = (
        entries.filter(F.col(C.PRODUCT_ID).isNotNull())
        .groupBy(*keys, C.PRODUCT_ID)
        .agg(F.min(C.RANK).alias(C.RANK))
    )
    return best_ranks.groupBy(*keys).agg(
        *[
            (F.count(F.when(F.col(C.RANK) <= k, 1)) / F.lit(float(catalogue))).alias(
                f"{C.COVERAGE}_{k}"
            )
            for k in ks
        ]
    )


def _per_k(ks: list[int]) -> Column:
    """The K-suffixed columns of the means and the coverage, exploded to one struct per K."""
    return F.explode(
        F.array(
            *[
                F.struct(
                    F.lit(k).alias(C.K),
                    F.col(f"{C.PRECISION_AT_K}_{k}").alias(C.PRECISION_AT_K),
                    F.col(f"{C.RECALL_AT_K}_{k}").alias(C.RECALL_AT_K),
                    F.col(f"{C.MAP_AT_K}_{k}").alias(C.MAP_AT_K),
                    F.col(f"{C.COVERAGE}_{k}").alias(C.COVERAGE),
                )
                for k in ks
            ]
        )
    )


def score_recommenders(
    lists: dict[str, DataFrame],
    relevant: dict[str, DataFrame],
    *,
    ks: Sequence[int],
    catalogue_size: int,
) -> DataFrame:
    """
    :func:`ranking_metrics` of every list (``recommender`` name -> ``customer_id``, ``rank``,
    ``product_id``) against every target (``target`` name -> ``customer_id``, ``product_id``),
    in one pass.

    Returns
    -------
    DataFrame
        ``recommender``, ``target`` and :data:`METRICS_SCHEMA`, one row per recommender,
        target and K.
    """
    spark = next(iter(lists.values())).sparkSession
    names = spark.createDataFrame([(n,) for n in lists], f"{C.RECOMMENDER} string")
    recommended = _union(
        df.select(F.lit(name).alias(C.RECOMMENDER), C.CUSTOMER_ID, C.RANK, C.PRODUCT_ID)
        for name, df in lists.items()
    )
    hits = _union(
        df.select(F.lit(name).alias(C.TARGET), C.CUSTOMER_ID, C.PRODUCT_ID)
        for name, df in relevant.items()
    ).crossJoin(F.broadcast(names))
    return ranking_metrics(
        recommended,
        hits,
        ks=ks,
        catalogue_size=catalogue_size,
        keys=[C.RECOMMENDER, C.TARGET],
    )


def _union(frames: Iterable[DataFrame]) -> DataFrame:
    frames = list(frames)
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df)
    return out


def format_evaluation(rows: Iterable[Sequence]) -> list[str]:
    """
    A plain-text table of evaluation rows (``recommender, target, k, users, precision,
    recall, map, coverage``, as in ``recommendation_eval``), one string per line.
    """
    header = f"{'recommender':<26} {'target':<6} {'K':>3} {'users':>8} "
    header += f"{'prec@K':>7} {'recall@K':>8} {'MAP@K':>7} {'coverage':>8}"
    lines = [header]
    for recommender, target, k, users, precision, recall, mean_ap, coverage, *_ in rows:
        cells = [_figure(v) for v in (precision, recall, mean_ap, coverage)]
        lines.append(
            f"{recommender:<26} {target:<6} {k:>3} {users:>8,} "
            f"{cells[0]:>7} {cells[1]:>8} {cells[2]:>7} {cells[3]:>8}"
        )
    return lines


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
