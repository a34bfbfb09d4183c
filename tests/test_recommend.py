"""Recommendations: top lists, not-yet-bought lists, basket rules and the evaluation metrics."""

from __future__ import annotations

from datetime import date

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F

from customer_analytics.config.schema import ExcludePeriod, RecommendConfig
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.stages import basket_rules as baskets
from customer_analytics.stages import recommend as rec
from customer_analytics.stages.evaluation import (
    customer_sample,
    evaluation_audience,
    relevant_products,
)
from customer_analytics.stages.period import Period
from customer_analytics.stages.ranking_metrics import (
    METRICS_SCHEMA,
    format_evaluation,
    ranking_metrics,
    score_recommenders,
)
from customer_analytics.stages.recommenders import RECOMMENDERS, evaluation_lists, popular_list
from tests.conftest import shared_file

LINE_SCHEMA = (
    "source string, order_id string, customer_id string, order_date date, product_id string, "
    "product_name string, quantity double, line_amount double, is_return boolean"
)
RANKING_SCHEMA = (
    "cluster int, segment_name string, rank int, product_id string, buyers long, "
    "quantity double, revenue double, penetration double"
)
RECS_SCHEMA = (
    "customer_id string, rank int, product_id string, product_name string, score double, "
    "reason string"
)
RULES_SCHEMA = (
    "antecedent array<string>, consequent string, support double, confidence double, lift double"
)
D = date(2024, 3, 10)


def _lines(spark, rows):
    """Rows of (order_id, customer_id, order_date, product_id, quantity, line_amount[, ...])."""
    full = []
    for row in rows:
        order_id, customer, day, product, quantity, amount, *rest = row
        name = rest[0] if len(rest) > 0 else (f"Name {product}" if product else None)
        is_return = rest[1] if len(rest) > 1 else False
        full.append(("s", order_id, customer, day, product, name, quantity, amount, is_return))
    return spark.createDataFrame(full, LINE_SCHEMA)


def _names(spark, products):
    return spark.createDataFrame(
        [(p, f"Name {p}") for p in products], "product_id string, product_name string"
    )


# --- purchases and windows -------------------------------------------------------------------


def test_purchases_leave_out_returns_zero_quantities_and_lines_without_product(spark):
    lines = _lines(
        spark,
        [
            ("o1", "c1", D, "p1", 2.0, 20.0),
            ("o2", "c1", D, "p1", -1.0, -10.0, "Name p1", True),  # a return
            ("o3", "c1", D, "p2", 0.0, 0.0),  # nothing bought
            ("o4", "c1", D, None, 1.0, 5.0),  # no product
            ("o5", None, D, "p3", 1.0, 3.0),  # a non-member still buys
        ],
    )

    kept = [r[C.ORDER_ID] for r in rec.purchases(lines).orderBy(C.ORDER_ID).collect()]

    assert kept == ["o1", "o5"]


def test_purchases_leave_out_excluded_product_ids(spark):
    lines = _lines(spark, [("o1", "c1", D, "p1", 1.0, 1.0), ("o1", "c1", D, "POST", 1.0, 18.0)])

    kept = rec.purchases(lines, exclude_products=["POST", "DOT"])

    assert [r[C.PRODUCT_ID] for r in kept.collect()] == ["p1"]


def test_the_recent_months_end_at_as_of_and_skip_excluded_periods(spark):
    days = {
        "before": date(2024, 2, 29),  # 2024-03-31 minus one month: outside
        "first": date(2024, 3, 1),
        "excluded": date(2024, 3, 15),
        "as_of": date(2024, 3, 31),
        "after": date(2024, 4, 1),
    }
    lines = _lines(spark, [(k, "c1", d, "p1", 1.0, 1.0) for k, d in days.items()])

    period = Period(
        date(2024, 3, 31),
        exclude_periods=[ExcludePeriod(start=date(2024, 3, 10), end=date(2024, 3, 20))],
    )
    recent = period.recent(lines, months=1)

    assert sorted(r[C.ORDER_ID] for r in recent.collect()) == ["as_of", "first"]


def test_purchase_history_is_distinct_member_product_pairs(spark):
    lines = _lines(
        spark,
        [
            ("o1", "c1", D, "p1", 1.0, 1.0),
            ("o2", "c1", D, "p1", 3.0, 3.0),
            ("o3", "c2", D, "p1", 1.0, 1.0),
            ("o4", None, D, "p2", 1.0, 1.0),
        ],
    )
    expected = spark.createDataFrame(
        [("c1", "p1"), ("c2", "p1")], "customer_id string, product_id string"
    )

    assert_df_equality(rec.purchase_history(lines), expected, ignore_row_order=True)


def test_product_names_take_the_most_common_name_ties_to_the_smallest_else_the_id(spark):
    lines = _lines(
        spark,
        [
            ("o1", "c1", D, "p1", 1.0, 1.0, "Mug blue"),
            ("o2", "c1", D, "p1", 1.0, 1.0, "Mug BLUE"),
            ("o3", "c1", D, "p1", 1.0, 1.0, "Mug blue"),
            ("o4", "c1", D, "p2", 1.0, 1.0, "Zebra"),
            ("o5", "c1", D, "p2", 1.0, 1.0, "Apple"),  # tie 1-1: the smaller name
            ("o6", "c1", D, "p3", 1.0, 1.0, None),
            ("o7", "c1", D, "p3", 1.0, 1.0, None),
            ("o8", "c1", D, "p3", 1.0, 1.0, "Lamp"),  # a name beats more nulls
            ("o9", "c1", D, "p4", 1.0, 1.0, None),
        ],
    )
    expected = spark.createDataFrame(
        [("p1", "Mug blue"), ("p2", "Apple"), ("p3", "Lamp"), ("p4", "product p4")],
        "product_id string, product_name string",
    )

    assert_df_equality(
        rec.product_names(lines), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_a_product_without_a_name_or_with_a_blank_one_is_labelled_by_its_id(spark):
    products = spark.createDataFrame(
        [("1004906", None), ("7", "  "), ("8", ""), ("9", "Lamp")],
        "product_id string, product_name string",
    )
    labels = products.select(
        C.PRODUCT_ID, rec.product_label(F.col(C.PRODUCT_NAME), F.col(C.PRODUCT_ID)).alias("label")
    )

    assert sorted(tuple(r) for r in labels.collect()) == [
        ("1004906", "product 1004906"),
        ("7", "product 7"),
        ("8", "product 8"),
        ("9", "Lamp"),
    ]


# --- top lists -------------------------------------------------------------------------------


def _segments(spark):
    return spark.createDataFrame(
        [("c1", 0, "A"), ("c2", 0, "A"), ("c3", 0, "A"), ("c4", 1, "B"), ("c5", 1, "B")],
        "customer_id string, cluster int, segment_name string",
    )


def _recent(spark):
    return _lines(
        spark,
        [
            ("o1", "c1", D, "p1", 1.0, 10.0),
            ("o2", "c1", D, "p1", 1.0, 10.0),  # c1 again: still one buyer
            ("o3", "c2", D, "p1", 1.0, 10.0),
            ("o1", "c1", D, "p2", 5.0, 5.0),
            ("o3", "c2", D, "p2", 1.0, 1.0),
            ("o4", "c3", D, "p3", 3.0, 3.0),
            ("o4", "c3", D, "p4", 3.0, 6.0),  # ties p3 on buyers and quantity
            ("o5", "c4", D, "p1", 1.0, 10.0),
            ("o6", "c5", D, "p5", 2.0, 4.0),
            ("o7", "c9", D, "p5", 1.0, 2.0),  # no segment: not counted
        ],
    )


def test_product_ranking_orders_by_buyers_then_quantity_then_product_id(spark):
    # Segment A (3 members): p2 and p1 have 2 buyers, p2 more quantity (6 > 3); p3 and p4
    # tie on 1 buyer and quantity 3, so p3 first. Segment B (2): p5 and p1 one buyer each,
    # p5 more quantity. All 5 segmented customers: p1 bought by c1, c2, c4.
    expected = spark.createDataFrame(
        [
            (0, "A", 1, "p2", 2, 6.0, 6.0, 2 / 3),
            (0, "A", 2, "p1", 2, 3.0, 30.0, 2 / 3),
            (0, "A", 3, "p3", 1, 3.0, 3.0, 1 / 3),
            (0, "A", 4, "p4", 1, 3.0, 6.0, 1 / 3),
            (1, "B", 1, "p5", 1, 2.0, 4.0, 1 / 2),
            (1, "B", 2, "p1", 1, 1.0, 10.0, 1 / 2),
            (None, "All customers", 1, "p1", 3, 4.0, 40.0, 3 / 5),
            (None, "All customers", 2, "p2", 2, 6.0, 6.0, 2 / 5),
            (None, "All customers", 3, "p3", 1, 3.0, 3.0, 1 / 5),
            (None, "All customers", 4, "p4", 1, 3.0, 6.0, 1 / 5),
            (None, "All customers", 5, "p5", 1, 2.0, 4.0, 1 / 5),
        ],
        RANKING_SCHEMA,
    )

    ranking = rec.product_ranking(_recent(spark), _segments(spark))

    assert_approx_df_equality(ranking, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_segment_top_products_keep_the_first_n_of_each_list_with_names(spark):
    ranking = rec.product_ranking(_recent(spark), _segments(spark))

    top = rec.segment_top_products(ranking, _names(spark, ["p1", "p2", "p5"]), top_n=1)

    assert [tuple(r) for r in top.orderBy(C.CLUSTER).collect()] == [
        (None, "All customers", 1, "p1", "Name p1", 3, 4.0, 40.0, 3 / 5),
        (0, "A", 1, "p2", "Name p2", 2, 6.0, 6.0, 2 / 3),
        (1, "B", 1, "p5", "Name p5", 1, 2.0, 4.0, 1 / 2),
    ]


def test_segment_top_products_rejects_top_n_below_1(spark):
    ranking = rec.product_ranking(_recent(spark), _segments(spark))
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        rec.segment_top_products(ranking, _names(spark, []), top_n=0)


# --- customer lists --------------------------------------------------------------------------


def _ranking(spark):
    return spark.createDataFrame(
        [
            (0, "A", 1, "p2", 3, 3.0, 3.0, 0.6),
            (0, "A", 2, "p1", 2, 2.0, 2.0, 0.4),
            (0, "A", 3, "p3", 1, 1.0, 1.0, 0.2),
            (None, "All customers", 1, "p1", 5, 5.0, 5.0, 0.5),
            (None, "All customers", 2, "p4", 3, 3.0, 3.0, 0.3),
            (None, "All customers", 3, "p2", 2, 2.0, 2.0, 0.25),
            (None, "All customers", 4, "p5", 1, 1.0, 1.0, 0.1),
        ],
        RANKING_SCHEMA,
    )


def _history(spark, pairs):
    return spark.createDataFrame(pairs, "customer_id string, product_id string")


def _members(spark):
    # c3's cluster 7 has no list in the window: the all-customers list serves it
    return spark.createDataFrame(
        [("c1", 0), ("c2", 0), ("c3", 7)], "customer_id string, cluster int"
    )


NAMES = ["p1", "p2", "p3", "p4", "p5", "p9"]


def test_customer_lists_skip_bought_products_and_fill_up_from_the_all_customers_list(spark):
    history = _history(
        spark, [("c1", "p2"), ("c1", "px"), ("c2", "p1"), ("c2", "p2"), ("c2", "p3"), ("c2", "p4")]
    )
    seg, everyone = rec.REASON_SEGMENT, rec.REASON_ALL
    # c1: segment list p2 p1 p3 less p2 leaves 2 < 3, so the all-customers list fills in p4
    # (p1 is already there, p2 bought). c2 bought all of A's list and all but p5 of the other.
    # c3: the all-customers list.
    expected = spark.createDataFrame(
        [
            ("c1", 1, "p1", "Name p1", 0.4, seg),
            ("c1", 2, "p3", "Name p3", 0.2, seg),
            ("c1", 3, "p4", "Name p4", 0.3, everyone),
            ("c2", 1, "p5", "Name p5", 0.1, everyone),
            ("c3", 1, "p1", "Name p1", 0.5, everyone),
            ("c3", 2, "p4", "Name p4", 0.3, everyone),
            ("c3", 3, "p2", "Name p2", 0.25, everyone),
        ],
        RECS_SCHEMA,
    )

    lists = rec.customer_recommendations(
        _ranking(spark),
        _members(spark),
        history,
        _names(spark, NAMES),
        top_n=3,
        candidates=4,  # deep enough to reach p5, 4th of the all-customers list
    )

    assert_df_equality(lists, expected, ignore_row_order=True, ignore_nullable=True)


def test_customer_lists_look_only_candidates_deep_into_the_segment_list(spark):
    history = _history(spark, [("c1", "p2")])

    lists = rec.customer_recommendations(
        _ranking(spark),
        _members(spark).filter("customer_id = 'c1'"),
        history,
        _names(spark, NAMES),
        top_n=1,
        candidates=1,  # A's list is cut to p2, which c1 bought: the all-customers list fills in
    )

    assert [(r[C.PRODUCT_ID], r[C.REASON]) for r in lists.collect()] == [("p1", rec.REASON_ALL)]


def test_customer_lists_reach_past_bought_products_spread_along_the_list(spark):
    # one segment list p1..p7 with penetration 0.7, 0.6, ..., 0.1
    ranking = spark.createDataFrame(
        [(0, "A", r, f"p{r}", 8 - r, 1.0, 1.0, (8 - r) / 10) for r in range(1, 8)],
        RANKING_SCHEMA,
    )
    members = spark.createDataFrame([("c1", 0), ("c2", 0)], "customer_id string, cluster int")
    # c1 bought the 1st, 2nd and 4th; c2 the 6th, beyond its first three
    history = _history(spark, [("c1", "p1"), ("c1", "p2"), ("c1", "p4"), ("c2", "p6")])

    lists = rec.customer_recommendations(
        ranking, members, history, _names(spark, []), top_n=3, candidates=7
    )

    got = sorted((r[C.CUSTOMER_ID], r[C.RANK], r[C.PRODUCT_ID]) for r in lists.collect())
    assert got == [
        ("c1", 1, "p3"),
        ("c1", 2, "p5"),
        ("c1", 3, "p6"),
        ("c2", 1, "p1"),
        ("c2", 2, "p2"),
        ("c2", 3, "p3"),
    ]


def test_candidates_below_top_n_is_rejected(spark):
    with pytest.raises(ValueError, match="candidates must be >= top_n"):
        rec.customer_recommendations(
            _ranking(spark),
            _members(spark),
            _history(spark, []),
            _names(spark, []),
            top_n=3,
            candidates=2,
        )


def test_basket_rules_add_and_rerank_products_whose_antecedent_the_customer_bought(spark):
    rules = spark.createDataFrame(
        [
            (["p9"], "p3", 0.1, 0.9, 2.0),  # fires for c1: p3 moves up with confidence 0.9
            (["p2", "p8"], "p6", 0.1, 0.5, 2.0),  # c1 has p2 but not p8: does not fire
            (["p2", "p9"], "p7", 0.1, 0.3, 2.0),  # fires: p7 comes in at 0.3
            (["p9"], "p2", 0.1, 0.95, 2.0),  # fires, but c1 bought p2
        ],
        RULES_SCHEMA,
    )
    history = _history(spark, [("c1", "p2"), ("c1", "p9")])
    names = _names(spark, NAMES)
    # Segment candidates p1 (0.4), p3 (0.2); rule candidates p3 (0.9), p7 (0.3): p3 keeps its
    # higher score and the rule's reason. The all-customers p4 (0.3) ranks after them.
    expected = spark.createDataFrame(
        [
            ("c1", 1, "p3", "Name p3", 0.9, "often bought with Name p9"),
            ("c1", 2, "p1", "Name p1", 0.4, rec.REASON_SEGMENT),
            ("c1", 3, "p7", None, 0.3, "often bought with Name p2, Name p9"),
        ],
        RECS_SCHEMA,
    )

    lists = rec.customer_recommendations(
        _ranking(spark),
        _members(spark).filter("customer_id = 'c1'"),
        history,
        names,
        top_n=3,
        candidates=3,
        rules=rules,
    )

    assert_df_equality(lists, expected, ignore_row_order=True, ignore_nullable=True)


def test_popular_list_gives_the_segment_or_all_customers_first_n(spark):
    members = _members(spark).filter("customer_id IN ('c1', 'c3')")

    by_segment = popular_list(_ranking(spark), members, top_n=2, by_segment=True)
    overall = popular_list(_ranking(spark), members, top_n=2, by_segment=False)

    assert sorted(tuple(r) for r in by_segment.collect()) == [("c1", 1, "p2"), ("c1", 2, "p1")]
    assert sorted(tuple(r) for r in overall.collect()) == [
        ("c1", 1, "p1"),
        ("c1", 2, "p4"),
        ("c3", 1, "p1"),
        ("c3", 2, "p4"),
    ]


def test_recommender_keeps_the_history_of_the_given_customers_only(spark):
    lines = _lines(
        spark,
        [
            ("o1", "c1", D, "p1", 1.0, 10.0),
            ("o1", "c1", D, "p2", 1.0, 5.0),
            ("o2", "c1", D, "p1", 2.0, 20.0),  # p1 again: still one pair
            ("o3", "c2", D, "p3", 1.0, 3.0),  # c2 is not asked for
            ("o4", "c4", D, "p1", 1.0, 10.0),
        ],
    )
    asked_for = spark.createDataFrame([("c1",), ("c4",)], "customer_id string")
    expected = _history(spark, [("c1", "p1"), ("c1", "p2"), ("c4", "p1")])

    trained = rec.SegmentPurchases.assemble(
        lines, _segments(spark), Period(as_of=D), RecommendConfig(), history_of=asked_for
    )

    assert_df_equality(trained.history, expected, ignore_row_order=True, ignore_nullable=True)
    # the names and the top lists still count every customer's purchases (c2's p3 too)
    assert trained.names.count() == 3
    everyone = trained.ranking.filter(F.col(C.CLUSTER).isNull())
    assert sorted(tuple(r) for r in everyone.select(C.PRODUCT_ID, C.BUYERS).collect()) == [
        ("p1", 2),
        ("p2", 1),
        ("p3", 1),
    ]


def test_lines_without_a_product_are_refused_when_lists_are_required(spark):
    lines = _lines(spark, [("o1", "c1", D, None, 1.0, 10.0), ("o2", "c2", D, None, 2.0, 5.0)])
    purchases = rec.SegmentPurchases.assemble(
        lines, _segments(spark), Period(as_of=D), RecommendConfig()
    )

    with pytest.raises(InputError, match="order_lines has no purchases with a product"):
        purchases.require_lists()


def test_purchases_by_no_segmented_customer_are_refused_when_lists_are_required(spark):
    lines = _lines(spark, [("o1", "c9", D, "p1", 1.0, 10.0)])  # c9 has no segment
    purchases = rec.SegmentPurchases.assemble(
        lines, _segments(spark), Period(as_of=D), RecommendConfig()
    )

    with pytest.raises(InputError, match="no purchases by segmented customers in the 2 month"):
        purchases.require_lists()


def test_purchases_of_segmented_customers_pass_the_check(spark):
    lines = _lines(spark, [("o1", "c1", D, "p1", 1.0, 10.0)])
    purchases = rec.SegmentPurchases.assemble(
        lines, _segments(spark), Period(as_of=D), RecommendConfig()
    )

    assert purchases.require_lists() is purchases


# --- basket rules ----------------------------------------------------------------------------


def _baskets(spark, baskets: dict[str, str]):
    """Lines of customer c1 on day D: one per letter of each order's string."""
    return _lines(
        spark,
        [(o, "c1", D, item, 1.0, 1.0) for o, items in baskets.items() for item in items],
    )


@pytest.mark.parametrize("engine", baskets.RULES_ENGINES)
def test_basket_rules_match_hand_counted_support_confidence_and_lift(spark, engine):
    # 5 orders: {a b c} {a b} {a c} {b} {a b} (o5 has a twice). Support: a 4/5, b 4/5, c 2/5,
    # ab 3/5, ac 2/5, bc 1/5. With support >= 0.4 and confidence >= 0.6:
    # a->b 3/4 (lift 0.75/0.8), b->a 3/4, c->a 2/2 (lift 1/0.8); a->c is 2/4 < 0.6.
    lines = _baskets(spark, {"o1": "abc", "o2": "ab", "o3": "ac", "o4": "b", "o5": "aab"})
    expected = spark.createDataFrame(
        [
            (["a"], "b", 0.6, 0.75, 0.9375),
            (["b"], "a", 0.6, 0.75, 0.9375),
            (["c"], "a", 0.4, 1.0, 1.25),
        ],
        RULES_SCHEMA,
    )

    rules = baskets.basket_rules(lines, engine=engine, min_support=0.4, min_confidence=0.6)

    assert_approx_df_equality(rules, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_pair_rules_leave_out_the_rules_of_two_products_that_fpgrowth_finds(spark):
    # 4 orders: {a b c} x2, {a b}, {c}. Support: a 3/4, b 3/4, c 3/4, ab 3/4, ac 2/4, bc 2/4,
    # abc 2/4. At support >= 0.5, confidence >= 0.9: a->b 1, b->a 1, and {a b}->c 2/3 < 0.9,
    # {a c}->b 2/2 (lift 1/0.75), {b c}->a 2/2: FPGrowth has those two, pairs has not.
    lines = _baskets(spark, {"o1": "abc", "o2": "abc", "o3": "ab", "o4": "c"})
    pairs = [(["a"], "b", 0.75, 1.0, 4 / 3), (["b"], "a", 0.75, 1.0, 4 / 3)]
    triples = [(["a", "c"], "b", 0.5, 1.0, 4 / 3), (["b", "c"], "a", 0.5, 1.0, 4 / 3)]

    found = {
        engine: baskets.basket_rules(lines, engine=engine, min_support=0.5, min_confidence=0.9)
        for engine in baskets.RULES_ENGINES
    }

    assert_approx_df_equality(
        found["pairs"],
        spark.createDataFrame(pairs, RULES_SCHEMA),
        1e-9,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_approx_df_equality(
        found["fpgrowth"],
        spark.createDataFrame(pairs + triples, RULES_SCHEMA),
        1e-9,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_pair_rules_equal_fpgrowth_s_rules_of_one_product_on_online_retail(spark):
    # The SQL engine is the one Databricks serverless can run (no FPGrowthModel there): on the
    # 25,900 invoices of Online Retail it must give FPGrowth's single-product rules, no more and
    # no fewer, with the same support, confidence and lift. (FPGrowth finishes here: its work
    # follows the frequent itemsets, and at 1% support there are few, though one order holds
    # 428 frequent products.)
    path = shared_file("online_retail.parquet")
    bought = spark.read.parquet(str(path)).select(
        F.lit("online_retail").alias(C.SOURCE),
        F.col("InvoiceNo").cast("string").alias(C.ORDER_ID),
        F.col("StockCode").cast("string").alias(C.PRODUCT_ID),
    )
    settings = {"min_support": 0.01, "min_confidence": 0.3}

    pairs = baskets.pair_rules(bought, **settings)
    of_one = baskets.fpgrowth_rules(bought, **settings).filter(F.size(C.ANTECEDENT) == 1)

    assert pairs.count() > 50  # the two engines agree on a real number of rules, not on none
    assert_approx_df_equality(pairs, of_one, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_pair_rules_finish_on_baskets_that_hold_the_same_forty_products(spark):
    # 80 orders of the same 40 products: FPGrowth would enumerate 2**40 itemsets. Every
    # ordered pair is a rule held by every order: 40 * 39 = 1,560 rules, each of support 1,
    # confidence 1 and lift 1.
    products = [f"p{i:02d}" for i in range(40)]
    lines = _lines(
        spark, [(f"o{o}", f"c{o % 7}", D, p, 1.0, 1.0) for o in range(80) for p in products]
    )

    rules = baskets.basket_rules(lines, engine="pairs", min_support=0.01, min_confidence=0.2)

    found = rules.select(
        F.count("*"),
        F.count_distinct(F.col(C.ANTECEDENT)[0], C.CONSEQUENT),
        F.min(C.SUPPORT),
        F.max(C.SUPPORT),
        F.min(C.CONFIDENCE),
        F.min(C.LIFT),
        F.max(C.LIFT),
        F.max(F.size(C.ANTECEDENT)),
    ).first()
    assert tuple(found) == (1560, 1560, 1.0, 1.0, 1.0, 1.0, 1.0, 1)


def test_the_largest_frequent_basket_counts_only_frequent_products(spark):
    # 4 orders: {a b c d} {a b} {a c} {a}: a 4/4, b 2/4, c 2/4, d 1/4. At support >= 0.5 the
    # frequent products are a b c: o1 holds 3 of them (d is not frequent); at 0.9 only a.
    lines = _baskets(spark, {"o1": "abcd", "o2": "ab", "o3": "ac", "o4": "a"})

    at_half = baskets.largest_frequent_basket(lines, min_support=0.5).first()[0]
    at_most = baskets.largest_frequent_basket(lines, min_support=0.9).first()[0]
    nothing = baskets.largest_frequent_basket(lines.limit(0), min_support=0.5).first()[0]

    assert (at_half, at_most, nothing) == (3, 1, 0)


def test_basket_rules_reject_a_support_outside_0_1_and_an_unknown_engine(spark):
    lines = _lines(spark, [("o1", "c1", D, "a", 1.0, 1.0)])
    with pytest.raises(ValueError, match="min_support must be in"):
        baskets.basket_rules(lines, engine="pairs", min_support=0.0, min_confidence=0.5)
    with pytest.raises(ValueError, match="engine must be one of"):
        baskets.basket_rules(lines, engine="apriori", min_support=0.5, min_confidence=0.5)


def _purchases(spark, baskets: dict[str, str], **settings):
    return rec.SegmentPurchases.assemble(
        _baskets(spark, baskets), _segments(spark), Period(as_of=D), RecommendConfig(**settings)
    )


def test_fpgrowth_is_refused_before_it_starts_on_an_order_of_too_many_frequent_products(spark):
    baskets = {"o1": "abcdef", "o2": "abcdef", "o3": "ab"}
    purchases = _purchases(spark, baskets, rules_engine="fpgrowth", max_basket_items=5)

    refused = r"an order holds 6 products .*recommend.max_basket_items \(5\)"
    with pytest.raises(InputError, match=refused):
        purchases.basket_rules()


def test_fpgrowth_runs_when_every_order_is_within_the_bound(spark):
    purchases = _purchases(
        spark, {"o1": "ab", "o2": "ab"}, rules_engine="fpgrowth", max_basket_items=2
    )
    expected = spark.createDataFrame(
        [(["a"], "b", 1.0, 1.0, 1.0), (["b"], "a", 1.0, 1.0, 1.0)], RULES_SCHEMA
    )

    assert_approx_df_equality(
        purchases.basket_rules(), expected, 1e-9, ignore_row_order=True, ignore_nullable=True
    )


def test_no_basket_rules_are_computed_when_they_are_switched_off(spark):
    purchases = _purchases(spark, {"o1": "ab", "o2": "ab"}, use_basket_rules=False)

    rules = purchases.basket_rules()

    assert rules.columns == list(baskets.RULE_COLUMNS)
    assert rules.count() == 0


# --- evaluation ------------------------------------------------------------------------------


def test_relevant_products_keep_the_population_and_optionally_only_new_products(spark):
    test_lines = _lines(
        spark,
        [
            ("o1", "c1", D, "p1", 1.0, 1.0),
            ("o1", "c1", D, "p2", 1.0, 1.0),
            ("o2", "c2", D, "p1", 1.0, 1.0),
            ("o3", "c9", D, "p1", 1.0, 1.0),  # not in the population
        ],
    )
    population = spark.createDataFrame([("c1",), ("c2",)], "customer_id string")
    before = _history(spark, [("c1", "p1")])

    everything = relevant_products(test_lines, population)
    new = relevant_products(test_lines, population, new_only_given=before)

    assert sorted(tuple(r) for r in everything.collect()) == [
        ("c1", "p1"),
        ("c1", "p2"),
        ("c2", "p1"),
    ]
    assert sorted(tuple(r) for r in new.collect()) == [("c1", "p2"), ("c2", "p1")]


def test_ranking_metrics_match_precision_recall_and_map_computed_by_hand(spark):
    recommended = spark.createDataFrame(
        [
            ("u1", 1, "a"),
            ("u1", 2, "b"),
            ("u1", 3, "c"),
            ("u2", 1, "d"),
            ("u2", 2, "a"),
            ("u2", 3, "e"),
            ("u4", 1, "z"),  # u4 bought nothing in the test: not scored, not in coverage
        ],
        "customer_id string, rank int, product_id string",
    )
    relevant = spark.createDataFrame(
        [("u1", "a"), ("u1", "c"), ("u2", "a"), ("u3", "b")],  # u3 has no list: scores 0
        "customer_id string, product_id string",
    )
    # K=2: u1 hits a@1 -> P 1/2, R 1/2, AP 1/min(2,2) = 1/2; u2 hits a@2 -> P 1/2, R 1,
    #   AP (1/2)/min(2,1) = 1/2; u3 0. Means: P 1/3, R 1/2, MAP 1/3. Coverage {a,b,d} 3/10.
    # K=3: u1 hits a@1, c@3 -> P 2/3, R 1, AP (1 + 2/3)/2 = 5/6; u2 P 1/3, R 1, AP 1/2; u3 0.
    #   Means: P 1/3, R 2/3, MAP (5/6 + 1/2)/3 = 4/9. Coverage {a,b,c,d,e} 5/10.
    expected = spark.createDataFrame(
        [(2, 3, 1 / 3, 1 / 2, 1 / 3, 0.3), (3, 3, 1 / 3, 2 / 3, 4 / 9, 0.5)],
        METRICS_SCHEMA,
    )

    metrics = ranking_metrics(recommended, relevant, ks=[3, 2], catalogue_size=10)

    assert_approx_df_equality(metrics, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_score_recommenders_scores_each_list_apart_in_one_frame(spark):
    schema = "customer_id string, rank int, product_id string"
    lists = {
        "x": spark.createDataFrame([("u1", 1, "a"), ("u1", 2, "b"), ("u2", 1, "a")], schema),
        "y": spark.createDataFrame([("u3", 1, "b")], schema),
    }
    relevant = {
        "all": spark.createDataFrame(
            [("u1", "a"), ("u2", "c"), ("u3", "b")], "customer_id string, product_id string"
        )
    }
    # x: u1 hits a@1 (P 1/2, R 1, AP 1), u2 misses, u3 has no list: P 1/6, R 1/3, MAP 1/3,
    #    coverage {a, b} 2/4. y: only u3 hits b@1: the same means, coverage {b} 1/4.
    expected = spark.createDataFrame(
        [
            ("x", "all", 2, 3, 1 / 6, 1 / 3, 1 / 3, 0.5),
            ("y", "all", 2, 3, 1 / 6, 1 / 3, 1 / 3, 0.25),
        ],
        "recommender string, target string, k int, users long, precision_at_k double, "
        "recall_at_k double, map_at_k double, coverage double",
    )

    scored = score_recommenders(lists, relevant, ks=[2], catalogue_size=4)

    assert_approx_df_equality(scored, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_ranking_metrics_score_one_list_against_each_target_of_the_hits(spark):
    recommended = spark.createDataFrame(
        [("u1", 1, "a"), ("u1", 2, "b")], "customer_id string, rank int, product_id string"
    )
    relevant = spark.createDataFrame(
        [("all", "u1", "a"), ("all", "u1", "b"), ("new", "u1", "b")],
        "target string, customer_id string, product_id string",
    )
    # all: hits a@1, b@2 -> P 1, R 1, AP (1 + 2/2)/2 = 1. new: hits b@2 -> P 1/2, R 1,
    # AP (1/2)/min(2, 1) = 1/2. Both cover {a, b}: 2/4.
    expected = spark.createDataFrame(
        [("all", 2, 1, 1.0, 1.0, 1.0, 0.5), ("new", 2, 1, 0.5, 1.0, 0.5, 0.5)],
        "target string, k int, users long, precision_at_k double, recall_at_k double, "
        "map_at_k double, coverage double",
    )

    metrics = ranking_metrics(recommended, relevant, ks=[2], catalogue_size=4, keys=[C.TARGET])

    assert_approx_df_equality(metrics, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_ranking_metrics_with_nobody_to_score_give_null_means(spark):
    recommended = spark.createDataFrame(
        [("u1", 1, "a")], "customer_id string, rank int, product_id string"
    )
    relevant = spark.createDataFrame([], "customer_id string, product_id string")

    row = ranking_metrics(recommended, relevant, ks=[5], catalogue_size=3).first()

    assert (row[C.USERS], row[C.PRECISION_AT_K], row[C.COVERAGE]) == (0, None, 0.0)


def test_evaluation_lists_build_every_recommender_for_every_customer(spark):
    members = _members(spark).filter("customer_id IN ('c1', 'c3')")
    rules = spark.createDataFrame(
        [(["p2"], "p5", 0.1, 0.8, 2.0)],
        RULES_SCHEMA,
    )
    history = _history(spark, [("c1", "p2")])

    lists = evaluation_lists(
        _ranking(spark), members, history, _names(spark, NAMES), rules, top_n=2, candidates=3
    )

    ranked = {
        name: sorted(
            (r[C.CUSTOMER_ID], r[C.RANK], r[C.PRODUCT_ID])
            for r in df.select(C.CUSTOMER_ID, C.RANK, C.PRODUCT_ID).collect()
        )
        for name, df in lists.items()
    }
    assert list(lists) == list(RECOMMENDERS)
    # all customers: p1 p4 p2 p5; cluster 0 (c1): p2 p1 p3; c3's cluster 7 has no list
    assert ranked == {
        "global_popular": [("c1", 1, "p1"), ("c1", 2, "p4"), ("c3", 1, "p1"), ("c3", 2, "p4")],
        "segment_popular": [("c1", 1, "p2"), ("c1", 2, "p1")],
        # c1 bought p2, which is third on the all-customers list: p1 p4 are left as they are
        "global_not_bought": [
            ("c1", 1, "p1"),
            ("c1", 2, "p4"),
            ("c3", 1, "p1"),
            ("c3", 2, "p4"),
        ],
        # c1: cluster 0's list without p2; c3: the all-customers list
        "segment_not_bought": [("c1", 1, "p1"), ("c1", 2, "p3"), ("c3", 1, "p1"), ("c3", 2, "p4")],
        # c1 bought p2, and p2 -> p5 at 0.8 comes first; then the not-bought list
        "segment_not_bought_rules": [
            ("c1", 1, "p5"),
            ("c1", 2, "p1"),
            ("c3", 1, "p1"),
            ("c3", 2, "p4"),
        ],
    }


def test_evaluation_lists_leave_out_the_rules_recommender_without_rules(spark):
    lists = evaluation_lists(
        _ranking(spark),
        _members(spark),
        _history(spark, []),
        _names(spark, NAMES),
        None,
        top_n=2,
        candidates=3,
    )

    assert list(lists) == [name for name in RECOMMENDERS if name != "segment_not_bought_rules"]


def test_format_evaluation_prints_one_aligned_line_per_row():
    rows = [("global_popular", "all", 10, 1234, 0.5, 0.25, None, 0.125)]

    lines = format_evaluation(rows)

    assert lines[0].split() == [
        "recommender",
        "target",
        "K",
        "users",
        "prec@K",
        "recall@K",
        "MAP@K",
        "coverage",
    ]
    assert lines[1].split() == [
        "global_popular",
        "all",
        "10",
        "1,234",
        "0.5000",
        "0.2500",
        "-",
        "0.1250",
    ]


def test_evaluation_audience_is_the_segmented_customers_who_bought_in_the_test_weeks(spark):
    segments = _members(spark)  # c1, c2 in cluster 0; c3 in cluster 7
    relevant = _history(spark, [("c1", "p1"), ("c1", "p2"), ("c3", "p4"), ("c9", "p1")])
    expected = spark.createDataFrame([("c1", 0), ("c3", 7)], "customer_id string, cluster int")

    audience = evaluation_audience(segments, relevant)

    assert_df_equality(audience, expected, ignore_row_order=True, ignore_nullable=True)


def test_customer_sample_keeps_about_the_fraction_of_customers_with_all_their_rows(spark):
    rows = spark.range(10_000).selectExpr(
        "concat('c', id) AS customer_id", "explode(array('p1', 'p2')) AS product_id"
    )

    kept = customer_sample(rows, 0.3)

    per_customer = kept.groupBy(C.CUSTOMER_ID).count()
    assert 2_700 <= per_customer.count() <= 3_300
    assert per_customer.filter("count != 2").count() == 0


def test_customer_sample_is_the_same_whatever_the_partitioning(spark):
    rows = spark.range(2_000).selectExpr("concat('c', id) AS customer_id")

    one = customer_sample(rows.repartition(1), 0.5)
    seven = customer_sample(rows.repartition(7, C.CUSTOMER_ID), 0.5)

    assert_df_equality(one, seven, ignore_row_order=True)


def test_customer_sample_of_the_whole_keeps_everyone_and_refuses_nothing_or_more(spark):
    rows = spark.range(50).selectExpr("concat('c', id) AS customer_id")

    assert customer_sample(rows, 1.0).count() == 50
    with pytest.raises(ValueError, match="fraction"):
        customer_sample(rows, 0.0)
    with pytest.raises(ValueError, match="fraction"):
        customer_sample(rows, 1.5)
