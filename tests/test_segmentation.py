"""Segmentation: pipeline, K sweep, profiles, names, saved models and degenerate input."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.ml.clustering import KMeans
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F

from customer_analytics.config.schema import (
    DEFAULT_SEGMENTATION_FEATURES,
    SegmentationConfig,
    SegmentRule,
)
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.io.model_store import ModelStore
from customer_analytics.io.tables import Warehouse
from customer_analytics.stages import segmentation as seg
from customer_analytics.stages.features import CUSTOMER_FEATURE_COLUMNS
from customer_analytics.stages.segmentation.k_selection import choose_k
from customer_analytics.stages.segmentation.kmeans import fit_kmeans, fit_pipeline
from customer_analytics.stages.segmentation.naming import name_segments
from customer_analytics.stages.segmentation.preprocessing import (
    build_pipeline,
    in_fixed_order,
    skewed_columns,
)
from customer_analytics.stages.segmentation.profiles import (
    cluster_profiles,
    feature_importance,
    profile_features,
)
from customer_analytics.stages.segmentation.scoring import assign_clusters

FEATURES = [C.TOTAL_VISITS, C.TOTAL_SPEND, C.AVG_BASKET_SPEND, C.RECENCY_DAYS, C.MTBP_DAYS]
CONSTANT = C.RETURN_RATE
SCHEMA = (
    "customer_id string, group string, total_visits long, total_spend double, "
    "avg_basket_spend double, recency_days int, mtbp_days double, return_rate double"
)


def _population():
    """
    Three planted groups of 10 customers (i = 0..9), far apart on every feature:

    - ``A`` frequent big spenders: 40+i visits, 5000+100i spend, recency 2+i days;
    - ``B`` one-visit lapsed: 1 visit, 20+2i spend, recency 300+10i, mtbp null (imputed);
    - ``C`` recent light buyers: 10+i//2 visits, 800+10i spend, recency 25+i.

    ``return_rate`` is 0 for everyone (a constant feature: scaled to 0, kept).
    """
    rows = []
    for i in range(10):
        rows.append((f"a{i}", "A", 40 + i, 5000.0 + 100 * i, 120.0 + i, 2 + i, 5.0 + i / 10, 0.0))
        rows.append((f"b{i}", "B", 1, 20.0 + 2 * i, 20.0 + 2 * i, 300 + 10 * i, None, 0.0))
        rows.append((f"c{i}", "C", 10 + i // 2, 800.0 + 10 * i, 60.0 + i, 25 + i, 20.0 + i, 0.0))
    return rows


def _config(**overrides) -> SegmentationConfig:
    values = {"features": [*FEATURES, CONSTANT], "k_min": 2, "k_max": 4, "seed": 7}
    values.update(overrides)
    return SegmentationConfig(**values)


AS_OF = date(2024, 6, 30)


@pytest.fixture(scope="module")
def population(spark):
    return spark.createDataFrame(_population(), SCHEMA).withColumn(C.AS_OF, F.lit(AS_OF))


@pytest.fixture
def store(spark, tmp_path):
    return ModelStore(Warehouse.for_path(spark, str(tmp_path)))


@pytest.fixture(scope="module")
def fitted(population):
    result = seg.fit(population, _config())
    yield result


def test_fit_recovers_the_three_planted_groups_up_to_relabelling(population, fitted):
    pairs = (
        fitted.segments.join(population, C.CUSTOMER_ID)
        .select("group", C.CLUSTER)
        .distinct()
        .collect()
    )
    group_of_cluster = {r[C.CLUSTER]: r["group"] for r in pairs}
    # one pair per group and three different clusters: the partition is the planted one
    assert len(pairs) == 3
    assert sorted(group_of_cluster.values()) == ["A", "B", "C"]
    assert fitted.k == 3


def test_sweep_table_has_one_row_per_k_and_best_silhouette_is_chosen(fitted):
    rows = fitted.selection.orderBy(C.K).collect()
    assert [r[C.K] for r in rows] == [2, 3, 4]
    costs = [r[C.TRAINING_COST] for r in rows]
    # three planted groups far apart: K=2 merges two of them, so its cost is many times K=3's,
    # and a fourth centre splits a tight group, lowering the cost only a little more
    assert costs[0] > 10 * costs[1] > 0
    assert costs[1] > costs[2]
    assert all(r[C.SECONDS] > 0 for r in rows)
    assert fitted.k == 3
    best = max(rows, key=lambda r: r[C.SILHOUETTE])
    assert best[C.K] == 3


def test_clusters_are_named_by_the_default_rules(population, fitted):
    # indices by hand (overall means: visits 19.17, spend 2108, recency 127):
    # A: spend 2.59, visits 2.32, recency 0.05 -> Champions (beats Loyal regulars on score)
    # B: recency 2.7, spend 0.01 -> Lapsed low-value; C: visits 0.63, recency 0.23 -> New customers
    actual = (
        fitted.segments.join(population, C.CUSTOMER_ID).select("group", C.SEGMENT_NAME).distinct()
    )
    expected = population.sparkSession.createDataFrame(
        [("A", "Champions"), ("B", "Lapsed low-value"), ("C", "New customers")],
        "group string, segment_name string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_distance_is_zero_or_more_and_smaller_than_to_other_centroids(spark):
    # two groups of three on a and b; the middle customer of each sits on its group's mean
    rows = [
        ("c1", 0.0, 0.0),
        ("c2", 1.0, 0.0),  # the mean of c1..c3: distance 0
        ("c3", 2.0, 0.0),
        ("c4", 10.0, 4.0),
        ("c5", 10.0, 6.0),  # the mean of c4..c6: distance 0
        ("c6", 10.0, 8.0),
    ]
    df = spark.createDataFrame(rows, "customer_id string, a double, b double")
    model = build_pipeline(["a", "b"], k=2, seed=1, imputer_strategy="median").fit(df)
    centres = np.array(model.stages[-1].clusterCenters())
    # by hand: each feature standardized with its mean and sample standard deviation
    raw = np.array([[a, b] for _, a, b in rows])
    scaled = (raw - raw.mean(axis=0)) / raw.std(axis=0, ddof=1)
    to_centres = np.linalg.norm(scaled[:, None, :] - centres[None, :, :], axis=2)  # 6 x 2

    scored = assign_clusters(model, df).select(C.CUSTOMER_ID, C.CLUSTER, C.DISTANCE)
    actual = {r[C.CUSTOMER_ID]: (r[C.CLUSTER], r[C.DISTANCE]) for r in scored.collect()}

    for i, (customer, _, _) in enumerate(rows):
        cluster, distance = actual[customer]
        assert distance >= 0
        assert distance == pytest.approx(to_centres[i, cluster], abs=1e-9)
        assert distance <= to_centres[i].min() + 1e-9  # no other centroid is nearer
    assert actual["c2"][1] == pytest.approx(0.0, abs=1e-9)
    assert actual["c5"][1] == pytest.approx(0.0, abs=1e-9)
    assert actual["c1"][0] == actual["c3"][0] != actual["c4"][0] == actual["c6"][0]


def test_constant_feature_is_kept_with_null_importance(fitted):
    importance = {r[C.FEATURE]: r[C.IMPORTANCE] for r in fitted.importance.collect()}
    assert importance[CONSTANT] is None
    assert importance[C.TOTAL_SPEND] > 0.9  # planted groups differ mostly in spend and visits


def test_profile_index_of_spend_matches_a_hand_computation(population, fitted):
    prof = {
        r[C.SEGMENT_NAME]: r
        for r in fitted.profiles.filter(f"{C.FEATURE} = '{C.TOTAL_SPEND}'").collect()
    }
    # A: mean 5000 + 100 * 4.5 = 5450; overall (5450 + 29 + 845) / 3 = 2108
    champions = prof["Champions"]
    assert (champions[C.SIZE], champions[C.SHARE]) == (10, pytest.approx(1 / 3))
    assert champions[C.MEAN] == pytest.approx(5450.0)
    assert champions[C.INDEX] == pytest.approx(5450.0 / 2108.0)
    assert champions[C.ACTION].startswith("Reward")


def test_saved_model_scores_identically_after_loading(spark, population, fitted, store):
    store.save(fitted.saved("r1", _config()))
    loaded = store.latest()
    cols = [C.CUSTOMER_ID, C.CLUSTER, C.DISTANCE]
    before = assign_clusters(fitted.model, population).select(*cols)
    after = assign_clusters(loaded.model, population).select(*cols)
    assert_df_equality(after, before, ignore_row_order=True)
    assert (loaded.run_id, loaded.k, loaded.as_of) == ("r1", 3, AS_OF)

    rescored = seg.score(loaded, population, _config())
    assert_df_equality(
        rescored.segments, fitted.segments, ignore_row_order=True, ignore_nullable=True
    )

    with pytest.raises(InputError, match="uses features .* but segmentation.features is"):
        seg.score(loaded, population, _config(features=FEATURES))


def test_segments_and_profiles_carry_the_features_as_of(fitted):
    assert fitted.as_of == AS_OF
    assert fitted.segments.select(C.AS_OF).distinct().collect() == [(AS_OF,)]
    assert fitted.profiles.select(C.AS_OF).distinct().collect() == [(AS_OF,)]


def test_features_of_several_dates_are_refused(population):
    earlier = population.limit(3).withColumn(C.AS_OF, F.lit(date(2024, 1, 31)))
    with pytest.raises(InputError, match="holds several dates \\(2024-01-31 .. 2024-06-30\\)"):
        seg.fit(population.unionByName(earlier), _config(k=3))


def test_scoring_another_date_keeps_the_saved_ids_and_names(population, fitted, store):
    # The saved model publishes KMeans cluster i as segment 10 + i.
    saved = fitted.saved("r1", _config())
    saved.metadata["cluster_ids"] = {str(i): 10 + i for i in range(3)}
    saved.metadata["names"] = {str(10 + int(c)): v for c, v in saved.metadata["names"].items()}
    store.save(saved)
    later = population.withColumn(C.AS_OF, F.lit(date(2024, 12, 31)))

    rescored = seg.score(store.latest(), later, _config())

    expected = fitted.segments.select(
        C.CUSTOMER_ID,
        F.lit(date(2024, 12, 31)).alias(C.AS_OF),
        (F.col(C.CLUSTER) + 10).alias(C.CLUSTER),
        C.SEGMENT_NAME,
    )
    actual = rescored.segments.drop(C.DISTANCE)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_refit_keeps_the_ids_and_names_of_the_clusters_it_matches(population, fitted):
    # The previous model names group A's segment 7 "Old champions", B's 8, C's 9: a refit of
    # the same customers must publish the same three segments, whatever KMeans numbers them.
    group_of = {r[C.CLUSTER]: r["group"] for r in _groups(fitted, population)}
    index_of = {g: c for c, g in group_of.items()}
    old = {"A": (7, "Old champions"), "B": (8, "Old lapsed"), "C": (9, "Old new")}
    previous = fitted.saved("r0", _config())
    previous.metadata["cluster_ids"] = {str(index_of[g]): old[g][0] for g in old}
    previous.metadata["names"] = {str(i): [name, "act"] for i, name in old.values()}

    refitted = seg.fit(population, _config(k=3, seed=11), previous)

    actual = {r["group"]: (r[C.CLUSTER], r[C.SEGMENT_NAME]) for r in _groups(refitted, population)}
    assert actual == old
    assert refitted.changes[0] == "matched to model r0: K 3 -> 3: 3 matched, 0 new, 0 retired"


def test_a_refit_with_more_clusters_gives_the_new_one_a_fresh_id(population, fitted):
    previous = fitted.saved("r0", _config())  # segments 0, 1, 2

    refitted = seg.fit(population, _config(k=4, seed=11), previous)

    assert sorted(refitted.cluster_ids.values()) == [0, 1, 2, 3]
    fresh = [line for line in refitted.changes if "has no match" in line]
    assert len(fresh) == 1 and fresh[0].endswith(": new id 3")
    # the matched segments keep their names; the new one is named by the rules
    assert all(refitted.names[i] == fitted.names[i] for i in (0, 1, 2))


def _groups(result, population):
    """(group, cluster, segment_name) of a planted population, one row per pair."""
    return (
        result.segments.join(population.select(C.CUSTOMER_ID, "group"), C.CUSTOMER_ID)
        .select("group", C.CLUSTER, C.SEGMENT_NAME)
        .distinct()
        .collect()
    )


def test_score_refuses_a_model_fitted_with_other_weights(population, fitted, store):
    # a weight of 1.0 is no weight: recorded as {}
    store.save(fitted.saved("r1", _config(feature_weights={C.RECENCY_DAYS: 1.0})))
    loaded = store.latest()
    assert loaded.metadata["feature_weights"] == {}
    weighted = _config(feature_weights={C.RECENCY_DAYS: 2.0})
    with pytest.raises(InputError, match="uses feature_weights \\{\\}, but .* is \\{'recency"):
        seg.score(loaded, population, weighted)


def test_weights_multiply_the_standardized_features(spark):
    df = spark.createDataFrame(
        [("c1", 1.0, 10.0), ("c2", 2.0, 20.0), ("c3", 3.0, 30.0)],
        "customer_id string, a double, b double",
    )
    # by hand: a and b both standardize to -1, 0, 1 (mean 2 / 20, sample sd 1 / 10);
    # weight 2 on a doubles its coordinate, b keeps weight 1
    model = build_pipeline(
        ["a", "b"], k=2, seed=1, imputer_strategy="median", weights={"a": 2.0}
    ).fit(df)
    actual = {
        r[C.CUSTOMER_ID]: list(r[C.SCALED])
        for r in model.transform(df).select(C.CUSTOMER_ID, C.SCALED).collect()
    }
    assert actual == {
        "c1": [pytest.approx(-2.0), pytest.approx(-1.0)],
        "c2": [pytest.approx(0.0), pytest.approx(0.0)],
        "c3": [pytest.approx(2.0), pytest.approx(1.0)],
    }


def test_a_heavy_weight_decides_which_feature_splits_the_customers(spark):
    # two features, each with two groups; standardized, both gaps are equal and k=2 must pick
    # one: the weighted feature's gap (3 times wider) is the cheaper split
    rows = [
        (f"c{i}", float(i % 2) * 10 + i / 100, float(i // 2 % 2) * 10 + i / 100) for i in range(8)
    ]
    df = spark.createDataFrame(rows, "customer_id string, a double, b double")
    for heavy, other in (("a", "b"), ("b", "a")):
        model = build_pipeline(
            ["a", "b"], k=2, seed=3, imputer_strategy="median", weights={heavy: 3.0}
        ).fit(df)
        clusters = (
            model.transform(df)
            .groupBy(C.CLUSTER)
            .agg(
                F.count_distinct(F.round(heavy)).alias("heavy_values"),
                F.count_distinct(F.round(other)).alias("other_values"),
            )
        )
        assert sorted(tuple(r[1:]) for r in clusters.collect()) == [(1, 2), (1, 2)]


def test_weights_not_in_features_or_not_positive_are_refused():
    with pytest.raises(ValueError, match="weights not in features: c"):
        build_pipeline(["a", "b"], k=2, seed=1, imputer_strategy="median", weights={"c": 2.0})
    with pytest.raises(ValueError, match="weights must be finite and > 0: a"):
        build_pipeline(["a", "b"], k=2, seed=1, imputer_strategy="median", weights={"a": 0.0})


def test_fit_kmeans_keeps_the_start_with_the_lowest_cost(spark):
    # three loose groups on a line, k=2: starts may pair them differently
    df = spark.createDataFrame(
        [(Vectors.dense([x]),) for x in (0.0, 0.1, 0.2, 3.0, 3.1, 7.0, 7.1, 7.2, 7.3)],
        [C.SCALED],
    )
    kmeans = KMeans(k=2, seed=11, featuresCol=C.SCALED, predictionCol=C.CLUSTER, initMode="random")
    costs = [
        kmeans.copy({kmeans.seed: 11 + start}).fit(df).summary.trainingCost for start in range(4)
    ]
    best = fit_kmeans(kmeans, df, n_init=4)
    assert best.summary.trainingCost == pytest.approx(min(costs))
    assert fit_kmeans(kmeans, df, n_init=1).summary.trainingCost == pytest.approx(costs[0])
    with pytest.raises(ValueError, match="n_init must be >= 1"):
        fit_kmeans(kmeans, df, n_init=0)


def test_default_features_are_columns_of_the_customer_single_view():
    assert set(DEFAULT_SEGMENTATION_FEATURES) <= set(CUSTOMER_FEATURE_COLUMNS)
    # every default feature but return_rate is a non-negative count, amount or duration
    assert skewed_columns(DEFAULT_SEGMENTATION_FEATURES) == [
        f for f in DEFAULT_SEGMENTATION_FEATURES if f != C.RETURN_RATE
    ]


def test_profiled_columns_add_the_rules_features_and_total_spend():
    rule = SegmentRule(
        name="Big",
        action="a",
        when=[{"feature": C.TENURE_WEEKS, "below": 1.0}, {"feature": C.TOTAL_VISITS, "above": 1.0}],
    )
    dtypes = [(C.TOTAL_VISITS, "bigint"), (C.TENURE_WEEKS, "double"), (C.TOTAL_SPEND, "double")]
    assert profile_features([C.TOTAL_VISITS], [rule], dtypes) == [
        C.TOTAL_VISITS,
        C.TENURE_WEEKS,
        C.TOTAL_SPEND,
    ]
    # only numeric columns the input has; clustered features first, each once
    dtypes = [(C.TENURE_WEEKS, "double"), (C.TOTAL_VISITS, "string")]
    assert profile_features([C.TENURE_WEEKS], [rule], dtypes) == [C.TENURE_WEEKS]


def test_rules_name_clusters_on_a_feature_that_is_not_clustered(population):
    # same planted groups, clustered without total_spend: the default rules still read its
    # profile (indices as in test_clusters_are_named_by_the_default_rules)
    features = [C.TOTAL_VISITS, C.AVG_BASKET_SPEND, C.RECENCY_DAYS, C.MTBP_DAYS]
    result = seg.fit(population, _config(features=features, k=3))
    actual = (
        result.segments.join(population, C.CUSTOMER_ID).select("group", C.SEGMENT_NAME).distinct()
    )
    expected = population.sparkSession.createDataFrame(
        [("A", "Champions"), ("B", "Lapsed low-value"), ("C", "New customers")],
        "group string, segment_name string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    profiled = {r[C.FEATURE] for r in result.profiles.select(C.FEATURE).distinct().collect()}
    # total_spend and return_rate: tested by the default rules, present in the input
    assert profiled == {*features, C.TOTAL_SPEND, C.RETURN_RATE}
    importance = {r[C.FEATURE] for r in result.importance.collect()}
    assert importance == set(features)  # importance only for what was clustered


def test_the_latest_model_is_loaded_from_its_own_folder_whatever_its_metadata_says(fitted, store):
    store.save(fitted.saved("r1", _config()))
    metadata_file = Path(store.root) / "r1" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["run_id"] = "../../../elsewhere"  # a model outside the warehouse
    metadata_file.write_text(json.dumps(metadata))

    loaded = store.latest()

    assert (loaded.run_id, loaded.k) == ("r1", 3)


def test_a_model_whose_metadata_was_cut_short_is_an_incomplete_save(fitted, store):
    store.save(fitted.saved("r1", _config()))
    later = fitted.saved("r2", _config())
    later.metadata["trained_at"] = "9999-12-31T00:00:00+00:00"
    store.save(later)
    metadata_file = Path(store.root) / "r2" / "metadata.json"
    metadata_file.write_text(metadata_file.read_text()[:40])  # a writer killed mid-file

    assert store.latest().run_id == "r1"


def test_the_latest_model_of_an_empty_store_is_an_input_error(store):
    with pytest.raises(InputError, match="no saved segmentation model"):
        store.latest()


def test_cluster_profiles_mean_median_and_index(spark):
    scored = spark.createDataFrame(
        [(0, 10.0), (0, 30.0), (1, 60.0), (1, None)], "cluster int, total_spend double"
    )
    # overall mean (10 + 30 + 60) / 3 = 33.33; c0 mean 20 -> 0.6, c1 mean 60 -> 1.8;
    # the null row still counts in size; percentile_approx of {10, 30} is 10
    expected = spark.createDataFrame(
        [
            (0, 2, 0.5, "total_spend", 20.0, 10.0, 100 / 3, 0.6),
            (1, 2, 0.5, "total_spend", 60.0, 60.0, 100 / 3, 1.8),
        ],
        "cluster int, size long, share double, feature string, mean double, median double, "
        "overall_mean double, index double",
    )
    actual = cluster_profiles(scored, [C.TOTAL_SPEND]).orderBy(C.CLUSTER)
    assert_approx_df_equality(actual, expected, 1e-9, ignore_nullable=True)


def test_feature_importance_is_between_over_total_variance(spark):
    # a: -1, -1 | 1, 1 -> all variance between clusters (1.0); b: -1, 1 | -1, 1 -> none (0.0)
    scored = spark.createDataFrame(
        [
            (0, Vectors.dense([-1.0, -1.0])),
            (0, Vectors.dense([-1.0, 1.0])),
            (1, Vectors.dense([1.0, -1.0])),
            (1, Vectors.dense([1.0, 1.0])),
        ],
        ["cluster", C.SCALED],
    )
    expected = spark.createDataFrame(
        [("a", 1.0, 1), ("b", 0.0, 2)], "feature string, importance double, rank int"
    )
    actual = feature_importance(scored, ["a", "b"])
    assert_approx_df_equality(actual, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_choose_k_takes_best_silhouette_unless_fixed():
    rows = [{"k": 2, "silhouette": 0.4}, {"k": 3, "silhouette": 0.7}, {"k": 4, "silhouette": 0.6}]
    assert choose_k(rows, None) == 3
    assert choose_k(rows, 5) == 5


def test_choose_k_takes_the_largest_k_within_the_tolerance_of_the_best():
    rows = [
        {"k": 4, "silhouette": 0.634},
        {"k": 5, "silhouette": 0.698},
        {"k": 6, "silhouette": 0.691},  # 0.007 below the best
        {"k": 7, "silhouette": 0.671},  # 0.027 below
    ]
    assert choose_k(rows, None, tolerance=0.01) == 6
    assert choose_k(rows, None, tolerance=0.03) == 7
    assert choose_k(rows, None, tolerance=0.0) == 5


def test_names_are_unique_best_score_first_and_generic_when_no_rule_matches():
    rules = [
        SegmentRule(name="Big", action="thank", when=[{"feature": "s", "above": 1.5}]),
        SegmentRule(name="Small", action="nudge", when=[{"feature": "s", "below": 0.5}]),
    ]
    profile = [
        {"cluster": 0, "feature": "s", "index": 2.0},  # Big, score (2 - 1.5) / 1.5 = 0.33
        {"cluster": 1, "feature": "s", "index": 3.0},  # Big, score 1.0: wins Big
        {"cluster": 2, "feature": "s", "index": 0.2},  # Small
        {"cluster": 3, "feature": "s", "index": None},  # nothing matches a null index
    ]
    names = name_segments(profile, rules)
    assert names[1] == ("Big", "thank")
    assert names[2] == ("Small", "nudge")
    assert names[0][0] == "Segment 0 (profile n/a)"  # "s" is not total_spend
    assert names[3][0] == "Segment 3 (profile n/a)"


def _profile(cluster: int, **indices: float) -> list[dict]:
    return [{"cluster": cluster, "feature": f, "index": v} for f, v in indices.items()]


def test_default_rules_tell_at_risk_from_loyal_when_lapsed_customers_inflate_recency():
    # indices as measured on the generated data, where the lapsed inflate the mean recency
    profile = [
        *_profile(0, total_visits=1.6, recency_days=0.04, total_spend=0.8),
        *_profile(1, total_visits=1.3, recency_days=0.46, total_spend=1.1),
    ]
    # Loyal regulars: c0 (1.6 - 1.1) / 1.1 + (1 - 0.04) = 1.41, c1 0.18 + 0.54 = 0.72;
    # At risk: c1 (0.46 - 0.3) / 0.3 + (1.3 - 1) + (1.1 - 0.8) / 0.8 = 1.21, c0 fails recency
    names = name_segments(profile, SegmentationConfig().segment_names)
    assert {c: n for c, (n, _) in names.items()} == {0: "Loyal regulars", 1: "At risk"}


def test_default_rules_name_frequent_returners_before_big_baskets():
    # as measured on online_retail: Frequent returners (3.8 - 2) / 2 = 0.9 beats
    # Big-basket occasionals (1.76 - 1.2) / 1.2 + (1 - 0.62) = 0.85
    profile = _profile(
        3, return_rate=3.8, avg_basket_spend=1.76, total_visits=0.62, recency_days=1.18
    )
    names = name_segments(
        [*profile, *_profile(3, total_spend=0.85)], SegmentationConfig().segment_names
    )
    assert names[3][0] == "Frequent returners"


def test_generic_name_describes_the_spend_level():
    profile = [{"cluster": 4, "feature": C.TOTAL_SPEND, "index": 1.0}]
    assert name_segments(profile, [])[4][0] == "Segment 4 (mid spend)"


def test_missing_feature_column_is_an_input_error(population):
    with pytest.raises(InputError, match="column\\(s\\) spend_trend not in customer_features"):
        seg.fit(population, _config(features=[C.TOTAL_SPEND, C.SPEND_TREND]))


def test_all_null_feature_is_an_input_error(spark):
    df = spark.createDataFrame(
        [("c1", 1.0, None), ("c2", 2.0, None), ("c3", 3.0, None), ("c4", 4.0, None)],
        "customer_id string, total_spend double, mtbp_days double",
    )
    with pytest.raises(InputError, match="mtbp_days is null for every customer"):
        seg.fit(df, _config(features=[C.TOTAL_SPEND, C.MTBP_DAYS]))


def test_fewer_customers_than_k_min_is_an_input_error(spark):
    df = spark.createDataFrame([("c1", 1.0), ("c2", 2.0)], "customer_id string, total_spend double")
    with pytest.raises(InputError, match="has 2 customer\\(s\\); segmentation needs at least 3"):
        seg.fit(df, _config(features=[C.TOTAL_SPEND]))


def test_fixed_k_above_the_customer_count_is_an_input_error(spark):
    df = spark.createDataFrame(
        [(f"c{i}", float(i)) for i in range(4)], "customer_id string, total_spend double"
    )
    with pytest.raises(InputError, match="has 4 customer\\(s\\); segmentation needs at least 5"):
        seg.fit(df, _config(features=[C.TOTAL_SPEND], k=5))


def test_segment_job_fits_then_scores_and_refuses_a_changed_feature_list(
    spark, population, tmp_path, capsys
):
    from customer_analytics import cli
    from customer_analytics.io.tables import Warehouse

    wh = tmp_path / "wh"
    Warehouse.for_path(spark, str(wh)).write("customer_features", population)
    common = ["--set", "source.path=unused", "--set", f"warehouse.path={wh}"]
    features = "--set", "segmentation.features=[total_visits, total_spend, recency_days]"

    assert cli.main(["segment", *common, *features, "--set", "segmentation.k=3"]) == 0
    warehouse = Warehouse.for_path(spark, str(wh))
    fitted = warehouse.read("customer_segments")
    assert warehouse.read("kmeans_selection").select(C.K).collect() == [(3,)]
    assert fitted.select(C.CLUSTER).distinct().count() == 3
    assert (wh / "_models" / "segmentation").is_dir()

    assert cli.main(["segment", "--mode", "score", *common, *features]) == 0
    assert_df_equality(warehouse.read("customer_segments"), fitted, ignore_row_order=True)

    capsys.readouterr()
    assert cli.main(["segment", "--mode", "score", *common]) == 2
    assert "but segmentation.features is" in capsys.readouterr().err


def test_in_fixed_order_is_one_partition_sorted_by_customer_whatever_the_input(spark):
    rows = [(f"c{i:02d}", float(i), "x") for i in range(12)]
    schema = "customer_id string, total_visits double, city string"
    shuffled = spark.createDataFrame(rows[::-1], schema).repartition(3)

    ordered = in_fixed_order(shuffled, [C.TOTAL_VISITS])

    assert ordered.rdd.getNumPartitions() == 1
    assert ordered.columns == [C.CUSTOMER_ID, C.TOTAL_VISITS]
    assert [r[C.CUSTOMER_ID] for r in ordered.collect()] == [f"c{i:02d}" for i in range(12)]


def test_a_fit_does_not_depend_on_how_the_rows_are_partitioned(spark):
    # 300 customers spread evenly on a grid: no planted groups, so where k-means|| starts
    # decides the local optimum, and that start draws rows partition by partition
    rows = [(f"c{i:03d}", float(i % 20), float((i * 7) % 15)) for i in range(300)]
    schema = "customer_id string, total_visits double, total_spend double"
    cfg = SegmentationConfig(features=[C.TOTAL_VISITS, C.TOTAL_SPEND], k=5, n_init=1, seed=3)
    one_way = spark.createDataFrame(rows, schema).repartition(4)
    other_way = spark.createDataFrame(rows[::-1], schema).repartition(3)

    def centres(df):
        model = fit_pipeline(df, cfg, 5)
        return sorted(tuple(c) for c in model.stages[-1].clusterCenters())

    assert centres(one_way) == centres(other_way)


def test_refit_with_a_fixed_k_fits_a_sample_and_scores_everyone(spark):
    # The 30 planted customers ten times over: 300 customers, more than the sample of 100.
    rows = [(f"{row[0]}_{copy}", *row[1:]) for copy in range(10) for row in _population()]
    population = spark.createDataFrame(rows, SCHEMA).withColumn(C.AS_OF, F.lit(AS_OF))

    result = seg.refit(population, _config(k=3, sweep_sample_size=100))

    pairs = result.segments.join(population, C.CUSTOMER_ID).groupBy("group", C.CLUSTER).count()
    assert result.selection is None
    assert sorted((r["group"], r["count"]) for r in pairs.collect()) == [
        ("A", 100),
        ("B", 100),
        ("C", 100),
    ]
    assert pairs.select(C.CLUSTER).distinct().count() == 3


def test_a_refit_not_named_gives_every_segment_the_unnamed_name(population):
    result = seg.refit(population, _config(k=3), named=False)

    names = result.segments.join(population, C.CUSTOMER_ID).select("group", C.SEGMENT_NAME)
    pairs = names.distinct().collect()
    by_group = {r["group"]: r[C.SEGMENT_NAME] for r in pairs}
    assert len(pairs) == 3  # one segment per planted group, none split
    assert sorted(by_group) == ["A", "B", "C"]
    assert sorted(by_group.values()) == [
        "Segment 0 (unnamed)",
        "Segment 1 (unnamed)",
        "Segment 2 (unnamed)",
    ]


def test_refit_without_a_fixed_k_sweeps_like_fit(population):
    result = seg.refit(population, _config())

    assert result.k == 3
    assert sorted(r[C.K] for r in result.selection.collect()) == [2, 3, 4]


def test_fit_scores_everyone_with_the_sweeps_model_fitted_on_the_sample(spark):
    # The 30 planted customers ten times over: 300 customers, more than the sample of 100.
    rows = [(f"{row[0]}_{copy}", *row[1:]) for copy in range(10) for row in _population()]
    population = spark.createDataFrame(rows, SCHEMA).withColumn(C.AS_OF, F.lit(AS_OF))
    cfg = _config(sweep_sample_size=100)

    result = seg.fit(population, cfg)

    pairs = result.segments.join(population, C.CUSTOMER_ID).groupBy("group", C.CLUSTER).count()
    assert result.k == 3
    assert sorted((r["group"], r["count"]) for r in pairs.collect()) == [
        ("A", 100),
        ("B", 100),
        ("C", 100),
    ]
    # the KMeans of the model saw the sample (about 100 customers), not all 300
    trained_on = sum(result.model.stages[-1].summary.clusterSizes)
    assert 50 < trained_on < 200
