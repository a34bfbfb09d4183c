"""Customer single view: each definition checked on a few orders worked out by hand."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F

from customer_analytics.config.schema import ExcludePeriod
from customer_analytics.core import columns as C
from customer_analytics.stages import features
from customer_analytics.stages.period import Period

ORDERS_DDL = (
    "order_id string, customer_id string, order_ts timestamp, order_date date, "
    "store_id string, country string, order_amount double, item_count double, is_return boolean"
)
LINES_DDL = (
    "order_id string, customer_id string, order_date date, store_id string, country string, "
    "product_id string, quantity double, is_return boolean"
)
AS_OF = date(2024, 1, 31)


def customer_features(orders, lines, period, **kwargs):
    """:func:`features.customer_features` with the lifetime (3 years) and time unit (days) the
    expected values are worked out with, unless given."""
    settings = {"expected_lifetime_years": 3.0, "time_unit": "day", **kwargs}
    return features.customer_features(orders, lines, period, **settings)


def order(order_id, customer, ts, amount, items=1.0, store="S1", is_return=False):
    return (order_id, customer, ts, ts.date(), store, "SG", amount, items, is_return)


def line(order_id, customer, day, product, store="S1", is_return=False):
    return (order_id, customer, day, store, "SG", product, 1.0, is_return)


@pytest.fixture
def orders(spark):
    return spark.createDataFrame(
        [
            # c1: three visits in ISO weeks 1, 2 and 5 of 2024, one return
            order("o1", "c1", datetime(2024, 1, 1, 10), 10.0, 2.0),
            order("o2", "c1", datetime(2024, 1, 8, 10), 20.0, 1.0),
            order("o3", "c1", datetime(2024, 1, 29, 9), 30.0, 3.0, store="S2"),
            order("r1", "c1", datetime(2024, 1, 15, 12), -5.0, -1.0, is_return=True),
            order("o8", "c1", datetime(2024, 2, 5, 9), 100.0, 1.0),  # after as_of: ignored
            # c2: one visit on as_of itself
            order("o4", "c2", datetime(2024, 1, 31, 18), 50.0, 5.0, store="S2"),
            # c3: two visits at the same moment: the tie is broken by order_id, newest first
            order("o5", "c3", datetime(2024, 1, 10, 12), 7.0, 1.0),
            order("o6", "c3", datetime(2024, 1, 10, 12), 9.0, 1.0),
            # a guest: not a customer
            order("o7", None, datetime(2024, 1, 20, 12), 99.0, 1.0),
        ],
        ORDERS_DDL,
    )


@pytest.fixture
def lines(spark):
    return spark.createDataFrame(
        [
            line("o1", "c1", date(2024, 1, 1), "P1"),
            line("o1", "c1", date(2024, 1, 1), "P2"),
            line("o2", "c1", date(2024, 1, 8), "P1"),
            line("o3", "c1", date(2024, 1, 29), "P3", store="S2"),
            line("r1", "c1", date(2024, 1, 15), "P9", is_return=True),  # a return: not bought
            line("o8", "c1", date(2024, 2, 5), "P8"),  # after as_of
            line("o4", "c2", date(2024, 1, 31), "P1", store="S2"),
            line("o5", "c3", date(2024, 1, 10), "P1"),
            line("o6", "c3", date(2024, 1, 10), "P1"),
        ],
        LINES_DDL,
    )


@pytest.fixture
def single_view(orders, lines):
    return customer_features(orders, lines, Period(AS_OF))


def pick(df, *columns):
    return df.select(C.CUSTOMER_ID, *columns)


def test_columns_keeps_only_those_and_computes_no_rfm_cut_points_unless_asked(spark, orders, lines):
    # recency: c1's last visit Jan 29, c2's on as_of (Jan 31), c3's Jan 10
    subset = customer_features(
        orders, lines, Period(AS_OF), columns=[C.CUSTOMER_ID, C.TOTAL_VISITS, C.RECENCY_DAYS]
    )

    expected = spark.createDataFrame(
        [("c1", 3, 2), ("c2", 1, 0), ("c3", 2, 21)],
        "customer_id string, total_visits long, recency_days int",
    )
    assert_df_equality(subset, expected, ignore_row_order=True, ignore_nullable=True)
    assert "percentile" not in subset._jdf.queryExecution().optimizedPlan().toString()


def test_columns_with_an_rfm_score_computes_the_scores(orders, lines):
    # recency 0, 2, 21: quintile cut points 0, 2, 2, 21; r_score = 5 - cut points exceeded
    subset = customer_features(orders, lines, Period(AS_OF), columns=[C.CUSTOMER_ID, C.R_SCORE])

    assert subset.columns == [C.CUSTOMER_ID, C.R_SCORE]
    assert {r[C.CUSTOMER_ID]: r[C.R_SCORE] for r in subset.collect()} == {
        "c1": 4,
        "c2": 5,
        "c3": 2,
    }


def test_columns_refuses_a_column_the_single_view_does_not_have(orders, lines):
    with pytest.raises(ValueError, match="not columns of customer_features"):
        customer_features(orders, lines, Period(AS_OF), columns=[C.CUSTOMER_ID, "x"])


def test_one_row_per_member_with_a_visit_and_as_of(single_view):
    rows = single_view.select(C.CUSTOMER_ID, C.AS_OF).orderBy(C.CUSTOMER_ID).collect()
    assert [tuple(r) for r in rows] == [("c1", AS_OF), ("c2", AS_OF), ("c3", AS_OF)]


def test_visits_spend_items_and_products_exclude_returns_and_later_orders(spark, single_view):
    expected = spark.createDataFrame(
        [("c1", 3, 60.0, 6.0, 3), ("c2", 1, 50.0, 5.0, 1), ("c3", 2, 16.0, 2.0, 1)],
        "customer_id string, total_visits long, total_spend double, total_items double, "
        "distinct_products long",
    )
    actual = pick(single_view, C.TOTAL_VISITS, C.TOTAL_SPEND, C.TOTAL_ITEMS, C.DISTINCT_PRODUCTS)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_weekly_averages_divide_by_weeks_with_a_visit_and_tenure(spark, single_view):
    # c1: 3 visits in 3 ISO weeks; tenure 30 days / 7; c2: tenure 0 days -> at least 1 week;
    # c3: 2 visits in 1 week; tenure 21 days = 3 weeks
    expected = spark.createDataFrame(
        [
            ("c1", 30 / 7, 3, 1.0, 20.0, 3 / (30 / 7)),
            ("c2", 1.0, 1, 1.0, 50.0, 1.0),
            ("c3", 3.0, 1, 2.0, 16.0, 2 / 3),
        ],
        "customer_id string, tenure_weeks double, active_weeks long, avg_weekly_visits double, "
        "avg_weekly_spend double, visits_per_tenure_week double",
    )
    actual = pick(
        single_view,
        C.TENURE_WEEKS,
        C.ACTIVE_WEEKS,
        C.AVG_WEEKLY_VISITS,
        C.AVG_WEEKLY_SPEND,
        C.VISITS_PER_TENURE_WEEK,
    )
    assert_approx_df_equality(actual, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_first_order_date_is_the_earliest_visit_inside_the_window(spark):
    orders = spark.createDataFrame(
        [
            # c1: a visit in the excluded 1-3 Jan and a return before the first visit
            order("o1", "c1", datetime(2024, 1, 2, 9), 5.0),
            order("r1", "c1", datetime(2024, 1, 4, 9), -5.0, -1.0, is_return=True),
            order("o2", "c1", datetime(2024, 1, 6, 9), 10.0),
            order("o3", "c1", datetime(2024, 1, 20, 9), 10.0),
            # c2: a visit before the 30 days up to 31 Jan (2 Jan .. 31 Jan)
            order("o4", "c2", datetime(2023, 12, 30, 9), 7.0),
            order("o5", "c2", datetime(2024, 1, 25, 9), 7.0),
        ],
        ORDERS_DDL,
    )
    expected = spark.createDataFrame(  # by hand: c1 from o2, c2 from o5
        [("c1", date(2024, 1, 6)), ("c2", date(2024, 1, 25))],
        "customer_id string, first_order_date date",
    )
    first_days = ExcludePeriod(start=date(2024, 1, 1), end=date(2024, 1, 3))
    result = customer_features(
        orders,
        spark.createDataFrame([], LINES_DDL),
        Period(AS_OF, lookback_days=30, exclude_periods=[first_days]),
    )
    actual = pick(result, C.FIRST_ORDER_DATE)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_last_order_date_is_the_latest_visit_up_to_as_of(spark):
    orders = spark.createDataFrame(
        [
            # c1: a return after the last visit, and a visit after as_of (31 Jan)
            order("o1", "c1", datetime(2024, 1, 5, 9), 10.0),
            order("o2", "c1", datetime(2024, 1, 20, 9), 10.0),
            order("r1", "c1", datetime(2024, 1, 28, 9), -10.0, -1.0, is_return=True),
            order("o3", "c1", datetime(2024, 2, 2, 9), 10.0),
            # c2: a visit on as_of itself counts, the one the day after does not
            order("o4", "c2", datetime(2024, 1, 31, 18), 7.0),
            order("o5", "c2", datetime(2024, 2, 1, 8), 7.0),
            # c3: only a return: no visit, so no row
            order("r2", "c3", datetime(2024, 1, 10, 9), -3.0, -1.0, is_return=True),
        ],
        ORDERS_DDL,
    )
    expected = spark.createDataFrame(  # by hand: c1 from o2, c2 from o4
        [("c1", date(2024, 1, 20)), ("c2", date(2024, 1, 31))],
        "customer_id string, last_order_date date",
    )
    result = customer_features(orders, spark.createDataFrame([], LINES_DDL), Period(AS_OF))
    actual = pick(result, C.LAST_ORDER_DATE)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_numeric_customer_features_are_the_numeric_columns_of_the_single_view(single_view):
    # what config lets segmentation use (columns.NUMERIC_CUSTOMER_FEATURES) is what the table has
    numeric = ("int", "bigint", "double")
    actual = [name for name, dtype in single_view.dtypes if dtype in numeric]
    others = {name: dtype for name, dtype in single_view.dtypes if dtype not in numeric}

    assert actual == C.NUMERIC_CUSTOMER_FEATURES
    assert set(others) == C.NON_NUMERIC_CUSTOMER_FEATURES
    assert set(others.values()) == {"string", "date"}


def test_basket_averages_arpu_and_unit_price(spark, single_view):
    expected = spark.createDataFrame(
        [("c1", 20.0, 20.0, 10.0, 2.0), ("c2", 50.0, 50.0, 10.0, 5.0), ("c3", 8.0, 8.0, 8.0, 1.0)],
        "customer_id string, avg_basket_spend double, arpu double, avg_unit_price double, "
        "avg_basket_items double",
    )
    actual = pick(single_view, C.AVG_BASKET_SPEND, C.ARPU, C.AVG_UNIT_PRICE, C.AVG_BASKET_ITEMS)
    assert_approx_df_equality(actual, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_last_and_previous_baskets_newest_first_with_ties_broken_by_order_id(spark, single_view):
    expected = spark.createDataFrame(
        [("c1", 30.0, 20.0, 10.0), ("c2", 50.0, None, None), ("c3", 9.0, 7.0, None)],
        "customer_id string, last_basket_spend double, prev1_basket_spend double, "
        "prev2_basket_spend double",
    )
    actual = pick(single_view, C.LAST_BASKET_SPEND, C.PREV1_BASKET_SPEND, C.PREV2_BASKET_SPEND)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_span_mtbp_and_recency_for_one_two_and_three_visits(spark, single_view):
    # c1: 1 Jan .. 29 Jan = 28 days over 2 gaps; c2: one visit -> no mtbp;
    # c3: two visits the same day -> a gap of 0 days
    expected = spark.createDataFrame(
        [("c1", 28, 14.0, 2), ("c2", 0, None, 0), ("c3", 0, 0.0, 21)],
        "customer_id string, visit_span_days int, mtbp_days double, recency_days int",
    )
    actual = pick(single_view, C.VISIT_SPAN_DAYS, C.MTBP_DAYS, C.RECENCY_DAYS)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_returns_are_counted_apart(spark, single_view):
    expected = spark.createDataFrame(
        [("c1", 1, 0.25, 5.0), ("c2", 0, 0.0, 0.0), ("c3", 0, 0.0, 0.0)],
        "customer_id string, return_orders long, return_rate double, returned_amount double",
    )
    actual = pick(single_view, C.RETURN_ORDERS, C.RETURN_RATE, C.RETURNED_AMOUNT)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_ltv_historic_is_spend_and_ltv_simple_the_textbook_formula(spark, single_view):
    # arpu * visits per tenure week * 52 * 3 years: c1 20 * 0.7 * 156; c3 8 * (2/3) * 156
    expected = spark.createDataFrame(
        [("c1", 60.0, 2184.0), ("c2", 50.0, 7800.0), ("c3", 16.0, 832.0)],
        "customer_id string, ltv_historic double, ltv_simple double",
    )
    actual = pick(single_view, C.LTV_HISTORIC, C.LTV_SIMPLE)
    assert_approx_df_equality(actual, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_btyd_summary_counts_repeat_days_in_days_and_weeks(spark, orders, lines):
    # c1: purchase days 1, 8, 29 Jan -> frequency 2, recency 28, T 30, monetary (20 + 30) / 2
    # c3: one purchase day -> frequency 0 and monetary 0 (lifetimes' convention)
    expected_days = spark.createDataFrame(
        [("c1", 2.0, 28.0, 30.0, 25.0), ("c2", 0.0, 0.0, 0.0, 0.0), ("c3", 0.0, 0.0, 21.0, 0.0)],
        "customer_id string, frequency double, recency double, T double, monetary_value double",
    )
    in_days = customer_features(orders, lines, Period(AS_OF), time_unit="day")
    in_weeks = customer_features(orders, lines, Period(AS_OF), time_unit="week")
    cols = (C.FREQUENCY, C.RECENCY, C.T, C.MONETARY_VALUE)

    assert_df_equality(
        pick(in_days, *cols), expected_days, ignore_row_order=True, ignore_nullable=True
    )
    expected_weeks = expected_days.select(
        C.CUSTOMER_ID, C.FREQUENCY, F.col(C.RECENCY) / 7, F.col(C.T) / 7, C.MONETARY_VALUE
    ).toDF(C.CUSTOMER_ID, *cols)
    assert_approx_df_equality(
        pick(in_weeks, *cols), expected_weeks, 1e-9, ignore_row_order=True, ignore_nullable=True
    )


def test_monthly_spend_and_its_trend(spark):
    # months Jan, Feb, Apr 2024 with spend 100, 50 + 100, 300: x = 0, 1, 3; the slope is
    # sum(dx * dy) / sum(dx^2) = (2850 / 9) / (42 / 9) = 475 / 7
    orders = spark.createDataFrame(
        [
            order("a", "c4", datetime(2024, 1, 5), 100.0),
            order("b", "c4", datetime(2024, 2, 5), 50.0),
            order("c", "c4", datetime(2024, 2, 20), 100.0),
            order("d", "c4", datetime(2024, 4, 1), 300.0),
            order("e", "c5", datetime(2024, 4, 1), 10.0),
        ],
        ORDERS_DDL,
    )
    lines = orders.select(
        C.ORDER_ID, C.CUSTOMER_ID, C.ORDER_DATE, F.lit("P").alias(C.PRODUCT_ID), C.IS_RETURN
    )
    result = customer_features(orders, lines, Period(date(2024, 4, 30)))
    expected = spark.createDataFrame(
        [("c4", 3, 550 / 3, 475 / 7), ("c5", 1, 10.0, None)],
        "customer_id string, active_months long, avg_monthly_spend double, spend_trend double",
    )
    actual = pick(result, C.ACTIVE_MONTHS, C.AVG_MONTHLY_SPEND, C.SPEND_TREND)
    assert_approx_df_equality(actual, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_rfm_scores_at_quintile_boundaries(spark):
    # five customers: cut points are the values at ranks 1..4; a value equal to a cut point
    # takes the lower bucket, so recency 0 scores 5 and recency 40 scores 1
    frame = spark.createDataFrame(
        [
            ("a", 0, 5, 500.0),
            ("b", 10, 4, 400.0),
            ("c", 20, 3, 300.0),
            ("d", 30, 2, 200.0),
            ("e", 40, 1, 100.0),
        ],
        "customer_id string, recency_days int, total_visits long, total_spend double",
    )
    expected = spark.createDataFrame(
        [
            ("a", 5, 5, 5, 15, "Champions"),
            ("b", 4, 4, 4, 12, "Champions"),
            ("c", 3, 3, 3, 9, "Loyal customers"),
            ("d", 2, 2, 2, 6, "Lapsed"),
            ("e", 1, 1, 1, 3, "Lapsed"),
        ],
        "customer_id string, r_score int, f_score int, m_score int, rfm_score int, "
        "rfm_segment string",
    )
    actual = features.rfm_scores(frame).select(
        C.CUSTOMER_ID, C.R_SCORE, C.F_SCORE, C.M_SCORE, C.RFM_SCORE, C.RFM_SEGMENT
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_ties_share_a_score(spark):
    # four customers with one visit and one with five: the cut points (values at ranks 1..4 of
    # 1 1 1 1 5) are all 1, so the four share score 1 and the fifth is above all four: 5
    frame = spark.createDataFrame(
        [
            ("a", 1, 1, 10.0),
            ("b", 1, 1, 10.0),
            ("c", 1, 1, 10.0),
            ("d", 1, 1, 10.0),
            ("e", 1, 5, 10.0),
        ],
        "customer_id string, recency_days int, total_visits long, total_spend double",
    )
    scores = {
        r[0]: r[1] for r in features.rfm_scores(frame).select(C.CUSTOMER_ID, C.F_SCORE).collect()
    }
    assert scores == {"a": 1, "b": 1, "c": 1, "d": 1, "e": 5}


def test_earlier_as_of_ignores_later_orders_like_a_run_on_that_day(orders, lines):
    backfill = customer_features(orders, lines, Period(date(2024, 1, 10)))
    on_the_day = customer_features(
        orders.filter(F.col(C.ORDER_DATE) <= date(2024, 1, 10)),
        lines.filter(F.col(C.ORDER_DATE) <= date(2024, 1, 10)),
        Period(date(2024, 1, 10)),
    )
    assert_df_equality(backfill, on_the_day, ignore_row_order=True)
    assert sorted(r[0] for r in backfill.select(C.CUSTOMER_ID).collect()) == ["c1", "c3"]


def test_excluded_periods_and_lookback_restrict_the_orders(orders, lines):
    excluded = customer_features(
        orders,
        lines,
        Period(
            AS_OF, exclude_periods=[ExcludePeriod(start=date(2024, 1, 1), end=date(2024, 1, 9))]
        ),
    )
    looked_back = customer_features(orders, lines, Period(AS_OF, lookback_days=3))

    c1 = excluded.filter(F.col(C.CUSTOMER_ID) == "c1").first()
    assert (c1[C.TOTAL_VISITS], c1[C.TOTAL_SPEND]) == (1, 30.0)
    # lookback 3 days: 29, 30, 31 Jan -> c1's o3 and c2's o4
    rows = looked_back.select(C.CUSTOMER_ID, C.TOTAL_VISITS).orderBy(C.CUSTOMER_ID).collect()
    assert [tuple(r) for r in rows] == [("c1", 1), ("c2", 1)]


def test_attributes_are_the_latest_seen_up_to_as_of_and_store_the_most_visited(spark, lines):
    attributes = "price_sensitivity string, lifestage string"
    orders = spark.createDataFrame(
        [
            # c1 moves from MY to SG; the TH order and its lifestage come after as_of
            (
                *order("o1", "c1", datetime(2024, 1, 1, 10), 10.0)[:5],
                "MY",
                10.0,
                1.0,
                False,
                "LA",
                "YF",
            ),
            (
                *order("o2", "c1", datetime(2024, 1, 8, 10), 20.0)[:5],
                "SG",
                20.0,
                1.0,
                False,
                None,
                None,
            ),
            (
                *order("o3", "c1", datetime(2024, 1, 29, 9), 30.0, store="S2")[:5],
                None,
                30.0,
                1.0,
                False,
                "MM",
                None,
            ),
            (
                *order("o8", "c1", datetime(2024, 2, 5, 9), 100.0)[:5],
                "TH",
                100.0,
                1.0,
                False,
                "UM",
                "OF",
            ),
            (
                *order("o4", "c2", datetime(2024, 1, 31, 18), 50.0)[:5],
                None,
                50.0,
                1.0,
                False,
                None,
                None,
            ),
        ],
        f"{ORDERS_DDL}, {attributes}",
    )

    result = customer_features(orders, lines, Period(AS_OF))

    # c1: country SG (o2; o3 has none), price_sensitivity MM (o3), lifestage YF (o1);
    # store S1: two of three visits
    expected = spark.createDataFrame(
        [("c1", "S1", "SG", "MM", "YF"), ("c2", "S1", None, None, None)],
        "customer_id string, store_id string, country string, price_sensitivity string, "
        "lifestage string",
    )
    actual = pick(result, C.STORE_ID, C.COUNTRY, C.PRICE_SENSITIVITY, C.LIFESTAGE)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_attributes_the_orders_lack_are_null(single_view):
    rows = single_view.select(C.PRICE_SENSITIVITY, C.LIFESTAGE).distinct().collect()
    assert [tuple(r) for r in rows] == [(None, None)]


def test_bad_parameters_are_rejected(orders, lines):
    with pytest.raises(ValueError, match="time_unit must be one of"):
        customer_features(orders, lines, Period(AS_OF), time_unit="month")
    with pytest.raises(ValueError, match="lookback_days must be >= 1"):
        Period(AS_OF, lookback_days=0)


def test_monthly_sales_per_month_store_and_country(spark, orders, lines):
    result = features.monthly_sales(orders, lines, as_of=AS_OF)

    everything = result.filter(F.col(C.GROUPING) == "all").collect()
    assert len(everything) == 1
    jan = everything[0]
    # January visits: o1 o2 o3 o4 o5 o6 and the guest's o7; r1 is a return
    assert (jan[C.MONTH], jan[C.ORDERS], jan[C.RETURNS]) == (date(2024, 1, 1), 7, 1)
    assert jan[C.REVENUE] == pytest.approx(10 + 20 + 30 + 50 + 7 + 9 + 99)
    assert jan[C.CUSTOMERS] == 3 and jan[C.NEW_CUSTOMERS] == 3
    assert jan[C.RETURNING_CUSTOMERS] == 0
    assert jan[C.AVG_ORDER_VALUE] == pytest.approx(225 / 7)
    # January lines that are not returns: P1 P2 P1 P3 P1 P1 P1, one unit each
    assert (jan[C.QUANTITY], jan[C.DISTINCT_PRODUCTS]) == (7.0, 3)
    stores = {
        r[C.STORE_ID]: r[C.ORDERS] for r in result.filter(F.col(C.GROUPING) == "store").collect()
    }
    assert stores == {"S1": 5, "S2": 2}


def test_returning_customers_are_those_first_seen_in_an_earlier_month(spark):
    orders = spark.createDataFrame(
        [
            order("a", "c1", datetime(2024, 1, 5), 10.0),
            order("b", "c1", datetime(2024, 2, 5), 10.0),
            order("c", "c2", datetime(2024, 2, 6), 10.0),
        ],
        ORDERS_DDL,
    )
    lines = orders.select(
        C.ORDER_ID,
        C.CUSTOMER_ID,
        C.ORDER_DATE,
        C.STORE_ID,
        C.COUNTRY,
        F.lit("P").alias(C.PRODUCT_ID),
        F.lit(2.0).alias(C.QUANTITY),
        C.IS_RETURN,
    )
    result = features.monthly_sales(orders, lines, as_of=date(2024, 2, 29))
    feb = result.filter((F.col(C.GROUPING) == "all") & (F.col(C.MONTH) == date(2024, 2, 1)))
    row = feb.first()

    assert (row[C.CUSTOMERS], row[C.NEW_CUSTOMERS], row[C.RETURNING_CUSTOMERS]) == (2, 1, 1)
    assert row[C.QUANTITY] == 4.0
