"""
What the report shows (SPEC section 7): small summaries of the gold tables, computed in Spark.

Each function takes the tables as DataFrames and returns a DataFrame whose size is bounded by
the model, not by the customers: a row per K, per segment and feature, per month, per segment
and product, per RFM score. :meth:`ReportData.collect` brings those summaries, and nothing
row-level, to the driver as pandas frames for the charts and the HTML page. The per-customer
tables (``customer_features``, ``customer_clv``, ``customer_segments``) only enter through
aggregations.

A table the warehouse does not hold (``clv`` or ``evaluate`` skipped, a single date and so no
migration) leaves its part of the report empty: the page says which stage writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from customer_analytics.core import columns as C
from customer_analytics.stages.recommend import product_label
from customer_analytics.stages.recommenders import RECOMMENDERS

#: The quantiles of the per-segment value boxes: whiskers at 5% and 95%, box at the quartiles.
BOX_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
BOX_COLUMNS = ("q05", "q25", "median", "q75", "q95")
#: The customer values whose distribution per segment the report shows.
VALUE_MEASURES = (C.LTV_PREDICTED, C.P_ALIVE)
MEASURE = "measure"
#: The recommender the others are compared with.
BASELINE = RECOMMENDERS[0]
#: Summaries collected at once.
COLLECT_THREADS = 4


def segment_overview(segment_profiles: DataFrame) -> DataFrame:
    """
    ``segment_profiles`` (a row per segment and feature) -> a row per segment: ``cluster``,
    ``segment_name``, ``action``, ``size``, ``share``; the largest first.
    """
    return (
        segment_profiles.select(C.CLUSTER, C.SEGMENT_NAME, C.ACTION, C.SIZE, C.SHARE)
        .dropDuplicates([C.CLUSTER])
        .orderBy(F.desc(C.SIZE), C.CLUSTER)
    )


def rfm_distribution(customer_features: DataFrame) -> DataFrame:
    """
    ``customer_features`` -> customers per ``rfm_score`` (3 to 15) and ``rfm_segment``:
    columns ``rfm_score``, ``rfm_segment``, ``customers``.
    """
    return (
        customer_features.groupBy(C.RFM_SCORE, C.RFM_SEGMENT)
        .agg(F.count(F.lit(1)).alias(C.CUSTOMERS))
        .orderBy(C.RFM_SCORE, C.RFM_SEGMENT)
    )


def monthly_totals(monthly_sales: DataFrame) -> DataFrame:
    """
    ``monthly_sales`` -> its all-store, all-country rows, by month: ``month``, ``orders``,
    ``customers``, ``new_customers``, ``returning_customers``, ``revenue``,
    ``avg_order_value``, ``quantity``, ``distinct_products``.
    """
    return (
        monthly_sales.filter(F.col(C.GROUPING) == "all")
        .select(
            C.MONTH,
            C.ORDERS,
            C.CUSTOMERS,
            C.NEW_CUSTOMERS,
            C.RETURNING_CUSTOMERS,
            C.REVENUE,
            C.AVG_ORDER_VALUE,
            C.QUANTITY,
            C.DISTINCT_PRODUCTS,
        )
        .orderBy(C.MONTH)
    )


def value_by_segment(customer_clv: DataFrame, customer_segments: DataFrame) -> DataFrame:
    """
    The distribution of each customer value per segment.

    Parameters
    ----------
    customer_clv : DataFrame
        ``customer_id``, ``ltv_predicted``, ``p_alive`` (one date).
    customer_segments : DataFrame
        ``customer_id``, ``cluster``, ``segment_name`` of the same date.

    Returns
    -------
    DataFrame
        A row per segment and measure (``ltv_predicted``, ``p_alive``): ``cluster``,
        ``segment_name``, ``measure``, ``customers`` (with a value), ``mean`` and the
        approximate quantiles ``q05``, ``q25``, ``median``, ``q75``, ``q95``.
    """
    joined = customer_segments.select(C.CUSTOMER_ID, C.CLUSTER, C.SEGMENT_NAME).join(
        customer_clv.select(C.CUSTOMER_ID, *VALUE_MEASURES), C.CUSTOMER_ID
    )
    long = joined.select(
        C.CLUSTER,
        C.SEGMENT_NAME,
        F.explode(
            F.array(
                *(
                    F.struct(F.lit(m).alias(MEASURE), F.col(m).cast("double").alias(C.VALUE))
                    for m in VALUE_MEASURES
                )
            )
        ).alias("_m"),
    ).select(C.CLUSTER, C.SEGMENT_NAME, "_m.*")
    quantiles = F.percentile_approx(C.VALUE, list(BOX_QUANTILES), 10_000)
    return (
        long.filter(F.col(C.VALUE).isNotNull())
        .groupBy(C.CLUSTER, C.SEGMENT_NAME, MEASURE)
        .agg(
            F.count(F.lit(1)).alias(C.CUSTOMERS),
            F.avg(C.VALUE).alias(C.MEAN),
            quantiles.alias("_q"),
        )
        .select(
            C.CLUSTER,
            C.SEGMENT_NAME,
            MEASURE,
            C.CUSTOMERS,
            C.MEAN,
            *(F.col("_q")[i].alias(name) for i, name in enumerate(BOX_COLUMNS)),
        )
        .orderBy(MEASURE, C.CLUSTER)
    )


def latest_migration(segment_migration: DataFrame) -> DataFrame:
    """``segment_migration`` -> the rows of its latest ``to_as_of``: the move into that date."""
    latest = segment_migration.agg(F.max(C.TO_AS_OF).alias(C.TO_AS_OF))
    return segment_migration.join(latest, C.TO_AS_OF).select(*segment_migration.columns)


def latest_reconciliation(ingest_reconciliation: DataFrame) -> DataFrame:
    """
    ``ingest_reconciliation`` (appended by every ingest) -> the rows of the latest ingest:
    ``run_id``, ``source``, ``category``, ``reason``, ``rows``, ``lines``.
    """
    latest = ingest_reconciliation.agg(F.max(C.RUN_ID).alias(C.RUN_ID))  # ids sort by time
    return ingest_reconciliation.join(latest, C.RUN_ID).orderBy(C.CATEGORY, C.REASON)


@dataclass(frozen=True)
class ReportData:
    """
    The report's figures as small pandas frames; ``None`` where the warehouse has no table.

    ``as_of`` and ``segments`` come from ``segment_profiles``, which every report needs.
    """

    as_of: date
    segments: pd.DataFrame
    profiles: pd.DataFrame
    selection: pd.DataFrame | None = None
    rfm: pd.DataFrame | None = None
    monthly: pd.DataFrame | None = None
    top_products: pd.DataFrame | None = None
    evaluation: pd.DataFrame | None = None
    value: pd.DataFrame | None = None
    migration: pd.DataFrame | None = None
    reconciliation: pd.DataFrame | None = None
    #: The source has no product lines: no top products, lists or evaluation can exist.
    no_products: bool = False

    @property
    def k(self) -> int:
        """The number of segments."""
        return len(self.segments)

    @classmethod
    def collect(
        cls,
        segment_profiles: DataFrame,
        *,
        as_of: date,
        kmeans_selection: DataFrame | None = None,
        customer_features: DataFrame | None = None,
        monthly_sales: DataFrame | None = None,
        segment_top_products: DataFrame | None = None,
        recommendation_eval: DataFrame | None = None,
        customer_clv: DataFrame | None = None,
        customer_segments: DataFrame | None = None,
        segment_migration: DataFrame | None = None,
        ingest_reconciliation: DataFrame | None = None,
        no_products: bool = False,
    ) -> ReportData:
        """
        Summarise the tables given (each ``None`` when absent) in Spark and bring the
        summaries to the driver, a few queries at a time. ``customer_features`` and
        ``customer_clv`` count only for ``as_of`` (the segments' date); the values per segment
        need ``customer_segments`` too. A summary with no rows is ``None``, as an absent table.
        ``no_products``: the source has no product lines (the page says so where the
        products would be).
        """
        dated = F.col(C.AS_OF) == F.lit(as_of)
        value = None
        if customer_clv is not None and customer_segments is not None:
            value = value_by_segment(customer_clv.filter(dated), customer_segments)

        def summary(df: DataFrame | None, of: Callable[[DataFrame], DataFrame] = lambda df: df):
            return None if df is None else of(df)

        queries = {
            "segments": segment_overview(segment_profiles),
            "profiles": segment_profiles.orderBy(C.CLUSTER, C.FEATURE),
            "selection": summary(kmeans_selection, lambda df: df.orderBy(C.K)),
            "rfm": summary(customer_features, lambda df: rfm_distribution(df.filter(dated))),
            "monthly": summary(monthly_sales, monthly_totals),
            "top_products": summary(
                segment_top_products,
                lambda df: df.withColumn(
                    C.PRODUCT_NAME, product_label(F.col(C.PRODUCT_NAME), F.col(C.PRODUCT_ID))
                ).orderBy(F.col(C.CLUSTER).asc_nulls_first(), C.RANK),
            ),
            "evaluation": summary(
                recommendation_eval,
                lambda df: df.orderBy(  # as the evaluate job prints it
                    C.TARGET,
                    F.array_position(F.array(*map(F.lit, RECOMMENDERS)), F.col(C.RECOMMENDER)),
                    C.RECOMMENDER,
                    C.K,
                ),
            ),
            "value": value,
            "migration": summary(segment_migration, latest_migration),
            "reconciliation": summary(ingest_reconciliation, latest_reconciliation),
        }
        present = {name: df for name, df in queries.items() if df is not None}
        # Concurrent jobs: each summary is a few small stages, and most of their time is the
        # driver planning them, which overlaps with the executors running another's.
        with ThreadPoolExecutor(max_workers=COLLECT_THREADS) as pool:
            collected = pool.map(lambda df: df.toPandas(), present.values())
            frames = dict(zip(present, collected, strict=True))
        optional = {
            name: frame if len(frame) else None
            for name, frame in frames.items()
            if name not in ("segments", "profiles")
        }
        return cls(
            as_of=as_of,
            segments=frames["segments"],
            profiles=frames["profiles"],
            no_products=no_products,
            **optional,
        )
