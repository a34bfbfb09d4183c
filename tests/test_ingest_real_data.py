"""
Ingest on the real files of ``../shared/data`` (skipped when the folder is absent).

Expected figures come from ``shared/data/README.md`` or are computed here from the raw file
with plain Spark expressions or plain Python, never with the code under test. Each file is
read and prepared once per module (fixtures), then persisted for the checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pytest
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from customer_analytics.config.schema import IngestRules, SourceConfig
from customer_analytics.io.sources import read_source
from customer_analytics.stages import ingest, reconciliation
from tests.conftest import shared_file
from tests.helpers import assert_equal


@dataclass
class Ingested:
    raw: DataFrame
    prepared: DataFrame
    orders: DataFrame
    recon: reconciliation.Reconciliation

    def release(self) -> None:
        self.orders.unpersist()
        self.prepared.unpersist()


def ingest_file(spark: SparkSession, name: str, kind: str, **options) -> Ingested:
    cfg = SourceConfig(kind=kind, path=str(shared_file(name)), **options)
    raw = read_source(spark, cfg)
    prepared = ingest.prepare(raw, cfg).persist(StorageLevel.MEMORY_AND_DISK)
    recon = reconciliation.Reconciliation.from_counts(
        kind, reconciliation.reconciliation_counts(prepared).collect(), input_rows=raw.count()
    )
    orders = ingest.orders(prepared, with_attributes=True).persist(StorageLevel.MEMORY_AND_DISK)
    return Ingested(raw, prepared, orders, recon)


def total(df: DataFrame, expr: str) -> float:
    return df.agg(F.sum(F.expr(expr)).alias("total")).first()["total"]


# ---------------------------------------------------------------------------------------------
# transactions_product_json_sample.parquet / .csv: 10,000 invoices with injected faults

CLEAN_DATE, DAY_FIRST_DATE = "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M"


def parse_date(text: str | None) -> datetime | None:
    """The two well-formed layouts of the file (README), parsed by Python, not by Spark."""
    for layout in (CLEAN_DATE, DAY_FIRST_DATE):
        try:
            return datetime.strptime(text, layout)
        except (TypeError, ValueError):
            continue
    return None


@dataclass(frozen=True)
class PjRow:
    """One raw row and what the README's rules expect for it, worked out in Python."""

    order_id: str
    customer_id: str | None
    date_text: str | None
    total_amt: float | None
    reason: str | None
    order_ts: datetime | None
    items: int
    is_return: bool


def expected_rows(raw: DataFrame) -> list[PjRow]:
    rows = raw.select(
        "transaction_id", "customer_id", "transaction_date", "total_amt", "product_json"
    ).collect()
    out = []
    for r in rows:
        order_ts = parse_date(r.transaction_date)
        amount = None if r.total_amt is None else float(r.total_amt)
        if amount is None:
            reason = "missing_amount"
        elif r.product_json is None:
            reason = "missing_product_json"
        elif not r.product_json.endswith("]"):  # truncated: the README's malformed rows
            reason = "malformed_product_json"
        elif order_ts is None:
            reason = "bad_date"
        else:
            reason = None
        products = json.loads(r.product_json) if reason is None else []
        # a return: a negative total, or only lines of negative quantity or amount (the file
        # has invoices of stock corrections: negative quantities at price 0)
        is_return = reason is None and (
            amount < 0 or all(p["quantity"] < 0 or p["quantity"] * p["unit_price"] < 0
                              for p in products)
        )  # fmt: skip
        customer = None if r.customer_id is None else str(r.customer_id)
        out.append(
            PjRow(
                r.transaction_id,
                customer,
                r.transaction_date,
                amount,
                reason,
                order_ts,
                len(products),
                is_return,
            )
        )
    return out


@pytest.fixture(scope="module", params=["parquet", "csv"])
def product_json(request, spark):
    data = ingest_file(spark, f"transactions_product_json_sample.{request.param}", "product_json")
    yield data, expected_rows(data.raw)
    data.release()


def test_product_json_sample_quarantines_exactly_the_injected_faults(product_json):
    data, _ = product_json
    assert data.recon.input_rows == 10_000
    assert data.recon.quarantined == {
        "bad_date": 45,
        "malformed_product_json": 16,
        "missing_amount": 110,
        "missing_product_json": 37,
    }
    assert data.recon.excluded == {}
    # README: the seed-000 rule accepts 9,837 rows; 45 more have unparseable dates
    assert data.recon.accepted_rows == 9_837 - 45
    recon = data.recon
    parts = recon.accepted_rows + sum(recon.quarantined.values()) + sum(recon.excluded.values())
    assert parts == 10_000
    assert data.recon.balanced


def test_product_json_sample_each_quarantined_row_has_the_expected_reason(spark, product_json):
    data, rows = product_json
    expected = spark.createDataFrame(
        [(r.order_id, r.reason) for r in rows if r.reason is not None],
        "order_id string, reason string",
    )
    actual = data.prepared.filter("reason is not null").select("order_id", "reason")
    assert_equal(actual, expected)


def test_product_json_sample_dates_are_parsed_day_first_where_written_so(spark, product_json):
    data, rows = product_json
    day_first = [r for r in rows if r.order_ts and r.date_text and "/" in r.date_text]
    assert len(day_first) == 191
    assert all(r.reason is None or r.reason != "bad_date" for r in day_first)
    expected = spark.createDataFrame(
        [(r.order_id, r.order_ts.strftime(CLEAN_DATE)) for r in rows if r.reason is None],
        "order_id string, order_ts string",
    ).withColumn("order_ts", F.col("order_ts").cast("timestamp"))
    actual = data.prepared.filter("reason is null").select("order_id", "order_ts")
    assert_equal(actual, expected)


def test_product_json_sample_lines_are_the_json_items_of_accepted_rows(product_json):
    data, rows = product_json
    assert data.recon.lines_written == sum(r.items for r in rows)
    assert ingest.order_lines(data.prepared).count() == data.recon.lines_written


def test_product_json_sample_orders_keep_total_amt_guests_and_cancellations(product_json):
    data, rows = product_json
    accepted = [r for r in rows if r.reason is None]
    guests = [r for r in accepted if r.customer_id is None]
    assert sum(r.customer_id is None for r in rows) == 1_687  # README: all guest rows
    facts = data.orders.agg(
        F.count(F.lit(1)).alias("orders"),
        F.sum("order_amount").alias("amount"),
        F.sum(F.col("customer_id").isNull().cast("int")).alias("guests"),
        F.sum(F.col("is_return").cast("int")).alias("returns"),
    ).first()
    assert facts["orders"] == len(accepted)
    assert facts["amount"] == pytest.approx(sum(r.total_amt for r in accepted), abs=0.01)
    assert facts["guests"] == len(guests)
    assert facts["returns"] == sum(r.is_return for r in accepted)


def test_product_json_sample_customers_are_the_members_of_accepted_rows(product_json):
    data, rows = product_json
    members = {r.customer_id for r in rows if r.reason is None and r.customer_id is not None}
    customers = ingest.customers(data.orders).select("customer_id").collect()
    assert sorted(r.customer_id for r in customers) == sorted(members)


# ---------------------------------------------------------------------------------------------
# online_retail.parquet: UCI Online Retail, 541,909 invoice lines


@pytest.fixture(scope="module")
def online_retail(spark):
    data = ingest_file(spark, "online_retail.parquet", "invoice_lines")
    yield data
    data.release()


@pytest.fixture(scope="module")
def online_retail_kept(online_retail):
    """The raw rows the README's rules keep: distinct rows without a negative price."""
    kept = online_retail.raw.dropDuplicates().filter("UnitPrice >= 0").persist()
    yield kept
    kept.unpersist()


def test_online_retail_reconciles_duplicates_and_bad_debt_rows(online_retail):
    recon = online_retail.recon
    assert recon.input_rows == 541_909
    assert recon.excluded == {"exact_duplicate": 5_268}
    assert recon.quarantined == {"negative_price": 2}
    assert recon.accepted_rows == 541_909 - 5_268 - 2
    assert recon.lines_written == recon.accepted_rows  # one line per invoice line
    assert recon.balanced


def test_online_retail_quarantine_holds_the_negative_price_rows_as_json(online_retail):
    raw = online_retail.raw
    expected = [
        (r.InvoiceNo, r.StockCode, r.UnitPrice)
        for r in raw.filter("UnitPrice < 0").select("InvoiceNo", "StockCode", "UnitPrice").collect()
    ]
    quarantined = ingest.quarantine(online_retail.prepared, "run", datetime(2024, 1, 1))
    records = [json.loads(r.raw_record) for r in quarantined.select("raw_record").collect()]
    actual = [(r["InvoiceNo"], r["StockCode"], r["UnitPrice"]) for r in records]
    assert sorted(actual) == sorted(expected)
    assert all(set(r) == set(raw.columns) for r in records)


def test_online_retail_orders_are_the_invoices_left_after_quarantine(online_retail):
    raw = online_retail.raw
    expected = raw.filter("UnitPrice >= 0").select("InvoiceNo").distinct().count()
    assert expected == 25_900 - 2  # the two bad-debt rows are one-line invoices
    assert online_retail.orders.count() == expected


def test_online_retail_customers_are_the_4372_members_as_integral_ids(online_retail):
    ids = [r.customer_id for r in ingest.customers(online_retail.orders).collect()]
    assert len(ids) == 4_372
    assert all(i.isdigit() for i in ids)
    assert "17850" in ids


def test_online_retail_cancellations_are_flagged_returns(online_retail):
    raw = online_retail.raw
    c_invoices = raw.filter(F.col("InvoiceNo").startswith("C")).select("InvoiceNo").distinct()
    flags = (
        online_retail.orders.filter(F.col("order_id").startswith("C"))
        .agg(F.count(F.lit(1)).alias("n"), F.min(F.col("is_return").cast("int")).alias("all"))
        .first()
    )
    assert flags["n"] == c_invoices.count()
    assert flags["all"] == 1


def test_online_retail_order_ts_is_the_earliest_line_time(online_retail):
    raw = online_retail.raw
    per_invoice = raw.groupBy("InvoiceNo").agg(
        F.min("InvoiceDate").alias("first"), F.countDistinct("InvoiceDate").alias("dates")
    )
    several = per_invoice.filter("dates > 1")
    assert several.count() == 43
    expected = several.select(
        F.col("InvoiceNo").alias("order_id"), F.col("first").alias("order_ts")
    )
    actual = online_retail.orders.join(expected.select("order_id"), "order_id").select(
        "order_id", "order_ts"
    )
    assert_equal(actual, expected)


def test_online_retail_order_amounts_sum_the_distinct_kept_lines(online_retail, online_retail_kept):
    expected = total(online_retail_kept, "Quantity * UnitPrice")
    assert total(online_retail.orders, "order_amount") == pytest.approx(expected, abs=0.01)


def test_online_retail_guest_lines_are_kept(online_retail, online_retail_kept):
    expected = online_retail_kept.filter("CustomerID is null").count()
    lines = ingest.order_lines(online_retail.prepared)
    assert lines.filter("customer_id is null").count() == expected


# ---------------------------------------------------------------------------------------------
# lgsr_500_customers.parquet: dunnhumby basket lines, attributes in seg_1 / seg_2


@pytest.fixture(scope="module")
def lgsr(spark):
    data = ingest_file(
        spark,
        "lgsr_500_customers.parquet",
        "basket_lines",
        columns={"price_sensitivity": "seg_1", "lifestage": "seg_2"},
    )
    yield data
    data.release()


def test_lgsr_reconciles_every_row_as_accepted(lgsr):
    assert lgsr.recon.input_rows == 264_996
    assert lgsr.recon.accepted_rows == 264_996
    assert (lgsr.recon.quarantined, lgsr.recon.excluded) == ({}, {})


def test_lgsr_has_42114_baskets_and_the_member_spend(lgsr):
    facts = lgsr.orders.agg(
        F.count(F.lit(1)).alias("baskets"),
        F.sum(F.when(F.col("customer_id").isNotNull(), F.col("order_amount"))).alias("spend"),
    ).first()
    assert facts["baskets"] == 42_114
    assert facts["spend"] == pytest.approx(461_485.40, abs=0.01)


def test_lgsr_customers_carry_seg_1_and_seg_2_as_attributes(lgsr):
    expected = (
        lgsr.raw.filter("CUST_CODE is not null")
        .groupBy("CUST_CODE")
        .agg(F.max("seg_1").alias("price_sensitivity"), F.max("seg_2").alias("lifestage"))
        .withColumnRenamed("CUST_CODE", "customer_id")
    )
    actual = ingest.customers(lgsr.orders).select("customer_id", "price_sensitivity", "lifestage")
    assert actual.count() == 500
    assert_equal(actual, expected)


def test_lgsr_non_member_lines_are_kept(lgsr):
    lines = ingest.order_lines(lgsr.prepared)
    assert lines.filter("customer_id is null").count() == 20_609


# ---------------------------------------------------------------------------------------------
# cdnow_master.parquet: CDNOW purchases, kind transactions


@pytest.fixture(scope="module")
def cdnow(spark):
    data = ingest_file(spark, "cdnow_master.parquet", "transactions")  # the default rules
    yield data
    data.release()


def test_cdnow_keeps_every_row_by_default_as_identical_rows_are_repeat_purchases(cdnow):
    # transactions have no order id: the exact_duplicate rule is off unless set
    recon = cdnow.recon
    assert (recon.input_rows, recon.accepted_rows, recon.lines_written) == (69_659, 69_659, 69_659)
    assert (recon.quarantined, recon.excluded) == ({}, {})
    assert recon.balanced
    assert cdnow.orders.count() == 69_659  # identical rows stay separate orders


def test_cdnow_has_23570_customers_and_the_amount_and_items_of_every_row(cdnow):
    # the README of ../shared/data: 23,570 customers, amount 2,500,315.63, quantity 167,881
    assert ingest.customers(cdnow.orders).count() == 23_570
    assert total(cdnow.orders, "order_amount") == pytest.approx(2_500_315.63, abs=0.01)
    assert total(cdnow.orders, "item_count") == 167_881


def test_cdnow_with_duplicate_rule_on_counts_its_255_identical_rows_once(spark):
    data = ingest_file(
        spark,
        "cdnow_master.parquet",
        "transactions",
        rules=IngestRules(exact_duplicate=True),
    )
    try:
        distinct_rows = data.raw.dropDuplicates().count()
        assert distinct_rows == 69_659 - 255
        assert data.recon.excluded == {"exact_duplicate": 255}
        assert data.recon.accepted_rows == distinct_rows
        assert data.recon.balanced
        expected = total(data.raw.dropDuplicates(), "amount")
        assert total(data.orders, "order_amount") == pytest.approx(expected, abs=0.01)
    finally:
        data.release()
