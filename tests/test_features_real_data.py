"""The single view on the real datasets of ../shared/data, against independent computations."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from customer_analytics.config.schema import SourceConfig
from customer_analytics.core import columns as C
from customer_analytics.stages import features, ingest
from customer_analytics.stages.period import Period
from tests.conftest import shared_file

lifetimes_utils = pytest.importorskip("lifetimes.utils")


def customer_features(orders, lines, period, **kwargs):
    """:func:`features.customer_features` with the lifetime (3 years) and time unit (days) the
    expected values are worked out with, unless given."""
    settings = {"expected_lifetime_years": 3.0, "time_unit": "day", **kwargs}
    return features.customer_features(orders, lines, period, **settings)


def ingest_orders_and_lines(spark, source: SourceConfig):
    prepared = ingest.prepare(spark.read.parquet(source.path), source).cache()
    return ingest.orders(prepared), ingest.order_lines(prepared)


def test_btyd_summary_with_the_default_rules_equals_lifetimes_on_cdnow_for_every_customer(spark):
    path = shared_file("cdnow_master.parquet")
    # CDNOW has no order ids: identical rows are separate purchases, and the default rules of
    # kind transactions keep every copy, as lifetimes does
    source = SourceConfig(kind="transactions", path=str(path))
    orders, lines = ingest_orders_and_lines(spark, source)
    as_of = date(1998, 6, 30)

    ours = (
        customer_features(orders, lines, Period(as_of))
        .select(C.CUSTOMER_ID, C.FREQUENCY, C.RECENCY, C.T, C.MONETARY_VALUE)
        .toPandas()
        .assign(customer_id=lambda d: d[C.CUSTOMER_ID].astype("int64"))
        .set_index(C.CUSTOMER_ID)
        .sort_index()
    )
    raw = spark.read.parquet(str(path)).toPandas()
    theirs = lifetimes_utils.summary_data_from_transaction_data(
        raw,
        "customer_id",
        "date",
        monetary_value_col="amount",
        observation_period_end="1998-06-30",
        freq="D",
    ).sort_index()

    assert len(ours) == len(theirs) == 23_570
    assert ours.index.equals(theirs.index)  # the same customers, so no difference is NaN
    for column in ("frequency", "recency", "T", "monetary_value"):
        difference = (ours[column] - theirs[column]).abs().max()
        assert difference < 1e-6, f"{column} differs by up to {difference}"


def test_online_retail_totals_equal_a_plain_computation(spark):
    path = shared_file("online_retail.parquet")
    source = SourceConfig(kind="invoice_lines", path=str(path))
    orders, lines = ingest_orders_and_lines(spark, source)
    as_of = date(2011, 12, 9)

    ours = customer_features(orders, lines, Period(as_of)).select(
        C.CUSTOMER_ID, C.TOTAL_VISITS, C.TOTAL_SPEND, C.RECENCY_DAYS
    )
    # Plainly: distinct rows of members, invoices not starting with C are visits, spend is
    # quantity * price over their lines, recency counts from the last invoice day
    raw = spark.read.parquet(str(path)).dropDuplicates()
    members = raw.filter(F.col("CustomerID").isNotNull() & ~F.col("InvoiceNo").startswith("C"))
    plain = members.groupBy(F.col("CustomerID").cast("long").cast("string").alias("cid")).agg(
        F.countDistinct("InvoiceNo").alias("visits"),
        F.sum(F.col("Quantity") * F.col("UnitPrice")).alias("spend"),
        F.datediff(F.lit(as_of), F.max(F.to_date("InvoiceDate"))).alias("recency"),
    )
    joined = ours.join(plain, ours[C.CUSTOMER_ID] == plain["cid"], "full_outer")
    mismatches = joined.filter(
        F.col(C.CUSTOMER_ID).isNull()
        | F.col("cid").isNull()
        | (F.col(C.TOTAL_VISITS) != F.col("visits"))
        | (F.abs(F.col(C.TOTAL_SPEND) - F.col("spend")) > 1e-6)
        | (F.col(C.RECENCY_DAYS) != F.col("recency"))
    )
    assert ours.count() == 4_339  # 4,372 members, 33 of whom only ever cancelled
    assert mismatches.count() == 0, mismatches.limit(5).collect()
    total = ours.agg(F.sum(C.TOTAL_SPEND)).first()[0]
    assert total == pytest.approx(plain.agg(F.sum("spend")).first()[0], abs=0.01)
