"""
Customer single view: one row per member as of a date (SPEC section 3), and monthly sales
(SPEC section 7).

``as_of`` is the last day observed (inclusive), the ``observation_period_end`` of
``lifetimes``: orders after it are ignored, and recency and ``T`` count days up to it. Features
for an earlier ``as_of`` are recomputed from the same tables, so a backfill gives the answer a
run on that day would have given.

A *visit* is a non-return order of a member; returns are counted apart (``return_orders``,
``return_rate``, ``returned_amount``). A customer appears when they have at least one visit
inside the window (``as_of``, ``lookback_days``, excluded periods). Every feature comes from a
few aggregations over ``orders`` grouped by customer (the last three baskets from each
customer's visits sorted newest first, no window), one over ``order_lines`` for
distinct products, and one tiny aggregation for the RFM cut points, joined on
``customer_id``. Nothing is collected to the driver.

Choices where the seeds differ or are silent:

- ``tenure_weeks`` is ``max(1, days from first visit to as_of / 7)``, a fraction.
- ``active_weeks`` counts ISO year-weeks with a visit; ``avg_weekly_*`` divide by it.
- ``mtbp_days`` is ``visit_span_days / (total_visits - 1)``, null for one visit.
- ``avg_monthly_spend`` is spend per month with a visit; ``spend_trend`` is the slope
  (``regr_slope``) of the spend of those months over their month number; null for one month.
- ``return_rate`` is ``return_orders / (total_visits + return_orders)``;
  ``returned_amount`` is the positive sum of the return orders' amounts.
- RFM: quintile cut points (20/40/60/80th percentiles, ``percentile_approx``) of
  ``recency_days``, ``total_visits`` and ``total_spend`` over all customers. A value above
  ``k`` cut points scores ``1 + k`` for F and M and ``5 - k`` for R (recent is good); a
  value equal to a cut point takes the lower bucket. ``rfm_score`` is ``r + f + m`` (3..15);
  ``rfm_segment`` names the R/F cell (see :data:`RFM_SEGMENTS`).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from customer_analytics import columns as C
from customer_analytics.period import Period

QUINTILES = [0.2, 0.4, 0.6, 0.8]
_FIRST_DAY, _LAST_DAY, _REPEAT_SPEND = "_first_day", "_last_day", "_repeat_spend"
PERCENTILE_ACCURACY = 10_000
PERIOD_DAYS = {"day": 1.0, "week": 7.0}

#: (name, condition on r_score and f_score), tried in order; the last always matches.
RFM_SEGMENTS: list[tuple[str, str]] = [
    ("Champions", "r_score >= 4 AND f_score >= 4"),
    ("Loyal customers", "r_score >= 3 AND f_score >= 3"),
    ("New or promising", "r_score >= 4"),
    ("At risk", "r_score <= 2 AND f_score >= 3"),
    ("Lapsed", "r_score <= 2"),
    ("Need attention", "true"),
]

RFM_COLUMNS = (C.R_SCORE, C.F_SCORE, C.M_SCORE, C.RFM_SCORE, C.RFM_SEGMENT)

CUSTOMER_FEATURE_COLUMNS = C.CUSTOMER_FEATURE_COLUMNS


def last_order_date(orders: DataFrame) -> date | None:
    """The date of the last order (the default ``as_of``); one tiny aggregation."""
    return orders.agg(F.max(C.ORDER_DATE)).first()[0]


def customer_features(orders: DataFrame, order_lines: DataFrame, period: Period, **kwargs):
    """
    The customer single view of a period: :func:`base_customer_features` (same parameters)
    with the RFM scores of :func:`rfm_scores`.

    Returns
    -------
    DataFrame
        One row per member with a visit in the window, columns
        :data:`CUSTOMER_FEATURE_COLUMNS` (see the module docstring for definitions).
    """
    return with_rfm_scores(base_customer_features(orders, order_lines, period, **kwargs))


def with_rfm_scores(base: DataFrame) -> DataFrame:
    """Add the RFM columns to :func:`base_customer_features` and order the columns."""
    return rfm_scores(base).select(*CUSTOMER_FEATURE_COLUMNS)


def base_customer_features(
    orders: DataFrame,
    order_lines: DataFrame,
    period: Period,
    *,
    expected_lifetime_years: float = 3.0,
    time_unit: str = "day",
) -> DataFrame:
    """
    The customer single view of ``period``, all but the RFM scores (see
    :func:`customer_features`; a job persists this frame because the RFM cut points and the
    scores both read it).

    Parameters
    ----------
    orders : DataFrame
        The ``orders`` table: ``order_id``, ``customer_id`` (null = guest, ignored),
        ``order_ts``, ``order_date``, ``store_id``, ``country``, ``order_amount``,
        ``item_count``, ``is_return``, and optionally ``price_sensitivity`` and ``lifestage``.
    order_lines : DataFrame
        The ``order_lines`` table: ``customer_id``, ``order_date``, ``product_id``,
        ``is_return``.
    period : Period
        ``as_of`` (the last day observed, inclusive), lookback and excluded periods: the
        behaviour features use the modelled orders (:meth:`Period.modelled`); the attributes
        ``country``, ``price_sensitivity`` and ``lifestage`` are each customer's latest value
        on or before ``as_of`` (:meth:`Period.observed`), never one from after it.
    expected_lifetime_years : float
        Years of the textbook ``ltv_simple`` (must be > 0).
    time_unit : {"day", "week"}
        Unit of the BTYD ``recency`` and ``T`` (days, or days / 7): ``clv.period``.

    Returns
    -------
    DataFrame
        One row per member with a visit in the period, columns
        :data:`CUSTOMER_FEATURE_COLUMNS` but the RFM scores (see the module docstring).
    """
    if time_unit not in PERIOD_DAYS:
        raise ValueError(f"time_unit must be one of {sorted(PERIOD_DAYS)}, got {time_unit!r}")
    if expected_lifetime_years <= 0:
        raise ValueError(f"expected_lifetime_years must be > 0, got {expected_lifetime_years}")
    as_of = period.as_of
    member_orders = period.modelled(orders).filter(F.col(C.CUSTOMER_ID).isNotNull())
    visits = member_orders.filter(~F.col(C.IS_RETURN))
    returns = member_orders.filter(F.col(C.IS_RETURN))

    features = (
        _visit_aggregates(visits)
        .join(_btyd_summary(visits, as_of, PERIOD_DAYS[time_unit]), C.CUSTOMER_ID, "left")
        .join(_monthly_trend(visits), C.CUSTOMER_ID, "left")
        .join(_return_aggregates(returns), C.CUSTOMER_ID, "left")
        .join(_distinct_products(period.modelled(order_lines)), C.CUSTOMER_ID, "left")
        .join(latest_attributes(period.observed(orders)), C.CUSTOMER_ID, "left")
    )
    features = _derived(features, as_of, expected_lifetime_years)
    return features.select(*[c for c in CUSTOMER_FEATURE_COLUMNS if c not in RFM_COLUMNS])


def latest_attributes(orders: DataFrame) -> DataFrame:
    """
    Each member's latest non-null ``country``, ``price_sensitivity`` and ``lifestage`` in
    ``orders`` (by ``order_ts``, then ``order_id``); an attribute ``orders`` lacks is null.

    Returns
    -------
    DataFrame
        ``customer_id``, ``country``, ``price_sensitivity``, ``lifestage``.
    """
    members = orders.filter(F.col(C.CUSTOMER_ID).isNotNull())

    def latest(name: str) -> Column:
        if name not in orders.columns:
            return F.lit(None).cast("string").alias(name)
        seen_at = F.when(F.col(name).isNotNull(), F.struct(C.ORDER_TS, C.ORDER_ID))
        return F.max_by(F.col(name), seen_at).alias(name)

    return members.groupBy(C.CUSTOMER_ID).agg(
        *[latest(name) for name in (C.COUNTRY, C.PRICE_SENSITIVITY, C.LIFESTAGE)]
    )


def _visit_aggregates(visits: DataFrame) -> DataFrame:
    order_date = F.col(C.ORDER_DATE)
    iso_week = F.concat_ws(
        "-", F.extract(F.lit("YEAROFWEEK"), order_date), F.weekofyear(order_date)
    )
    visit = F.struct(C.ORDER_TS, C.ORDER_ID, C.ORDER_AMOUNT)
    newest_first = F.sort_array(F.collect_list(visit), asc=False)

    def nth_basket(n: int) -> Column:
        return F.get(newest_first, n - 1)[C.ORDER_AMOUNT]

    # size(collect_set(x)) instead of count_distinct: several distinct counts in one
    # aggregation make Spark expand every row once per distinct column and aggregate twice.
    def distinct_count(column: Column) -> Column:
        return F.size(F.collect_set(column)).cast("long")

    return visits.groupBy(C.CUSTOMER_ID).agg(
        distinct_count(F.col(C.ORDER_ID)).alias(C.TOTAL_VISITS),
        F.sum(C.ORDER_AMOUNT).alias(C.TOTAL_SPEND),
        F.sum(C.ITEM_COUNT).alias(C.TOTAL_ITEMS),
        F.min(C.ORDER_DATE).alias(C.FIRST_ORDER_DATE),
        F.max(C.ORDER_DATE).alias(C.LAST_ORDER_DATE),
        distinct_count(iso_week).alias(C.ACTIVE_WEEKS),
        distinct_count(F.trunc(order_date, "month")).alias(C.ACTIVE_MONTHS),
        nth_basket(1).alias(C.LAST_BASKET_SPEND),
        nth_basket(2).alias(C.PREV1_BASKET_SPEND),
        nth_basket(3).alias(C.PREV2_BASKET_SPEND),
        F.mode(F.col(C.STORE_ID), deterministic=True).alias(C.STORE_ID),
    )


def _btyd_summary(visits: DataFrame, as_of: date, period_days: float) -> DataFrame:
    """``lifetimes.utils.summary_data_from_transaction_data`` with ``freq="D"``."""
    daily = visits.groupBy(C.CUSTOMER_ID, C.ORDER_DATE).agg(
        F.sum(C.ORDER_AMOUNT).alias(C.PERIOD_SPEND)
    )
    summary = daily.groupBy(C.CUSTOMER_ID).agg(
        (F.count(F.lit(1)) - 1).cast("double").alias(C.FREQUENCY),
        F.min(C.ORDER_DATE).alias(_FIRST_DAY),
        F.max(C.ORDER_DATE).alias(_LAST_DAY),
        (F.sum(C.PERIOD_SPEND) - F.min_by(C.PERIOD_SPEND, C.ORDER_DATE)).alias(_REPEAT_SPEND),
    )
    frequency = F.col(C.FREQUENCY)
    return summary.select(
        C.CUSTOMER_ID,
        frequency,
        (F.datediff(_LAST_DAY, _FIRST_DAY) / period_days).alias(C.RECENCY),
        (F.datediff(F.lit(as_of), _FIRST_DAY) / period_days).alias(C.T),
        F.when(frequency > 0, F.col(_REPEAT_SPEND) / frequency)
        .otherwise(F.lit(0.0))
        .alias(C.MONETARY_VALUE),
    )


def _monthly_trend(visits: DataFrame) -> DataFrame:
    order_date = F.col(C.ORDER_DATE)
    month_index = F.year(order_date) * 12 + F.month(order_date)
    monthly = visits.groupBy(C.CUSTOMER_ID, month_index.alias(C.MONTH_INDEX)).agg(
        F.sum(C.ORDER_AMOUNT).alias(C.MONTH_SPEND)
    )
    return monthly.groupBy(C.CUSTOMER_ID).agg(
        F.avg(C.MONTH_SPEND).alias(C.AVG_MONTHLY_SPEND),
        F.regr_slope(F.col(C.MONTH_SPEND), F.col(C.MONTH_INDEX).cast("double")).alias(
            C.SPEND_TREND
        ),
    )


def _return_aggregates(returns: DataFrame) -> DataFrame:
    return returns.groupBy(C.CUSTOMER_ID).agg(
        F.count_distinct(C.ORDER_ID).cast("long").alias(C.RETURN_ORDERS),
        F.sum(F.abs(C.ORDER_AMOUNT)).alias(C.RETURNED_AMOUNT),
    )


def _distinct_products(lines: DataFrame) -> DataFrame:
    bought = lines.filter(F.col(C.CUSTOMER_ID).isNotNull() & ~F.col(C.IS_RETURN))
    return bought.groupBy(C.CUSTOMER_ID).agg(
        F.count_distinct(C.PRODUCT_ID).cast("long").alias(C.DISTINCT_PRODUCTS)
    )


def _derived(features: DataFrame, as_of: date, lifetime_years: float) -> DataFrame:
    visits = F.col(C.TOTAL_VISITS)
    spend = F.col(C.TOTAL_SPEND)
    span = F.datediff(C.LAST_ORDER_DATE, C.FIRST_ORDER_DATE)
    tenure = F.greatest(F.lit(1.0), F.datediff(F.lit(as_of), C.FIRST_ORDER_DATE) / 7.0)
    return_orders = F.coalesce(F.col(C.RETURN_ORDERS), F.lit(0)).cast("long")
    per_visit = spend / visits
    return features.withColumns(
        {
            C.AS_OF: F.lit(as_of),
            C.TENURE_WEEKS: tenure,
            C.AVG_WEEKLY_VISITS: visits / F.col(C.ACTIVE_WEEKS),
            C.AVG_WEEKLY_SPEND: spend / F.col(C.ACTIVE_WEEKS),
            C.VISITS_PER_TENURE_WEEK: visits / tenure,
            C.AVG_BASKET_SPEND: per_visit,
            C.ARPU: per_visit,
            C.AVG_UNIT_PRICE: F.when(F.col(C.TOTAL_ITEMS) != 0, spend / F.col(C.TOTAL_ITEMS)),
            C.AVG_BASKET_ITEMS: F.col(C.TOTAL_ITEMS) / visits,
            C.VISIT_SPAN_DAYS: span,
            C.MTBP_DAYS: F.when(visits > 1, span / (visits - 1)),
            C.RECENCY_DAYS: F.datediff(F.lit(as_of), C.LAST_ORDER_DATE),
            C.RETURN_ORDERS: return_orders,
            C.RETURN_RATE: return_orders / (visits + return_orders),
            C.RETURNED_AMOUNT: F.coalesce(F.col(C.RETURNED_AMOUNT), F.lit(0.0)),
            C.LTV_HISTORIC: spend,
            C.LTV_SIMPLE: per_visit * (visits / tenure) * 52.0 * lifetime_years,
            C.DISTINCT_PRODUCTS: F.coalesce(F.col(C.DISTINCT_PRODUCTS), F.lit(0)).cast("long"),
        }
    )


def rfm_scores(features: DataFrame) -> DataFrame:
    """
    Add ``r_score``, ``f_score``, ``m_score`` (1-5), ``rfm_score`` and ``rfm_segment``.

    Needs ``recency_days``, ``total_visits``, ``total_spend``. The quintile cut points are
    computed once, in one aggregation, and applied through a one-row broadcast join.
    """
    cuts = features.agg(
        *[
            F.percentile_approx(F.col(name), QUINTILES, PERCENTILE_ACCURACY).alias(f"_cuts_{name}")
            for name in (C.RECENCY_DAYS, C.TOTAL_VISITS, C.TOTAL_SPEND)
        ]
    )

    def above(name: str) -> Column:
        value = F.col(name)
        return F.size(F.filter(F.col(f"_cuts_{name}"), lambda cut: value > cut))

    scored = features.crossJoin(F.broadcast(cuts)).select(
        "*",
        (5 - above(C.RECENCY_DAYS)).alias(C.R_SCORE),
        (1 + above(C.TOTAL_VISITS)).alias(C.F_SCORE),
        (1 + above(C.TOTAL_SPEND)).alias(C.M_SCORE),
    )
    segment = F.lit(None).cast("string")
    for name, condition in reversed(RFM_SEGMENTS):
        segment = F.when(F.expr(condition), F.lit(name)).otherwise(segment)
    return scored.select(
        *features.columns,
        C.R_SCORE,
        C.F_SCORE,
        C.M_SCORE,
        (F.col(C.R_SCORE) + F.col(C.F_SCORE) + F.col(C.M_SCORE)).alias(C.RFM_SCORE),
        segment.alias(C.RFM_SEGMENT),
    )


def monthly_sales(orders: DataFrame, order_lines: DataFrame, *, as_of: date) -> DataFrame:
    """
    Sales per month, per month and store, and per month and country (seeds 003, 004).

    Parameters
    ----------
    orders, order_lines : DataFrame
        The ``orders`` and ``order_lines`` tables; orders after ``as_of`` are ignored.

    Returns
    -------
    DataFrame
        ``month`` (first day), ``store_id`` and ``country`` (null where the row is the total
        over them), ``grouping`` (``all``, ``store`` or ``country``), ``orders`` (non-return
        orders), ``customers`` (distinct members with a visit), ``revenue`` (their order
        amounts), ``avg_order_value``, ``quantity`` and ``distinct_products`` (non-return
        lines), ``new_customers`` (members whose first visit ever is in the month),
        ``returning_customers``, ``returns`` (return orders).
    """
    month = F.trunc(F.col(C.ORDER_DATE), "month")
    dated = orders.filter(F.col(C.ORDER_DATE) <= F.lit(as_of)).withColumn(C.MONTH, month)
    visit = ~F.col(C.IS_RETURN)
    member_visit = visit & F.col(C.CUSTOMER_ID).isNotNull()
    first_months = (
        dated.filter(member_visit).groupBy(C.CUSTOMER_ID).agg(F.min(C.MONTH).alias(C.FIRST_MONTH))
    )
    with_first = dated.join(first_months, C.CUSTOMER_ID, "left")
    sets = [[C.MONTH], [C.MONTH, C.STORE_ID], [C.MONTH, C.COUNTRY]]
    order_side = with_first.groupingSets(sets, C.MONTH, C.STORE_ID, C.COUNTRY).agg(
        F.grouping_id().alias("_gid"),
        F.count_distinct(F.when(visit, F.col(C.ORDER_ID))).cast("long").alias(C.ORDERS),
        F.count_distinct(F.when(member_visit, F.col(C.CUSTOMER_ID)))
        .cast("long")
        .alias(C.CUSTOMERS),
        F.sum(F.when(visit, F.col(C.ORDER_AMOUNT))).alias(C.REVENUE),
        F.count_distinct(
            F.when(member_visit & (F.col(C.MONTH) == F.col(C.FIRST_MONTH)), F.col(C.CUSTOMER_ID))
        )
        .cast("long")
        .alias(C.NEW_CUSTOMERS),
        F.count_distinct(F.when(~visit, F.col(C.ORDER_ID))).cast("long").alias(C.RETURNS),
    )
    lines = order_lines.filter((F.col(C.ORDER_DATE) <= F.lit(as_of)) & ~F.col(C.IS_RETURN))
    line_side = (
        lines.withColumn(C.MONTH, month)
        .groupingSets(sets, C.MONTH, C.STORE_ID, C.COUNTRY)
        .agg(
            F.grouping_id().alias("_gid"),
            F.sum(C.QUANTITY).alias(C.QUANTITY),
            F.count_distinct(C.PRODUCT_ID).cast("long").alias(C.DISTINCT_PRODUCTS),
        )
    )
    keys = ["_gid", C.MONTH, C.STORE_ID, C.COUNTRY]
    joined = order_side.alias("o").join(
        line_side.alias("l"),
        [F.col(f"o.{k}").eqNullSafe(F.col(f"l.{k}")) for k in keys],
        "left",
    )
    # grouping_id bits (month, store_id, country): 0b011 all, 0b001 per store, 0b010 per country
    grouping = (
        F.when(F.col("o._gid") == 3, F.lit("all"))
        .when(F.col("o._gid") == 1, F.lit("store"))
        .otherwise(F.lit("country"))
    )
    return joined.select(
        F.col(f"o.{C.MONTH}").alias(C.MONTH),
        F.col(f"o.{C.STORE_ID}").alias(C.STORE_ID),
        F.col(f"o.{C.COUNTRY}").alias(C.COUNTRY),
        grouping.alias(C.GROUPING),
        F.col(C.ORDERS),
        F.col(C.CUSTOMERS),
        F.col(C.REVENUE),
        (F.col(C.REVENUE) / F.col(C.ORDERS)).alias(C.AVG_ORDER_VALUE),
        F.coalesce(F.col(f"l.{C.QUANTITY}"), F.lit(0.0)).alias(C.QUANTITY),
        F.coalesce(F.col(C.DISTINCT_PRODUCTS), F.lit(0)).cast("long").alias(C.DISTINCT_PRODUCTS),
        F.col(C.NEW_CUSTOMERS),
        (F.col(C.CUSTOMERS) - F.col(C.NEW_CUSTOMERS)).alias(C.RETURNING_CUSTOMERS),
        F.col(C.RETURNS),
    )
