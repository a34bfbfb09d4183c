"""
The recommenders the evaluation compares (:data:`RECOMMENDERS`), each a ranked list per
customer built from the training period's
:class:`~customer_analytics.stages.recommend.SegmentPurchases`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from customer_analytics.core import columns as C
from customer_analytics.stages.recommend import customer_recommendations

#: The lists :func:`evaluation_lists` builds, baseline first.
RECOMMENDERS = (
    "global_popular",
    "segment_popular",
    "global_not_bought",
    "segment_not_bought",
    "segment_not_bought_rules",
)


def popular_list(
    ranking: DataFrame, segments: DataFrame, *, top_n: int, by_segment: bool
) -> DataFrame:
    """
    The plain popularity recommenders: every customer gets the first ``top_n`` of their
    segment's list (``by_segment``) or of the all-customers list, bought before or not.

    Returns
    -------
    DataFrame
        ``customer_id``, ``rank``, ``product_id``.
    """
    listed = ranking.filter(F.col(C.RANK) <= top_n)
    if by_segment:
        return segments.join(listed.filter(F.col(C.CLUSTER).isNotNull()), C.CLUSTER).select(
            C.CUSTOMER_ID, C.RANK, C.PRODUCT_ID
        )
    return (
        segments.select(C.CUSTOMER_ID)
        .crossJoin(listed.filter(F.col(C.CLUSTER).isNull()).select(C.RANK, C.PRODUCT_ID))
        .select(C.CUSTOMER_ID, C.RANK, C.PRODUCT_ID)
    )


def evaluation_lists(
    ranking: DataFrame,
    segments: DataFrame,
    history: DataFrame,
    names: DataFrame,
    rules: DataFrame | None,
    *,
    top_n: int,
    candidates: int,
) -> dict[str, DataFrame]:
    """
    The lists of every recommender in :data:`RECOMMENDERS`, each ``customer_id``, ``rank``,
    ``product_id`` for every customer of ``segments``, from training-period inputs.

    ``global_popular`` (the baseline) and ``segment_popular`` give everybody (in a segment) the
    same list; ``global_not_bought`` and ``segment_not_bought`` drop what the customer bought;
    ``segment_not_bought_rules`` also lets basket rules in (left out when ``rules`` is None).
    ``history`` needs only the
    customers of ``segments``: passing just theirs spares the three lists that read it the
    purchases of everybody else.
    """
    everyone_only = ranking.filter(F.col(C.CLUSTER).isNull())
    args = dict(top_n=top_n, candidates=candidates)
    lists = {
        "global_popular": popular_list(ranking, segments, top_n=top_n, by_segment=False),
        "segment_popular": popular_list(ranking, segments, top_n=top_n, by_segment=True),
        "global_not_bought": customer_recommendations(
            everyone_only, segments, history, names, **args
        ),
        "segment_not_bought": customer_recommendations(ranking, segments, history, names, **args),
    }
    if rules is not None:
        lists["segment_not_bought_rules"] = customer_recommendations(
            ranking, segments, history, names, rules=rules, **args
        )
    return {name: df.select(C.CUSTOMER_ID, C.RANK, C.PRODUCT_ID) for name, df in lists.items()}
