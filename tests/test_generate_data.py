"""
Tests of ``scripts/generate_data.py`` on a small generated data set.

One data set of ``N`` rows is generated per module into a temporary folder; every expected value
is recomputed here with the test's own expressions (``from_json`` with a schema, timestamp
parsing with the listed formats, regular expressions), never taken from the generator.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from types import ModuleType

import pytest
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "generate_data.py"
N = 5_000
SEED = 7
ITEMS = "array<struct<product_id:string,product_name:string,quantity:int,unit_price:double>>"
ISO = "yyyy-MM-dd HH:mm:ss"
ALT = "dd/MM/yyyy HH:mm"
TYPES = {
    "champions",
    "loyal_regulars",
    "big_basket_occasionals",
    "new_customers",
    "at_risk",
    "lapsed_low_value",
}
GARBAGE = {"N/A", "2020-13-45 10:00:00", "2020-02-30 10:00:00", ""}
LAST_DAY = date(2023, 12, 31)


def _load_script() -> ModuleType:
    """Import the script as module ``generate_data`` (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("generate_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_data"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


gd = _load_script()


def _items() -> Column:
    return F.from_json("product_json", ITEMS)


def _iso_ts() -> Column:
    return F.try_to_timestamp("transaction_date", F.lit(ISO))


def _alt_ts() -> Column:
    return F.try_to_timestamp("transaction_date", F.lit(ALT))


def _parsed_ts() -> Column:
    return F.coalesce(_iso_ts(), _alt_ts())


def _count(condition: Column) -> Column:
    return F.sum(F.when(condition, 1).otherwise(0))


@pytest.fixture(scope="module")
def generated(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("generated")
    summary = gd.generate(spark, N, SEED, out)
    return out, summary


@pytest.fixture(scope="module")
def summary(generated: tuple[Path, dict]) -> dict:
    return generated[1]


@pytest.fixture(scope="module")
def transactions(spark: SparkSession, generated: tuple[Path, dict]) -> Iterator[DataFrame]:
    df = spark.read.parquet(str(generated[0] / "transactions")).cache()
    yield df
    df.unpersist()


@pytest.fixture(scope="module")
def truth(spark: SparkSession, generated: tuple[Path, dict]) -> Iterator[DataFrame]:
    df = spark.read.parquet(str(generated[0] / "customer_truth")).cache()
    yield df
    df.unpersist()


@pytest.fixture(scope="module")
def member_dates(transactions: DataFrame, truth: DataFrame) -> Iterator[DataFrame]:
    """Per member: behaviour type, first and last parseable purchase date, visits."""
    dated = transactions.dropDuplicates().where(F.col("customer_id").isNotNull())
    df = (
        dated.withColumn("day", F.to_date(_parsed_ts()))
        .where(F.col("day").isNotNull())
        .groupBy("customer_id")
        .agg(F.min("day").alias("first"), F.max("day").alias("last"), F.count("*").alias("visits"))
        .join(truth, "customer_id")
        .cache()
    )
    yield df
    df.unpersist()


def test_row_count_equals_requested_transactions(transactions: DataFrame, summary: dict) -> None:
    assert transactions.count() == N
    assert summary["rows_written"] == N


def test_written_columns_and_types_match_contract(transactions: DataFrame, truth: DataFrame):
    assert transactions.dtypes == [
        ("transaction_id", "string"),
        ("customer_id", "bigint"),
        ("transaction_date", "string"),
        ("payment_date", "string"),
        ("location", "string"),
        ("total_amt", "double"),
        ("discount", "double"),
        ("paid_amt", "double"),
        ("product_json", "string"),
    ]
    assert truth.dtypes == [("customer_id", "bigint"), ("behaviour_type", "string")]


def test_no_parseable_transaction_date_falls_in_2021_gap(transactions: DataFrame) -> None:
    day = F.to_date(_parsed_ts())
    in_gap = transactions.where(day.between(date(2021, 6, 1), date(2021, 12, 31)))
    assert in_gap.count() == 0


def test_parseable_transaction_dates_lie_in_2019_to_2023(transactions: DataFrame) -> None:
    row = transactions.agg(F.min(_parsed_ts()).alias("lo"), F.max(_parsed_ts()).alias("hi")).first()
    assert row["lo"] >= datetime(2019, 1, 1)
    assert row["hi"] < datetime(2024, 1, 1)


def test_truth_holds_every_behaviour_type(truth: DataFrame) -> None:
    types = {r["behaviour_type"] for r in truth.select("behaviour_type").distinct().collect()}
    assert types == TYPES


def test_truth_customer_ids_are_unique(truth: DataFrame) -> None:
    assert truth.select("customer_id").distinct().count() == truth.count()


def test_every_member_in_transactions_is_in_truth(transactions: DataFrame, truth: DataFrame):
    members = transactions.where(F.col("customer_id").isNotNull()).select("customer_id")
    assert members.join(truth, "customer_id", "left_anti").count() == 0


def test_every_truth_member_has_a_transaction(transactions: DataFrame, truth: DataFrame) -> None:
    assert truth.join(transactions, "customer_id", "left_anti").count() == 0


def test_summary_fault_counts_equal_independent_counts(transactions: DataFrame, summary: dict):
    alt_shape = F.col("transaction_date").rlike(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}$")
    row = transactions.agg(
        _count(F.col("total_amt").isNull()).alias("null_total_amt"),
        _count(F.col("product_json").isNull()).alias("null_product_json"),
        _count(F.col("product_json").isNotNull() & _items().isNull()).alias(
            "malformed_product_json"
        ),
        _count(alt_shape & _alt_ts().isNotNull()).alias("alt_format_transaction_date"),
        _count(_iso_ts().isNull() & _alt_ts().isNull()).alias("unparseable_transaction_date"),
        _count(F.col("payment_date").isNull()).alias("null_payment_date"),
    ).first()
    assert summary["faults"] == row.asDict()


def test_every_fault_kind_is_injected(summary: dict) -> None:
    assert all(count > 0 for count in summary["faults"].values()), summary["faults"]
    assert summary["exact_duplicate_rows"] > 0


def test_unparseable_dates_are_the_listed_garbage_values(transactions: DataFrame) -> None:
    bad = transactions.where(_iso_ts().isNull() & _alt_ts().isNull())
    values = {r["transaction_date"] for r in bad.select("transaction_date").distinct().collect()}
    assert values and values <= GARBAGE


def test_summary_quarantinable_count_equals_independent_count(
    transactions: DataFrame, summary: dict
) -> None:
    bad = F.col("total_amt").isNull() | _items().isNull() | _parsed_ts().isNull()
    assert transactions.where(bad).count() == summary["quarantinable_rows"]


def test_malformed_or_null_product_json_never_has_null_total(transactions: DataFrame) -> None:
    both = transactions.where(F.col("total_amt").isNull() & _items().isNull())
    assert both.count() == 0


def test_summary_duplicate_count_equals_rows_minus_distinct_rows(
    transactions: DataFrame, summary: dict
) -> None:
    assert summary["exact_duplicate_rows"] == N - transactions.distinct().count()


def test_transaction_ids_repeat_only_on_exact_duplicate_rows(transactions: DataFrame) -> None:
    distinct_rows = transactions.distinct().count()
    assert transactions.select("transaction_id").distinct().count() == distinct_rows


def test_summary_member_and_line_counts_equal_independent_counts(
    transactions: DataFrame, summary: dict
) -> None:
    row = transactions.agg(
        F.countDistinct("customer_id").alias("distinct_members"),
        _count(F.col("customer_id").isNull()).alias("non_member_rows"),
        F.sum(F.when(_items().isNotNull(), F.size(_items())).otherwise(0)).alias("product_lines"),
    ).first()
    assert {k: summary[k] for k in row.asDict()} == row.asDict()


def test_non_member_rows_are_10_to_20_percent(summary: dict) -> None:
    assert 0.10 <= summary["non_member_rows"] / N <= 0.20


def test_total_amt_is_rounded_sum_of_item_amounts_on_clean_rows(transactions: DataFrame):
    line_sum = F.aggregate(_items(), F.lit(0.0), lambda acc, x: acc + x.quantity * x.unit_price)
    clean = transactions.where(F.col("total_amt").isNotNull() & _items().isNotNull())
    off = clean.where(F.abs(F.col("total_amt") - F.round(line_sum, 2)) > 0.01)
    assert clean.count() > 0
    assert off.count() == 0


def test_paid_amt_is_total_minus_discount(transactions: DataFrame) -> None:
    with_total = transactions.where(F.col("total_amt").isNotNull())
    gap = F.abs(F.col("paid_amt") - (F.col("total_amt") - F.col("discount")))
    assert with_total.where(gap > 0.005).count() == 0


def test_discount_is_zero_or_five_to_ten_percent_of_total(transactions: DataFrame) -> None:
    discounted = transactions.where((F.col("discount") != 0) & F.col("total_amt").isNotNull())
    share = discounted.count() / N
    low, high = F.col("total_amt") * 0.05 - 0.005, F.col("total_amt") * 0.10 + 0.005
    outside = discounted.where(~F.col("discount").between(low, high))
    assert 0.02 <= share <= 0.08
    assert outside.count() == 0


def test_payment_date_is_same_or_up_to_two_days_after_transaction(transactions: DataFrame):
    paid = F.try_to_timestamp("payment_date", F.lit(ISO))
    both = transactions.where(_iso_ts().isNotNull() & F.col("payment_date").isNotNull())
    delay = paid.cast("long") - _iso_ts().cast("long")
    assert both.where(paid.isNull() | (delay < 0) | (delay > 2 * 86_400)).count() == 0


def test_locations_are_the_five_service_locations_with_skew(transactions: DataFrame) -> None:
    counts = {r["location"]: r["count"] for r in transactions.groupBy("location").count().collect()}
    assert set(counts) == {"SG-01", "MY-02", "TH-03", "VN-04", "ID-05"}
    assert max(counts.values()) > 2 * min(counts.values())


def test_new_customers_first_purchase_falls_in_last_three_months(member_dates: DataFrame):
    new = member_dates.where(F.col("behaviour_type") == "new_customers")
    assert new.count() > 0
    assert new.where(F.col("first") < date(2023, 10, 1)).count() == 0


def test_champions_visit_most(member_dates: DataFrame) -> None:
    visits = {
        r["behaviour_type"]: r["v"]
        for r in member_dates.groupBy("behaviour_type").agg(F.avg("visits").alias("v")).collect()
    }
    assert max(visits, key=visits.get) == "champions"


def test_at_risk_last_purchase_is_6_to_12_months_before_end(member_dates: DataFrame) -> None:
    at_risk = member_dates.where(F.col("behaviour_type") == "at_risk")
    days_before_end = F.datediff(F.lit(LAST_DAY), "last")
    row = at_risk.agg(
        F.count("*").alias("n"),
        _count(days_before_end < 183).alias("too_recent"),
        _count(days_before_end <= 365).alias("in_window"),
    ).first()
    # an unparseable date on the last visit can only push the last parseable one further back
    assert row["too_recent"] == 0
    assert row["in_window"] >= 0.95 * row["n"]


def test_lapsed_low_value_last_purchase_is_before_2021(member_dates: DataFrame) -> None:
    lapsed = member_dates.where(F.col("behaviour_type") == "lapsed_low_value")
    assert lapsed.where(F.col("last") >= date(2021, 1, 1)).count() == 0


def test_big_basket_occasionals_have_largest_mean_basket(
    transactions: DataFrame, truth: DataFrame
) -> None:
    baskets = transactions.where(F.col("total_amt").isNotNull()).join(truth, "customer_id")
    means = {
        r["behaviour_type"]: r["m"]
        for r in baskets.groupBy("behaviour_type").agg(F.avg("total_amt").alias("m")).collect()
    }
    assert max(means, key=means.get) == "big_basket_occasionals"


def test_same_seed_rebuilds_identical_transactions(
    spark: SparkSession, transactions: DataFrame
) -> None:
    rebuilt = gd.build_transactions(spark, N, SEED, gd.build_catalogue(spark, SEED)).cache()
    try:
        assert rebuilt.exceptAll(transactions).count() == 0
        assert transactions.exceptAll(rebuilt).count() == 0
    finally:
        rebuilt.unpersist()


def test_same_seed_rebuilds_identical_truth(spark: SparkSession, truth: DataFrame) -> None:
    rebuilt = gd.build_truth(spark, N, SEED)
    assert rebuilt.exceptAll(truth).count() == 0
    assert truth.exceptAll(rebuilt).count() == 0


def test_different_seed_gives_different_transactions(
    spark: SparkSession, transactions: DataFrame
) -> None:
    other = gd.build_transactions(spark, N, SEED + 1, gd.build_catalogue(spark, SEED + 1))
    assert other.exceptAll(transactions).count() > N // 2


def test_summary_json_equals_returned_summary(generated: tuple[Path, dict]) -> None:
    out, summary = generated
    assert json.loads((out / "generation_summary.json").read_text()) == summary


def test_catalogue_has_unique_ids_and_positive_prices(spark: SparkSession) -> None:
    catalogue = gd.build_catalogue(spark, SEED)
    row = catalogue.agg(
        F.count("*").alias("n"),
        F.countDistinct("product_id").alias("ids"),
        F.min("unit_price").alias("low"),
    ).first()
    assert 300 <= row["n"] <= 500
    assert row["ids"] == row["n"]
    assert row["low"] > 0


def test_too_few_transactions_are_rejected(spark: SparkSession) -> None:
    with pytest.raises(ValueError, match="transactions must be >="):
        gd.build_transactions(spark, 10, SEED, gd.build_catalogue(spark, SEED))


def test_cli_defaults_to_seed_size() -> None:
    args = gd.parse_args(["--output", "/tmp/x"])
    assert (args.transactions, args.seed, args.master) == (2_406_316, 42, "local[*]")
