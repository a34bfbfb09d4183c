"""
Customer single view: one row per member as of a date (SPEC section 3), and monthly sales
(SPEC section 7).

``as_of`` is the last day observed (inclusive), the ``observation_period_end`` of
``lifetimes``: orders after it are ignored, and recency and ``T`` count days up to it. Features
for an earlier ``as_of`` are recomputed from the same tables, so a backfill gives the answer a
run on that day would have given.

A *visit* is a non-return order of a member; returns are counted apart (``return_orders``,
``return_rate``, ``returned_amount``). A customer appears when they have at least one visit
inside the window (``as_of``, ``lookback_days``, excluded periods). The orders are shuffled by
customer once (:func:`order_history`): window functions over each customer's visits in time
order mark the first visit of a day, an ISO week and a month and keep the two amounts before
the latest, so that one aggregation per customer gives every count, sum, distinct count, the
last three baskets, the BTYD summary and the monthly trend, with no ``collect_list`` and no
``count_distinct``. The most visited store is two small aggregations over the same shuffle,
distinct products one over ``order_lines`` (a set of products per customer), and the RFM cut
points one tiny aggregation. Each order is one row of ``orders`` (ingest writes one per order
id), so visits are counted as rows. Nothing is collected to the driver.

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

from collections.abc import Sequence
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from customer_analytics.core import columns as C
from customer_analytics.stages.period import Period

QUINTILES = [0.2, 0.4, 0.6, 0.8]
# Working columns of order_history and the aggregations over it
_VISIT, _RETURN, _LAST, _FIRST_DAY = "_visit", "_return", "_last", "_first_day"
_NEW_DAY, _NEW_WEEK, _NEW_MONTH = "_new_day", "_new_week", "_new_month"
_MONTH_NUMBER, _PREV1_AMOUNT, _PREV2_AMOUNT = "_month_number", "_prev1_amount", "_prev2_amount"
_DAYS, _FIRST_DAY_SPEND, _VISITS = "_days", "_first_day_spend", "_visits"
_SUM_X, _SUM_XX, _SUM_XY = "_sum_x", "_sum_xx", "_sum_xy"
_MEMBER_VISIT, _NEW, _FIRST_MONTH = "_member_visit", "_new", "_first_month"
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


def customer_features(
    orders: DataFrame,
    order_lines: DataFrame,
    period: Period,
    *,
    columns: Sequence[str] | None = None,
    **kwargs,
):
    """
    The customer single view of a period: :func:`base_customer_features` (same parameters)
    with the RFM scores of :func:`rfm_scores`.

    ``columns`` keeps only those columns (in that order). Without an RFM column among them the
    scores are not computed: their cut points need a pass over every customer of their own.

    Returns
    -------
    DataFrame
        One row per member with a visit in the window, columns
        :data:`CUSTOMER_FEATURE_COLUMNS` or ``columns`` (see the module docstring for
        definitions).

    Raises
    ------
    ValueError
        A name in ``columns`` that is not a column of the single view.
    """
    base = base_customer_features(orders, order_lines, period, **kwargs)
    if columns is None:
        return with_rfm_scores(base)
    unknown = [c for c in columns if c not in CUSTOMER_FEATURE_COLUMNS]
    if unknown:
        raise ValueError(f"not columns of customer_features: {unknown}")
    if any(c in RFM_COLUMNS for c in columns):
        return with_rfm_scores(base).select(*columns)
    return base.select(*columns)


def with_rfm_scores(base: DataFrame) -> DataFrame:
    """Add the RFM columns to :func:`base_customer_features` and order the columns."""
    return rfm_scores(base).select(*CUSTOMER_FEATURE_COLUMNS)


def base_customer_features(
    orders: DataFrame,
    order_lines: DataFrame,
    period: Period,
    *,
    expected_lifetime_years: float,
    time_unit: str,
) -> DataFrame:
    """
    The customer single view of ``period``, all but the RFM scores (see
    :func:`customer_features`; a job persists this frame because the RFM cut points and the
    scores both read it).

    Parameters
    ----------
    orders : DataFrame
        The ``orders`` table, one row per order: ``order_id``, ``customer_id`` (null = guest,
        ignored), ``order_ts``, ``order_date``, ``store_id``, ``order_amount``,
        ``item_count``, ``is_return``, and optionally ``country``, ``price_sensitivity`` and
        ``lifestage``.
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
    history = order_history(orders, period)
    features = (
        _customer_aggregates(history, period.as_of, PERIOD_DAYS[time_unit])
        .join(_most_visited_store(history), C.CUSTOMER_ID, "left")
        .join(_distinct_products(period.modelled(order_lines)), C.CUSTOMER_ID, "left")
    )
    features = _derived(features, period.as_of, expected_lifetime_years)
    return features.select(*[c for c in CUSTOMER_FEATURE_COLUMNS if c not in RFM_COLUMNS])


def order_history(orders: DataFrame, period: Period) -> DataFrame:
    """
    Every member's orders up to ``as_of``, partitioned by customer, each visit marked against
    the visit before it in time.

    Returns
    -------
    DataFrame
        One row per member order on or before ``as_of``: ``customer_id``, ``order_id``,
        ``order_ts``, ``order_date``, ``order_amount``, ``item_count``, ``store_id``,
        ``country``, ``price_sensitivity``, ``lifestage`` (null where ``orders`` lacks them),
        ``_visit`` (a non-return order in the modelled period), ``_return`` (a return in it),
        and, among the customer's visits ordered by date, time, ``order_id`` and amount:
        ``_new_day``, ``_new_week`` (ISO week), ``_new_month`` (the first visit of its day,
        week, month), ``_first_day`` (on the day of the first visit), ``_month_number`` (months
        since the first visit's month), ``_last`` (the latest visit) and ``_prev1_amount``,
        ``_prev2_amount`` (the amounts of the one and two visits before it).
    """
    attributes = [
        F.col(name) if name in orders.columns else F.lit(None).cast("string").alias(name)
        for name in (C.COUNTRY, C.PRICE_SENSITIVITY, C.LIFESTAGE)
    ]
    modelled = period.modelled_rows()
    members = period.observed(orders).filter(F.col(C.CUSTOMER_ID).isNotNull())
    # One shuffle by customer: the window below and every aggregation by customer reuse it.
    rows = members.select(
        C.CUSTOMER_ID,
        C.ORDER_ID,
        C.ORDER_TS,
        C.ORDER_DATE,
        C.ORDER_AMOUNT,
        C.ITEM_COUNT,
        C.STORE_ID,
        *attributes,
        (modelled & ~F.col(C.IS_RETURN)).alias(_VISIT),
        (modelled & F.col(C.IS_RETURN)).alias(_RETURN),
    ).repartition(C.CUSTOMER_ID)
    in_order = Window.partitionBy(C.CUSTOMER_ID, _VISIT).orderBy(
        C.ORDER_DATE, C.ORDER_TS, C.ORDER_ID, C.ORDER_AMOUNT
    )
    day = F.col(C.ORDER_DATE)
    week = F.extract(F.lit("YEAROFWEEK"), day) * 100 + F.weekofyear(day)
    month = F.year(day) * 12 + F.month(day)

    def first_of(key: Column) -> Column:
        previous = F.lag(key).over(in_order)
        return previous.isNull() | (previous != key)

    return rows.select(
        "*",
        first_of(day).alias(_NEW_DAY),
        first_of(week).alias(_NEW_WEEK),
        first_of(month).alias(_NEW_MONTH),
        (day == F.first(day).over(in_order)).alias(_FIRST_DAY),
        (month - F.first(month).over(in_order)).cast("double").alias(_MONTH_NUMBER),
        F.lead(C.ORDER_ID).over(in_order).isNull().alias(_LAST),
        F.lag(C.ORDER_AMOUNT, 1).over(in_order).alias(_PREV1_AMOUNT),
        F.lag(C.ORDER_AMOUNT, 2).over(in_order).alias(_PREV2_AMOUNT),
    )


def _customer_aggregates(history: DataFrame, as_of: date, period_days: float) -> DataFrame:
    """Per customer with a visit: the sums and latest values of :func:`_customer_totals`, and
    the summaries derived from them (:func:`_from_totals`)."""
    return _from_totals(_customer_totals(history), as_of, period_days)


def _customer_totals(history: DataFrame) -> DataFrame:
    """One aggregation of the order history per customer with a visit."""
    visit, returned = F.col(_VISIT), F.col(_RETURN)
    amount, day = F.col(C.ORDER_AMOUNT), F.col(C.ORDER_DATE)
    last = visit & F.col(_LAST)
    month_number = F.col(_MONTH_NUMBER)
    new_month = visit & F.col(_NEW_MONTH)

    def count_if(condition: Column) -> Column:
        return F.count(F.when(condition, F.lit(1)))

    def latest(name: str) -> Column:
        seen_at = F.when(F.col(name).isNotNull(), F.struct(C.ORDER_TS, C.ORDER_ID))
        return F.max_by(F.col(name), seen_at).alias(name)

    return (
        history.groupBy(C.CUSTOMER_ID)
        .agg(
            count_if(visit).alias(C.TOTAL_VISITS),
            F.sum(F.when(visit, amount)).alias(C.TOTAL_SPEND),
            F.sum(F.when(visit, F.col(C.ITEM_COUNT))).alias(C.TOTAL_ITEMS),
            F.min(F.when(visit, day)).alias(C.FIRST_ORDER_DATE),
            F.max(F.when(visit, day)).alias(C.LAST_ORDER_DATE),
            count_if(visit & F.col(_NEW_WEEK)).alias(C.ACTIVE_WEEKS),
            count_if(new_month).alias(C.ACTIVE_MONTHS),
            F.max(F.when(last, amount)).alias(C.LAST_BASKET_SPEND),
            F.max(F.when(last, F.col(_PREV1_AMOUNT))).alias(C.PREV1_BASKET_SPEND),
            F.max(F.when(last, F.col(_PREV2_AMOUNT))).alias(C.PREV2_BASKET_SPEND),
            count_if(visit & F.col(_NEW_DAY)).alias(_DAYS),
            F.sum(F.when(visit & F.col(_FIRST_DAY), amount)).alias(_FIRST_DAY_SPEND),
            F.sum(F.when(new_month, month_number)).alias(_SUM_X),
            F.sum(F.when(new_month, month_number * month_number)).alias(_SUM_XX),
            F.sum(F.when(visit, month_number * amount)).alias(_SUM_XY),
            count_if(returned).alias(C.RETURN_ORDERS),
            F.sum(F.when(returned, F.abs(amount))).alias(C.RETURNED_AMOUNT),
            latest(C.COUNTRY),
            latest(C.PRICE_SENSITIVITY),
            latest(C.LIFESTAGE),
        )
        .filter(F.col(C.TOTAL_VISITS) > 0)
    )


def _from_totals(totals: DataFrame, as_of: date, period_days: float) -> DataFrame:
    """The customer columns of :func:`_customer_totals`, with the BTYD summary, the monthly
    spend and its trend computed from its sums."""
    spend, first_day = F.col(C.TOTAL_SPEND), F.col(C.FIRST_ORDER_DATE)
    frequency = (F.col(_DAYS) - 1).cast("double")
    months = F.col(C.ACTIVE_MONTHS).cast("double")
    sum_x = F.col(_SUM_X)
    # The least-squares slope of each month's spend over the month's number (regr_slope of
    # the monthly totals), from sums over the visits: sum(x * y) over months is the sum of
    # x * amount over their visits. x counts from the first month, so the sums stay small.
    slope = (months * F.col(_SUM_XY) - sum_x * spend) / (months * F.col(_SUM_XX) - sum_x * sum_x)
    return totals.select(
        C.CUSTOMER_ID,
        C.TOTAL_VISITS,
        C.TOTAL_SPEND,
        C.TOTAL_ITEMS,
        C.FIRST_ORDER_DATE,
        C.LAST_ORDER_DATE,
        C.ACTIVE_WEEKS,
        C.ACTIVE_MONTHS,
        C.LAST_BASKET_SPEND,
        C.PREV1_BASKET_SPEND,
        C.PREV2_BASKET_SPEND,
        C.RETURN_ORDERS,
        C.RETURNED_AMOUNT,
        C.COUNTRY,
        C.PRICE_SENSITIVITY,
        C.LIFESTAGE,
        # lifetimes.utils.summary_data_from_transaction_data with freq="D": repeat days, the
        # first to the last day, the first day to as_of, the mean spend of the repeat days
        frequency.alias(C.FREQUENCY),
        (F.datediff(C.LAST_ORDER_DATE, first_day) / period_days).alias(C.RECENCY),
        (F.datediff(F.lit(as_of), first_day) / period_days).alias(C.T),
        F.when(frequency > 0, (spend - F.col(_FIRST_DAY_SPEND)) / frequency)
        .otherwise(F.lit(0.0))
        .alias(C.MONETARY_VALUE),
        (spend / months).alias(C.AVG_MONTHLY_SPEND),
        F.when(months > 1, slope).alias(C.SPEND_TREND),
    )


def _most_visited_store(history: DataFrame) -> DataFrame:
    """The store of most visits per customer, ties to the smallest store id."""
    visits = history.filter(F.col(_VISIT) & F.col(C.STORE_ID).isNotNull())
    per_store = visits.groupBy(C.CUSTOMER_ID, C.STORE_ID).agg(F.count(F.lit(1)).alias(_VISITS))
    rank = F.struct((-F.col(_VISITS)).alias(_VISITS), F.col(C.STORE_ID))
    return per_store.groupBy(C.CUSTOMER_ID).agg(F.min_by(C.STORE_ID, rank).alias(C.STORE_ID))


def _distinct_products(lines: DataFrame) -> DataFrame:
    bought = lines.filter(F.col(C.CUSTOMER_ID).isNotNull() & ~F.col(C.IS_RETURN))
    # A set per customer (products are a catalogue, not unbounded) in one aggregation: half
    # the time of count_distinct's two, which shuffle every (customer, product) pair.
    return bought.groupBy(C.CUSTOMER_ID).agg(
        F.size(F.collect_set(C.PRODUCT_ID)).cast("long").alias(C.DISTINCT_PRODUCTS)
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
        # element by element, not F.filter: a lambda is interpreted for every customer
        cut_points = F.col(f"_cuts_{name}")
        value = F.col(name)
        above_each = [
            F.coalesce(value > F.get(cut_points, i), F.lit(False)) for i in range(len(QUINTILES))
        ]
        return sum(flag.cast("int") for flag in above_each)

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
    order_side, line_side = _monthly_orders(orders, as_of), _monthly_lines(order_lines, as_of)
    joined = order_side.alias("o").join(
        line_side.alias("l"),
        [F.col(f"o.{k}").eqNullSafe(F.col(f"l.{k}")) for k in (C.GROUPING, *_MONTH_KEYS)],
        "left",
    )
    return joined.select(
        F.col(f"o.{C.MONTH}").alias(C.MONTH),
        F.col(f"o.{C.STORE_ID}").alias(C.STORE_ID),
        F.col(f"o.{C.COUNTRY}").alias(C.COUNTRY),
        F.col(f"o.{C.GROUPING}").alias(C.GROUPING),
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


#: The keys of ``monthly_sales`` and its three groupings: all, per store, per country.
_MONTH_KEYS = [C.MONTH, C.STORE_ID, C.COUNTRY]
_MONTH_SETS = [[C.MONTH], [C.MONTH, C.STORE_ID], [C.MONTH, C.COUNTRY]]


def _grouping() -> Column:
    """The name of a grouping-sets row's grouping: ``all``, ``store`` or ``country``."""
    return (
        F.when((F.grouping(C.STORE_ID) == 1) & (F.grouping(C.COUNTRY) == 1), F.lit("all"))
        .when(F.grouping(C.COUNTRY) == 1, F.lit("store"))
        .otherwise(F.lit("country"))
    )


def _month() -> Column:
    return F.trunc(F.col(C.ORDER_DATE), "month")


def _monthly_orders(orders: DataFrame, as_of: date) -> DataFrame:
    """The order columns of ``monthly_sales`` per grouping and key (orders up to ``as_of``)."""
    keys = _MONTH_KEYS
    visit = ~F.col(C.IS_RETURN)
    member_visit = visit & F.col(C.CUSTOMER_ID).isNotNull()
    dated = orders.filter(F.col(C.ORDER_DATE) <= F.lit(as_of)).withColumn(C.MONTH, _month())
    # Each member's first month is the same in every grouping: found once per customer and
    # joined to the orders, not by a window over the three groupings' rows.
    first_months = (
        dated.filter(member_visit).groupBy(C.CUSTOMER_ID).agg(F.min(C.MONTH).alias(_FIRST_MONTH))
    )
    with_first = dated.join(first_months, C.CUSTOMER_ID, "left")
    # Distinct customers without count_distinct: one row per grouping, group and customer
    # (the guests of a group share one row), then plain counts over those rows.
    per_customer = with_first.groupingSets(
        [[*grouping_set, C.CUSTOMER_ID] for grouping_set in _MONTH_SETS], *keys, C.CUSTOMER_ID
    ).agg(
        _grouping().alias(C.GROUPING),
        F.count(F.when(visit, F.lit(1))).alias(C.ORDERS),
        F.sum(F.when(visit, F.col(C.ORDER_AMOUNT))).alias(C.REVENUE),
        F.count(F.when(~visit, F.lit(1))).alias(C.RETURNS),
        F.max(member_visit).alias(_MEMBER_VISIT),
        F.max(member_visit & (F.col(C.MONTH) == F.col(_FIRST_MONTH))).alias(_NEW),
    )
    member = F.col(_MEMBER_VISIT)
    return per_customer.groupBy(C.GROUPING, *keys).agg(
        F.sum(C.ORDERS).alias(C.ORDERS),
        F.count(F.when(member, F.lit(1))).alias(C.CUSTOMERS),
        F.sum(C.REVENUE).alias(C.REVENUE),
        F.count(F.when(F.col(_NEW), F.lit(1))).alias(C.NEW_CUSTOMERS),
        F.sum(C.RETURNS).alias(C.RETURNS),
    )


def _monthly_lines(order_lines: DataFrame, as_of: date) -> DataFrame:
    """The line columns of ``monthly_sales`` (quantity, distinct products) per grouping."""
    lines = order_lines.filter((F.col(C.ORDER_DATE) <= F.lit(as_of)) & ~F.col(C.IS_RETURN))
    per_product = (
        lines.withColumn(C.MONTH, _month())
        .groupBy(*_MONTH_KEYS, C.PRODUCT_ID)
        .agg(F.sum(C.QUANTITY).alias(C.QUANTITY))
    )
    return per_product.groupingSets(_MONTH_SETS, *_MONTH_KEYS).agg(
        _grouping().alias(C.GROUPING),
        F.sum(C.QUANTITY).alias(C.QUANTITY),
        F.count_distinct(C.PRODUCT_ID).cast("long").alias(C.DISTINCT_PRODUCTS),
    )
