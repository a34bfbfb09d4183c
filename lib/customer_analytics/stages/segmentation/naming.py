"""
Segment names from the naming rules (``segmentation.segment_names``).

Each rule is a list of index conditions. A rule matches a cluster when every condition holds
(a feature missing from the profile, i.e. from the input, never holds). Its score is the sum
of the relative margins, ``(index - above) / above`` or ``(below - index) / below``.
Matching (cluster, rule) pairs are taken greedily by highest score (ties: rule order, then
cluster id), each rule and each cluster used once, so names are unique within a run and the
same for the same data. A cluster that no rule names gets ``Segment <cluster> (<low|mid|high>
spend)`` from its ``total_spend`` index (below 0.8, up to 1.25, above), or ``(profile n/a)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from customer_analytics.config.schema import SegmentRule
from customer_analytics.core import columns as C

SPEND_LEVELS = ((0.8, "low"), (1.25, "mid"))

GENERIC_ACTION = "No rule matched: review the profile and test a general offer"

NAMES_SCHEMA = T.StructType(
    [
        T.StructField(C.CLUSTER, T.IntegerType(), False),
        T.StructField(C.SEGMENT_NAME, T.StringType(), False),
        T.StructField(C.ACTION, T.StringType(), False),
    ]
)


def name_segments(
    profile_rows: Iterable, rules: Sequence[SegmentRule]
) -> dict[int, tuple[str, str]]:
    """
    Name each cluster from its profile indices by the rules (see the module docstring).

    Parameters
    ----------
    profile_rows : iterable of Row or mapping
        Rows of :func:`cluster_profiles` (``cluster``, ``feature``, ``index``).
    rules : sequence of SegmentRule

    Returns
    -------
    dict
        cluster -> (segment name, action); names unique.

    Examples
    --------
    >>> rule = SegmentRule(name="Big", action="thank", when=[{"feature": "s", "above": 1.5}])
    >>> name_segments([{"cluster": 0, "feature": "s", "index": 2.0},
    ...                {"cluster": 1, "feature": "s", "index": 0.5}], [rule])
    {0: ('Big', 'thank'), 1: ('Segment 1 (profile n/a)', 'No rule matched: ...')}
    """
    index: dict[int, dict[str, float | None]] = {}
    for row in profile_rows:
        index.setdefault(int(row[C.CLUSTER]), {})[row[C.FEATURE]] = row[C.INDEX]
    pairs = []
    for order, rule in enumerate(rules):
        for cluster in sorted(index):
            score = _rule_score(rule, index[cluster])
            if score is not None:
                pairs.append((-score, order, cluster))
    names: dict[int, tuple[str, str]] = {}
    used_rules: set[int] = set()
    for _, order, cluster in sorted(pairs):
        if cluster in names or order in used_rules:
            continue
        names[cluster] = (rules[order].name, rules[order].action)
        used_rules.add(order)
    for cluster in sorted(index):
        if cluster not in names:
            names[cluster] = (_generic_name(cluster, index[cluster]), GENERIC_ACTION)
    return names


def _rule_score(rule: SegmentRule, indices: dict[str, float | None]) -> float | None:
    score = 0.0
    for cond in rule.when:
        value = indices.get(cond.feature)
        if value is None or math.isnan(value):
            return None
        if cond.above is not None:
            if not value > cond.above:
                return None
            score += (value - cond.above) / cond.above
        if cond.below is not None:
            if not value < cond.below:
                return None
            score += (cond.below - value) / cond.below
    return score


def _generic_name(cluster: int, indices: dict[str, float | None]) -> str:
    spend = indices.get(C.TOTAL_SPEND)
    if spend is None or math.isnan(spend):
        return f"Segment {cluster} (profile n/a)"
    level = next((name for limit, name in SPEND_LEVELS if spend < limit), "high")
    return f"Segment {cluster} ({level} spend)"


def names_frame(spark: SparkSession, names: dict[int, tuple[str, str]]) -> DataFrame:
    """The cluster -> name mapping as a tiny frame: ``cluster``, ``segment_name``, ``action``."""
    rows = [(c, n, a) for c, (n, a) in sorted(names.items())]
    return spark.createDataFrame(rows, NAMES_SCHEMA)
