"""
Ingest (SPEC section 2) on small hand-made inputs of the four source kinds.

Every expected table is written out by hand in its test; the comments show the arithmetic.
Timestamps and dates in expected frames are written as text and cast by Spark in the session
time zone, as ingest parses them.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from customer_analytics import cli
from customer_analytics.config.schema import IngestRules, SourceConfig
from customer_analytics.core.errors import InputError
from customer_analytics.io.sources import read_source
from customer_analytics.io.tables import read_table
from customer_analytics.stages import ingest, reconciliation, source_values
from tests.conftest import REPO
from tests.helpers import assert_close, assert_equal, frame

PJ = "product_json"
IL = "invoice_lines"
BL = "basket_lines"
TX = "transactions"

PJ_DDL = (
    "transaction_id string, customer_id long, transaction_date string, location string, "
    "total_amt double, discount double, paid_amt double, product_json string"
)
IL_DDL = (
    "InvoiceNo string, StockCode string, Description string, Quantity long, "
    "InvoiceDate string, UnitPrice double, CustomerID double, Country string"
)
BL_DDL = (
    "BASKET_ID long, CUST_CODE string, SHOP_DATE string, PROD_CODE string, QUANTITY int, "
    "SPEND double, STORE_CODE string, seg_1 string, seg_2 string"
)
TX_DDL = "customer_id long, date date, quantity long, amount double"

LINES_DDL = (
    "source string, order_id string, customer_id string, order_ts timestamp, order_date date, "
    "store_id string, country string, product_id string, product_name string, "
    "quantity double, unit_price double, line_amount double, is_return boolean"
)
ORDERS_DDL = (
    "source string, order_id string, customer_id string, order_ts timestamp, order_date date, "
    "store_id string, country string, order_amount double, discount double, "
    "paid_amount double, item_count double, distinct_products long, is_return boolean"
)
CUSTOMERS_DDL = (
    "customer_id string, source string, first_seen date, last_seen date, store_id string, "
    "country string, price_sensitivity string, lifestage string"
)
PREPARED_REASONS_DDL = "order_id string, reason string"

SEG_COLUMNS = {"price_sensitivity": "seg_1", "lifestage": "seg_2"}


# ---------------------------------------------------------------------------------------------
# Helpers: building inputs and expected frames (no code under test here)


def items(*products: tuple) -> str:
    """A ``product_json`` text from (product_id, product_name, quantity, unit_price) tuples."""
    keys = ("product_id", "product_name", "quantity", "unit_price")
    return json.dumps([dict(zip(keys, p, strict=True)) for p in products])


def source(kind: str, **kwargs) -> SourceConfig:
    return SourceConfig(kind=kind, path="inline", **kwargs)


def prepare(raw: DataFrame, kind: str, **kwargs) -> DataFrame:
    return ingest.prepare(raw, source(kind, **kwargs))


def reconcile(raw: DataFrame, prepared: DataFrame) -> reconciliation.Reconciliation:
    """As the ingest job does: the parts counted on ``prepared``, the input counted on ``raw``."""
    counts = reconciliation.reconciliation_counts(prepared).collect()
    return reconciliation.Reconciliation.from_counts("test", counts, input_rows=raw.count())


def reasons(prepared: DataFrame) -> DataFrame:
    return prepared.select("order_id", "reason")


APPLE = ("A", "Apple", 1, 5.0)
GOOD_PJ = ("T0", 100, "2024-01-04 08:00:00", "SG-01", 5.0, 0.0, 5.0, items(APPLE))


def pj_row(**changes) -> tuple:
    """A valid product_json row ``T9`` of customer 109 with the given fields replaced."""
    values = {
        "transaction_id": "T9",
        "customer_id": 109,
        "transaction_date": "2024-01-05 10:00:00",
        "location": "SG-01",
        "total_amt": 5.0,
        "discount": 0.0,
        "paid_amt": 5.0,
        "product_json": items(APPLE),
        **changes,
    }
    return tuple(values.values())


GOOD_IL = ("536365", "85123A", "HEART", 6, "12/1/2010 8:26", 2.5, 17850.0, "United Kingdom")


def il_row(**changes) -> tuple:
    """A valid invoice line of invoice ``536999`` with the given fields replaced."""
    values = {
        "InvoiceNo": "536999",
        "StockCode": "71053",
        "Description": "LANTERN",
        "Quantity": 2,
        "InvoiceDate": "12/1/2010 8:28",
        "UnitPrice": 3.5,
        "CustomerID": 13047.0,
        "Country": "United Kingdom",
        **changes,
    }
    return tuple(values.values())


# ---------------------------------------------------------------------------------------------
# product_json


def test_product_json_gives_one_order_line_per_json_item(spark):
    raw = frame(
        spark,
        [
            ("T1", 101, "2024-01-05 10:00:00", "SG-01", 12.5, 0.0, 12.5,
             items(("A", "Apple", 2, 5.0), ("B", "Bean", 1, 2.5))),
            ("T2", None, "2024-01-06 09:30:00", "MY-02", 4.0, 0.5, 3.5,
             items(("B", None, 4, 1.0))),
        ],
        PJ_DDL,
    )  # fmt: skip
    expected = frame(
        spark,
        [  # line_amount = quantity * unit_price: 2 * 5.0, 1 * 2.5, 4 * 1.0
            (PJ, "T1", "101", "2024-01-05 10:00:00", "2024-01-05", "SG-01", None,
             "A", "Apple", 2.0, 5.0, 10.0, False),
            (PJ, "T1", "101", "2024-01-05 10:00:00", "2024-01-05", "SG-01", None,
             "B", "Bean", 1.0, 2.5, 2.5, False),
            (PJ, "T2", None, "2024-01-06 09:30:00", "2024-01-06", "MY-02", None,
             "B", None, 4.0, 1.0, 4.0, False),
        ],
        LINES_DDL,
    )  # fmt: skip
    assert_equal(ingest.order_lines(prepare(raw, PJ)), expected)


def test_product_json_order_amount_is_total_amt_and_negative_total_is_a_return(spark):
    raw = frame(
        spark,
        [  # T1 lines: 2*5.0 + 1*2.5 + 1*5.0 = 17.5, but total_amt says 17.0; paid 16.0
            ("T1", 101, "2024-01-05 10:00:00", "SG-01", 17.0, 1.0, 16.0,
             items(("A", "Apple", 2, 5.0), ("B", "Bean", 1, 2.5), ("A", "Apple", 1, 5.0))),
            ("C2", 101, "2024-01-07 11:00:00", "SG-01", -5.0, 0.0, -5.0,
             items(("A", "Apple", -1, 5.0))),
        ],
        PJ_DDL,
    )  # fmt: skip
    expected = frame(
        spark,
        [  # item_count 2+1+1 = 4; distinct products A, B = 2
            (PJ, "T1", "101", "2024-01-05 10:00:00", "2024-01-05", "SG-01", None,
             17.0, 1.0, 16.0, 4.0, 2, False),
            (PJ, "C2", "101", "2024-01-07 11:00:00", "2024-01-07", "SG-01", None,
             -5.0, 0.0, -5.0, -1.0, 1, True),
        ],
        ORDERS_DDL,
    )  # fmt: skip
    assert_equal(ingest.orders(prepare(raw, PJ)), expected)


def test_product_json_rows_sharing_a_transaction_id_are_one_order(spark):
    raw = frame(
        spark,
        [  # T1 in two rows that are not identical (a correction sent later); T2 alone
            ("T1", 101, "2024-01-05 10:00:00", "SG-01", 12.5, 0.0, 12.5,
             items(("A", "Apple", 2, 5.0), ("B", "Bean", 1, 2.5))),
            ("T1", 101, "2024-01-05 09:00:00", "SG-01", 5.0, 0.5, 4.5,
             items(("A", "Apple", 1, 5.0))),
            ("T2", 102, "2024-01-06 10:00:00", "MY-02", 3.0, 0.0, 3.0,
             items(("C", "Corn", 3, 1.0))),
        ],
        PJ_DDL,
    )  # fmt: skip
    expected = frame(
        spark,
        [  # T1: total 12.5 + 5.0, the earlier time, the larger discount and paid amount,
           # items 2 + 1 + 1 = 4, products A and B
            (PJ, "T1", "101", "2024-01-05 09:00:00", "2024-01-05", "SG-01", None,
             17.5, 0.5, 12.5, 4.0, 2, False),
            (PJ, "T2", "102", "2024-01-06 10:00:00", "2024-01-06", "MY-02", None,
             3.0, 0.0, 3.0, 3.0, 1, False),
        ],
        ORDERS_DDL,
    )  # fmt: skip
    assert_equal(ingest.orders(prepare(raw, PJ)), expected)


def test_product_json_customers_are_members_with_first_last_seen_and_most_used_store(spark):
    raw = frame(
        spark,
        [
            ("T1", 101, "2024-01-05 10:00:00", "SG-01", 5.0, 0.0, 5.0, items(APPLE)),
            ("T2", 101, "2024-02-01 10:00:00", "MY-02", 5.0, 0.0, 5.0, items(APPLE)),
            ("T3", 101, "2024-03-01 10:00:00", "MY-02", 5.0, 0.0, 5.0, items(APPLE)),
            ("T4", 102, "2024-01-10 10:00:00", "SG-01", 5.0, 0.0, 5.0, items(APPLE)),
            ("T5", 102, "2024-01-11 10:00:00", "ID-05", 5.0, 0.0, 5.0, items(APPLE)),
            ("T6", None, "2024-01-12 10:00:00", "VN-04", 5.0, 0.0, 5.0, items(APPLE)),
        ],
        PJ_DDL,
    )
    expected = frame(
        spark,
        [  # 101: MY-02 twice, SG-01 once; 102: a tie, the smaller id ID-05; guest T6 absent
            ("101", PJ, "2024-01-05", "2024-03-01", "MY-02", None, None, None),
            ("102", PJ, "2024-01-10", "2024-01-11", "ID-05", None, None, None),
        ],
        CUSTOMERS_DDL,
    )
    prepared = prepare(raw, PJ)
    assert_equal(ingest.customers(ingest.orders(prepared, with_attributes=True)), expected)


#: One faulty product_json row per case, each with its own transaction id, and its reason.
PJ_FAULTS = [
    (pj_row(transaction_id="  "), "missing_order_id"),  # blank id: order_id null
    (pj_row(transaction_id="F01", total_amt=None), "missing_amount"),
    (pj_row(transaction_id="F02", product_json=None), "missing_product_json"),
    (pj_row(transaction_id="F03", product_json=""), "missing_product_json"),
    (pj_row(transaction_id="F04", product_json='[{"product_id":"A","quantity":1'),
     "malformed_product_json"),
    (pj_row(transaction_id="F05", product_json="N/A"), "malformed_product_json"),
    (pj_row(transaction_id="F06", product_json="[]"), "empty_product_json"),
    (pj_row(transaction_id="F07", product_json=items(APPLE, (None, "Nameless", 1, 1.0))),
     "missing_product"),
    (pj_row(transaction_id="F08", product_json=items(APPLE, ("B", "Bean", 0, 1.0))),
     "bad_quantity"),
    (pj_row(transaction_id="F09", product_json='[{"product_id":"A","unit_price":5.0}]'),
     "bad_quantity"),
    (pj_row(transaction_id="F10", product_json=items(("A", "Apple", 1, -5.0))),
     "negative_price"),
    (pj_row(transaction_id="F11", transaction_date="2024-13-45 10:00:00"), "bad_date"),
    (pj_row(transaction_id="F12", transaction_date="2024-02-30 10:00:00"), "bad_date"),
    (pj_row(transaction_id="F13", transaction_date="N/A"), "bad_date"),
    (pj_row(transaction_id="F14", transaction_date=None), "bad_date"),
]  # fmt: skip


def _order_id(row: tuple) -> str | None:
    return row[0].strip() or None


def test_product_json_rows_failing_a_rule_are_quarantined_with_their_reason(spark):
    raw = frame(spark, [GOOD_PJ] + [row for row, _ in PJ_FAULTS], PJ_DDL)
    expected = frame(
        spark,
        [("T0", None)] + [(_order_id(row), reason) for row, reason in PJ_FAULTS],
        PREPARED_REASONS_DDL,
    )
    assert_equal(reasons(prepare(raw, PJ)), expected)


@pytest.mark.parametrize("reason", ingest.QUARANTINE_REASONS)
def test_product_json_rule_switched_off_lets_its_rows_through(spark, reason):
    faulty = [row for row, row_reason in PJ_FAULTS if row_reason == reason]
    raw = frame(spark, [GOOD_PJ, *faulty], PJ_DDL)
    expected = frame(
        spark, [("T0", None)] + [(_order_id(row), None) for row in faulty], PREPARED_REASONS_DDL
    )
    assert_equal(reasons(prepare(raw, PJ, rules=IngestRules(**{reason: False}))), expected)


def test_product_json_switched_off_rules_keep_the_faulty_values_in_order_lines(spark):
    raw = frame(
        spark,
        [pj_row(transaction_date="N/A", product_json=items(("A", "Apple", 2, -5.0)))],
        PJ_DDL,
    )
    rules = IngestRules(bad_date=False, negative_price=False)
    expected = frame(  # 2 * -5.0 = -10.0, a negative line amount: a return line
        spark,
        [(PJ, "T9", "109", None, None, "SG-01", None, "A", "Apple", 2.0, -5.0, -10.0, True)],
        LINES_DDL,
    )
    assert_equal(ingest.order_lines(prepare(raw, PJ, rules=rules)), expected)


def test_the_first_failing_rule_in_order_gives_the_reason_and_detail(spark):
    raw = frame(spark, [pj_row(total_amt=None, transaction_date="N/A")], PJ_DDL)
    expected = frame(
        spark,
        [(PJ, "missing_amount", "total amount is null")],
        "source string, reason string, detail string",
    )
    actual = ingest.quarantine(prepare(raw, PJ), "run-1", datetime(2024, 1, 31, tzinfo=UTC))
    assert_equal(actual.select("source", "reason", "detail"), expected)


def test_quarantine_holds_the_input_row_as_json_with_run_id_and_time(spark):
    raw = frame(
        spark,
        [GOOD_PJ, ("T9", None, "N/A", "SG-01", 5.0, None, 5.0, '[{"product_id":"A"}]')],
        PJ_DDL,
    )
    ingested_at = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
    raw_record = (
        '{"transaction_id":"T9","customer_id":null,"transaction_date":"N/A",'
        '"location":"SG-01","total_amt":5.0,"discount":null,"paid_amt":5.0,'
        '"product_json":"[{\\"product_id\\":\\"A\\"}]"}'
    )
    expected = frame(
        spark,  # the item has no quantity, which bad_quantity tries before bad_date
        [
            (PJ, "bad_quantity", "a product line has a missing or zero quantity", raw_record, 1,
             "run-1", "2024-01-31 12:00:00"),
        ],
        "source string, reason string, detail string, raw_record string, copies long, "
        "run_id string, ingested_at timestamp",
    )  # fmt: skip
    assert_equal(ingest.quarantine(prepare(raw, PJ), "run-1", ingested_at), expected)


def test_bad_date_detail_quotes_the_unparseable_text(spark):
    raw = frame(spark, [pj_row(transaction_date="12-2024 ??:??")], PJ_DDL)
    actual = ingest.quarantine(prepare(raw, PJ), "r", datetime(2024, 1, 1, tzinfo=UTC))
    expected = frame(
        spark, [("bad_date", "unparseable date: 12-2024 ??:??")], "reason string, detail string"
    )
    assert_equal(actual.select("reason", "detail"), expected)


def test_product_json_mixed_date_formats_are_parsed_with_slashes_day_first(spark):
    raw = frame(
        spark,
        [
            pj_row(transaction_id="T1", transaction_date="2024-01-05 10:00:00"),
            pj_row(transaction_id="T2", transaction_date="2024-01-05 10:07"),
            pj_row(transaction_id="T3", transaction_date="2024-01-05"),
            pj_row(transaction_id="T4", transaction_date="05/01/2024 11:30"),  # dd/MM/yyyy
            pj_row(transaction_id="T5", transaction_date="5/1/2024 9:05"),  # d/M/yyyy H:mm
            pj_row(transaction_id="T6", transaction_date="20240105"),
            pj_row(transaction_id="T7", transaction_date=" 2024-01-05 12:00:00 "),  # trimmed
            pj_row(transaction_id="T8", transaction_date="2024-01-05T13:15:30"),  # ISO with T
            pj_row(transaction_id="T9", transaction_date="2024-01-05T14:00:00.5+01:00"),
        ],
        PJ_DDL,
    )
    expected = frame(
        spark,
        [
            ("T1", "2024-01-05 10:00:00"),
            ("T2", "2024-01-05 10:07:00"),
            ("T3", "2024-01-05 00:00:00"),
            ("T4", "2024-01-05 11:30:00"),
            ("T5", "2024-01-05 09:05:00"),
            ("T6", "2024-01-05 00:00:00"),
            ("T7", "2024-01-05 12:00:00"),
            ("T8", "2024-01-05 13:15:30"),
            ("T9", "2024-01-05 13:00:00.5"),  # the session's time zone is UTC
        ],
        "order_id string, order_ts timestamp",
    )
    assert_equal(ingest.orders(prepare(raw, PJ)).select("order_id", "order_ts"), expected)


def test_configured_date_formats_replace_the_defaults(spark):
    raw = frame(
        spark,
        [
            pj_row(transaction_id="T1", transaction_date="05.01.2024"),
            pj_row(transaction_id="T2", transaction_date="2024-01-05 10:00:00"),
        ],
        PJ_DDL,
    )
    expected = frame(
        spark,
        [("T1", "2024-01-05 00:00:00", None), ("T2", None, "bad_date")],
        "order_id string, order_ts timestamp, reason string",
    )
    prepared = prepare(raw, PJ, date_formats=["dd.MM.yyyy"])
    assert_equal(prepared.select("order_id", "order_ts", "reason"), expected)


def test_product_json_missing_required_column_raises_input_error_naming_it(spark):
    raw = frame(spark, [GOOD_PJ], PJ_DDL).drop("total_amt")
    with pytest.raises(InputError, match=r"'total_amt' \(source\.columns\.order_amount\)"):
        prepare(raw, PJ)


# ---------------------------------------------------------------------------------------------
# invoice_lines


def test_invoice_lines_order_sums_line_amounts_and_takes_earliest_line_time(spark):
    raw = frame(
        spark,
        [
            ("536365", "85123A", "HEART", 6, "12/1/2010 8:28", 2.5, 17850.0, "United Kingdom"),
            ("536365", "71053", "LANTERN", 2, "12/1/2010 8:26", 3.25, 17850.0, "United Kingdom"),
            ("536365", "85123A", "HEART", 1, "12/1/2010 8:30", 2.5, 17850.0, "United Kingdom"),
        ],
        IL_DDL,
    )
    expected = frame(
        spark,
        [  # 6*2.5 + 2*3.25 + 1*2.5 = 15.0 + 6.5 + 2.5 = 24.0; items 6+2+1 = 9; 2 products
            (IL, "536365", "17850", "2010-12-01 08:26:00", "2010-12-01", None,
             "United Kingdom", 24.0, None, None, 9.0, 2, False),
        ],
        ORDERS_DDL,
    )  # fmt: skip
    assert_equal(ingest.orders(prepare(raw, IL)), expected)


def test_invoice_lines_order_lines_carry_price_and_amount(spark):
    raw = frame(spark, [GOOD_IL], IL_DDL)
    expected = frame(
        spark,
        [  # 6 * 2.5 = 15.0; CustomerID 17850.0 (a double) -> "17850"
            (IL, "536365", "17850", "2010-12-01 08:26:00", "2010-12-01", None,
             "United Kingdom", "85123A", "HEART", 6.0, 2.5, 15.0, False),
        ],
        LINES_DDL,
    )  # fmt: skip
    assert_equal(ingest.order_lines(prepare(raw, IL)), expected)


def test_customer_id_read_as_double_loses_its_decimal_point(spark):
    raw = frame(
        spark,
        [il_row(InvoiceNo="1", CustomerID=17850.0), il_row(InvoiceNo="2", CustomerID=12346.0)],
        IL_DDL,
    )
    expected = frame(spark, [("1", "17850"), ("2", "12346")], "order_id string, customer_id string")
    assert_equal(ingest.orders(prepare(raw, IL)).select("order_id", "customer_id"), expected)


def test_cancellation_invoice_is_kept_and_flagged_as_return(spark):
    raw = frame(
        spark,
        [
            GOOD_IL,
            ("C536379", "D", "Discount", -1, "12/1/2010 9:41", 27.5, 14527.0, "United Kingdom"),
        ],
        IL_DDL,
    )
    expected = frame(
        spark,
        [  # the C invoice: -1 * 27.5 = -27.5
            (IL, "536365", "17850", "2010-12-01 08:26:00", "2010-12-01", None,
             "United Kingdom", 15.0, None, None, 6.0, 1, False),
            (IL, "C536379", "14527", "2010-12-01 09:41:00", "2010-12-01", None,
             "United Kingdom", -27.5, None, None, -1.0, 1, True),
        ],
        ORDERS_DDL,
    )  # fmt: skip
    assert_equal(ingest.orders(prepare(raw, IL)), expected)


def test_negative_quantity_line_without_c_invoice_is_kept_as_a_return_line(spark):
    raw = frame(
        spark,
        [
            il_row(StockCode="71053", Quantity=2, UnitPrice=3.5),
            il_row(StockCode="22961", Quantity=-3, UnitPrice=1.5),
        ],
        IL_DDL,
    )
    expected = frame(
        spark,
        [  # the order mixes a sale and a return, so the order itself is no return
            ("71053", 2.0, 7.0, False),
            ("22961", -3.0, -4.5, True),
        ],
        "product_id string, quantity double, line_amount double, is_return boolean",
    )
    prepared = prepare(raw, IL)
    actual = ingest.order_lines(prepared).select(
        "product_id", "quantity", "line_amount", "is_return"
    )
    assert_equal(actual, expected)
    expected_order = frame(  # 7.0 - 4.5 = 2.5; 2 - 3 = -1 items
        spark, [(2.5, -1.0, False)], "order_amount double, item_count double, is_return boolean"
    )
    order = ingest.orders(prepared).select("order_amount", "item_count", "is_return")
    assert_equal(order, expected_order)


def test_order_of_negative_quantity_lines_only_is_a_return(spark):
    raw = frame(spark, [il_row(Quantity=-3, UnitPrice=1.5)], IL_DDL)
    expected = frame(
        spark,
        [("536999", -4.5, -3.0, True)],
        "order_id string, order_amount double, item_count double, is_return boolean",
    )
    actual = ingest.orders(prepare(raw, IL)).select(
        "order_id", "order_amount", "item_count", "is_return"
    )
    assert_equal(actual, expected)


def test_guests_stay_in_lines_and_orders_but_not_in_customers(spark):
    raw = frame(
        spark,
        [GOOD_IL, il_row(InvoiceNo="536380", CustomerID=None, Country="France")],
        IL_DDL,
    )
    prepared = prepare(raw, IL)
    expected_orders = frame(
        spark, [("536365", "17850"), ("536380", None)], "order_id string, customer_id string"
    )
    assert_equal(ingest.order_lines(prepared).select("order_id", "customer_id"), expected_orders)
    assert_equal(ingest.orders(prepared).select("order_id", "customer_id"), expected_orders)
    expected_customers = frame(
        spark,
        [("17850", IL, "2010-12-01", "2010-12-01", None, "United Kingdom", None, None)],
        CUSTOMERS_DDL,
    )
    customers = ingest.customers(ingest.orders(prepared, with_attributes=True))
    assert_equal(customers, expected_customers)


def _slash_dates(spark, *dates: str):
    return frame(
        spark, [il_row(InvoiceNo=str(i), InvoiceDate=d) for i, d in enumerate(dates)], IL_DDL
    )


def test_slash_dates_read_month_first_for_invoice_lines_unless_told(spark):
    raw = _slash_dates(spark, "12/1/2010 8:26")

    assert prepare(raw, IL).select("order_ts").first()[0] == datetime(2010, 12, 1, 8, 26)


def test_slash_dates_read_in_the_order_given_and_only_in_it(spark):
    raw = _slash_dates(spark, "12/1/2010 8:26", "13/08/2011 10:00", "2011-08-13 10:00:00")
    expected = {
        # month first (Online Retail's order): no month 13
        "month_first": [("0", "2010-12-01 08:26:00"), ("1", None), ("2", "2011-08-13 10:00:00")],
        "day_first": [
            ("0", "2010-01-12 08:26:00"),
            ("1", "2011-08-13 10:00:00"),
            ("2", "2011-08-13 10:00:00"),
        ],
    }

    for order, rows in expected.items():
        prepared = ingest.prepare(raw, source(IL), slash_order=order)
        assert_equal(
            prepared.select("order_id", "order_ts"),
            frame(spark, rows, "order_id string, order_ts timestamp"),
        )


@pytest.mark.parametrize(
    ("dates", "order"),
    [
        (["13/08/2011 10:00", "01/02/2011 9:00", "2011-08-13 10:00:00"], "day_first"),
        (["12/31/2010 8:26", "1/2/2011 9:00"], "month_first"),
        (["2011-08-13 10:00:00", "20110813"], None),
    ],
)
def test_the_slash_order_is_the_one_a_number_above_12_decides(spark, dates, order):
    raw = _slash_dates(spark, *dates)

    figures = ingest.slash_date_figures(raw, source(IL)).collect()

    assert ingest.slash_date_order(figures) == order


def test_slash_dates_that_read_both_ways_are_refused_with_two_samples(spark):
    raw = _slash_dates(spark, "05/03/2011 10:00", "12/11/2011 09:30", "01/02/2011 8:00")
    figures = ingest.slash_date_figures(raw, source(IL)).collect()

    with pytest.raises(InputError) as refused:
        ingest.slash_date_order(figures)

    assert str(refused.value) == (
        "source.path: 'inline': its 3 dates with slashes, such as '01/02/2011 8:00' and "
        "'12/11/2011 09:30', read both day first and month first (no number above 12); set "
        'source.date_formats, e.g. ["dd/MM/yyyy HH:mm"] or ["MM/dd/yyyy HH:mm"]'
    )


def test_slash_dates_written_both_ways_are_refused(spark):
    raw = _slash_dates(spark, "13/08/2011 10:00", "12/31/2011 09:30")
    figures = ingest.slash_date_figures(raw, source(IL)).collect()

    with pytest.raises(InputError, match="day first in some rows and month first in others"):
        ingest.slash_date_order(figures)


def test_each_file_decides_for_itself_and_files_that_disagree_are_refused(spark):
    lines = [
        ("a.csv", "13/08/2011 10:00"),  # day first
        ("a.csv", "01/09/2011 09:00"),
        ("b.csv", "2011-08-13 10:00:00"),  # no slashes: no say
        ("c.csv", "08/14/2011 10:00"),  # month first
    ]
    raw = frame(spark, [(*il_row(InvoiceDate=d), f) for f, d in lines], f"{IL_DDL}, file string")

    def order_of(rows):
        figures = ingest.slash_date_figures(rows, source(IL), file=F.col("file"))
        return ingest.slash_date_order(figures.collect())

    assert order_of(raw.filter("file != 'c.csv'")) == "day_first"
    with pytest.raises(InputError, match=r"'a.csv'.* are day first, and those of 'c.csv' month"):
        order_of(raw)


def test_a_date_column_that_is_not_text_has_no_slash_figures(spark):
    raw = frame(spark, [(3, date(1997, 1, 2), 1, 9.5)], TX_DDL)

    assert ingest.slash_date_figures(raw, source(TX)) is None


def test_invoice_lines_failing_a_rule_are_quarantined_with_their_reason(spark):
    raw = frame(
        spark,
        [
            GOOD_IL,
            il_row(InvoiceNo=None),
            il_row(InvoiceNo="F1", UnitPrice=None),
            il_row(InvoiceNo="F2", StockCode=None),
            il_row(InvoiceNo="F3", StockCode=" "),
            il_row(InvoiceNo="F4", Quantity=0),
            il_row(InvoiceNo="F5", Quantity=None),
            il_row(InvoiceNo="A563185", StockCode="B", UnitPrice=-11062.06),  # bad debt
            il_row(InvoiceNo="F6", InvoiceDate="13/13/2011 10:00"),  # month 13 either way
        ],
        IL_DDL,
    )
    expected = frame(
        spark,
        [
            ("536365", None),
            (None, "missing_order_id"),
            ("F1", "missing_amount"),
            ("F2", "missing_product"),
            ("F3", "missing_product"),
            ("F4", "bad_quantity"),
            ("F5", "bad_quantity"),
            ("A563185", "negative_price"),
            ("F6", "bad_date"),
        ],
        PREPARED_REASONS_DDL,
    )
    assert_equal(reasons(prepare(raw, IL)), expected)


def test_customer_column_is_mapped_through_source_columns(spark):
    raw = frame(spark, [GOOD_IL], IL_DDL).withColumnRenamed("CustomerID", "cust_no")
    prepared = prepare(raw, IL, columns={"customer_id": "cust_no"})
    expected = frame(spark, [("536365", "17850")], "order_id string, customer_id string")
    assert_equal(ingest.orders(prepared).select("order_id", "customer_id"), expected)


def test_mapped_column_absent_from_the_file_raises_input_error_naming_it(spark):
    raw = frame(spark, [GOOD_IL], IL_DDL)
    with pytest.raises(InputError, match=r"'cust_no' \(source\.columns\.customer_id\)"):
        prepare(raw, IL, columns={"customer_id": "cust_no"})


def test_missing_required_invoice_column_raises_input_error_naming_it(spark):
    raw = frame(spark, [GOOD_IL], IL_DDL).drop("UnitPrice")
    with pytest.raises(InputError, match=r"'UnitPrice'"):
        prepare(raw, IL)


# ---------------------------------------------------------------------------------------------
# Duplicates and reconciliation


def test_exact_duplicate_rows_are_counted_once_and_reported_excluded(spark):
    raw = frame(spark, [GOOD_IL, GOOD_IL, GOOD_IL, il_row()], IL_DDL)
    prepared = prepare(raw, IL)
    recon = reconcile(raw, prepared)
    assert (recon.input_rows, recon.accepted_rows, recon.lines_written) == (4, 2, 2)
    assert recon.excluded == {"exact_duplicate": 2}
    assert recon.quarantined == {}
    assert recon.balanced  # 2 accepted + 2 excluded = 4
    expected = frame(spark, [("536365", 6.0), ("536999", 2.0)], "order_id string, quantity double")
    assert_equal(ingest.order_lines(prepared).select("order_id", "quantity"), expected)


def test_product_json_rows_alike_but_for_their_products_are_not_duplicates(spark):
    pear = pj_row(product_json=items(("P", "Pear", 1, 5.0)))
    raw = frame(spark, [pj_row(), pear, pear], PJ_DDL)
    prepared = prepare(raw, PJ)
    recon = reconcile(raw, prepared)
    # T9 with an apple and T9 with a pear are two rows; the second pear is a copy
    assert (recon.input_rows, recon.accepted_rows, recon.lines_written) == (3, 2, 2)
    assert recon.excluded == {"exact_duplicate": 1}
    expected = frame(spark, [("T9", "A"), ("T9", "P")], "order_id string, product_id string")
    assert_equal(ingest.order_lines(prepared).select("order_id", "product_id"), expected)


def test_a_duplicated_rejected_row_is_quarantined_once_with_its_copies(spark):
    bad = il_row(UnitPrice=-1.0)
    raw = frame(spark, [GOOD_IL, bad, bad], IL_DDL)
    prepared = prepare(raw, IL)
    recon = reconcile(raw, prepared)
    assert recon.quarantined == {"negative_price": 1}
    assert recon.excluded == {"exact_duplicate": 1}
    assert recon.balanced  # 1 accepted + 1 quarantined + 1 excluded = 3
    quarantined = ingest.quarantine(prepared, "r", datetime(2024, 1, 1, tzinfo=UTC))
    assert_equal(
        quarantined.select("reason", "copies"),
        frame(spark, [("negative_price", 2)], "reason string, copies long"),
    )


def test_duplicate_rule_switched_off_keeps_every_copy(spark):
    raw = frame(spark, [GOOD_IL, GOOD_IL], IL_DDL)
    prepared = prepare(raw, IL, rules=IngestRules(exact_duplicate=False))
    recon = reconcile(raw, prepared)
    assert (recon.input_rows, recon.accepted_rows, recon.excluded) == (2, 2, {})
    assert recon.balanced
    expected = frame(  # two lines of 6 * 2.5 = 15.0: 30.0, 12 items
        spark, [("536365", 30.0, 12.0)], "order_id string, order_amount double, item_count double"
    )
    actual = ingest.orders(prepared).select("order_id", "order_amount", "item_count")
    assert_equal(actual, expected)


def test_reconciliation_input_equals_accepted_plus_quarantined_plus_excluded(spark):
    raw = frame(
        spark,
        [
            pj_row(transaction_id="T1", product_json=items(APPLE, ("B", "Bean", 2, 1.0))),
            pj_row(transaction_id="T1", product_json=items(APPLE, ("B", "Bean", 2, 1.0))),
            pj_row(transaction_id="T2"),
            pj_row(transaction_id="T3", total_amt=None),
            pj_row(transaction_id="T4", transaction_date="N/A"),
            pj_row(transaction_id="T4", transaction_date="N/A"),
            pj_row(transaction_id="T5", product_json="[]"),
        ],
        PJ_DDL,
    )
    recon = reconcile(raw, prepare(raw, PJ))
    # 7 rows: T1 twice (one copy excluded), T2 accepted, T3 and T4 (twice) and T5 quarantined
    assert recon.input_rows == 7
    assert recon.accepted_rows == 2
    assert recon.lines_written == 3  # T1 has 2 items, T2 has 1
    assert recon.quarantined == {"bad_date": 1, "empty_product_json": 1, "missing_amount": 1}
    assert recon.excluded == {"exact_duplicate": 2}
    parts = recon.accepted_rows + sum(recon.quarantined.values()) + sum(recon.excluded.values())
    assert parts == 7
    assert recon.balanced
    assert recon.rows("run-1") == [
        ("run-1", "test", "accepted", None, 2, 3),
        ("run-1", "test", "quarantined", "bad_date", 1, None),
        ("run-1", "test", "quarantined", "empty_product_json", 1, None),
        ("run-1", "test", "quarantined", "missing_amount", 1, None),
        ("run-1", "test", "excluded", "exact_duplicate", 2, None),
    ]


def test_reconciliation_is_unbalanced_when_an_input_row_is_not_accounted_for(spark):
    raw = frame(spark, [GOOD_IL, il_row(), il_row(InvoiceNo="537000")], IL_DDL)
    # a row lost between reading and preparing: 3 input rows, only 2 accounted for
    prepared = prepare(raw.filter(F.col("InvoiceNo") != "537000"), IL)
    recon = reconcile(raw, prepared)
    assert recon.input_rows == 3
    assert (recon.accepted_rows, recon.quarantined, recon.excluded) == (2, {}, {})
    assert not recon.balanced  # 2 + 0 + 0 = 2, not 3


def test_reconciliation_is_unbalanced_when_a_count_is_off():
    recon = reconciliation.Reconciliation("s", 10, 5, 5, {"bad_date": 2}, {"exact_duplicate": 2})
    assert not recon.balanced  # 5 + 2 + 2 = 9, not 10


# ---------------------------------------------------------------------------------------------
# basket_lines


def _baskets(spark):
    return frame(
        spark,
        [
            (1001, "CUST01", "20060410", "PRD1", 2, 3.5, "STORE1", "CT", "BU"),
            (1001, "CUST01", "20060410", "PRD2", 1, 1.0, "STORE1", "CT", "BU"),
            (1002, None, "20060411", "PRD1", 1, 1.75, "STORE2", None, None),
            (1003, "CUST01", "20060420", "PRD1", 1, 1.75, "STORE2", "CT", "BU"),
            (1004, "CUST02", "20060421", "PRD3", 3, 4.5, "STORE2", "AZ", None),
        ],
        BL_DDL,
    )


def test_basket_lines_orders_sum_spend_per_basket(spark):
    expected = frame(
        spark,
        [  # basket 1001: 3.5 + 1.0 = 4.5, 2 + 1 = 3 items
            (BL, "1001", "CUST01", "2006-04-10 00:00:00", "2006-04-10", "STORE1", None,
             4.5, None, None, 3.0, 2, False),
            (BL, "1002", None, "2006-04-11 00:00:00", "2006-04-11", "STORE2", None,
             1.75, None, None, 1.0, 1, False),
            (BL, "1003", "CUST01", "2006-04-20 00:00:00", "2006-04-20", "STORE2", None,
             1.75, None, None, 1.0, 1, False),
            (BL, "1004", "CUST02", "2006-04-21 00:00:00", "2006-04-21", "STORE2", None,
             4.5, None, None, 3.0, 1, False),
        ],
        ORDERS_DDL,
    )  # fmt: skip
    assert_equal(ingest.orders(prepare(_baskets(spark), BL, columns=SEG_COLUMNS)), expected)


def test_basket_lines_have_spend_as_line_amount_and_no_unit_price(spark):
    raw = _baskets(spark).filter("BASKET_ID = 1002")
    expected = frame(
        spark,
        [(BL, "1002", None, "2006-04-11 00:00:00", "2006-04-11", "STORE2", None,
          "PRD1", None, 1.0, None, 1.75, False)],
        LINES_DDL,
    )  # fmt: skip
    assert_equal(ingest.order_lines(prepare(raw, BL, columns=SEG_COLUMNS)), expected)


def test_basket_customers_carry_mapped_price_sensitivity_and_lifestage(spark):
    expected = frame(
        spark,
        [  # CUST01: STORE1 and STORE2 one basket each, a tie -> STORE1; non-member absent
            ("CUST01", BL, "2006-04-10", "2006-04-20", "STORE1", None, "CT", "BU"),
            ("CUST02", BL, "2006-04-21", "2006-04-21", "STORE2", None, "AZ", None),
        ],
        CUSTOMERS_DDL,
    )
    prepared = prepare(_baskets(spark), BL, columns=SEG_COLUMNS)
    assert_equal(ingest.customers(ingest.orders(prepared, with_attributes=True)), expected)


def test_basket_lines_failing_a_rule_are_quarantined_with_their_reason(spark):
    raw = frame(
        spark,
        [
            (1011, "CUST09", "20060410", "PRD1", 1, None, "S", None, None),
            (1012, "CUST09", "20060410", None, 1, 1.0, "S", None, None),
            (1013, "CUST09", "20060410", "PRD1", 0, 1.0, "S", None, None),
            (1014, "CUST09", "20060432", "PRD1", 1, 1.0, "S", None, None),
        ],
        BL_DDL,
    )
    expected = frame(
        spark,
        [
            ("1011", "missing_amount"),  # null SPEND
            ("1012", "missing_product"),
            ("1013", "bad_quantity"),
            ("1014", "bad_date"),  # 32 April
        ],
        PREPARED_REASONS_DDL,
    )
    assert_equal(reasons(prepare(raw, BL, columns=SEG_COLUMNS)), expected)


# ---------------------------------------------------------------------------------------------
# transactions


def test_transactions_without_order_id_make_one_order_per_row(spark):
    raw = frame(
        spark,
        [
            (1, "1997-01-01", 1, 11.77),
            (2, "1997-01-12", 5, 77.0),
            (2, "1997-01-12", 2, 20.0),
            (3, "1997-01-02", 1, -9.5),
        ],
        TX_DDL,
    )
    prepared = prepare(raw, TX)
    expected = frame(
        spark,
        [
            (TX, "1", "1997-01-01 00:00:00", "1997-01-01", 11.77, 1.0, False),
            (TX, "2", "1997-01-12 00:00:00", "1997-01-12", 77.0, 5.0, False),
            (TX, "2", "1997-01-12 00:00:00", "1997-01-12", 20.0, 2.0, False),
            (TX, "3", "1997-01-02 00:00:00", "1997-01-02", -9.5, 1.0, True),  # negative amount
        ],
        "source string, customer_id string, order_ts timestamp, order_date date, "
        "order_amount double, item_count double, is_return boolean",
    )
    orders = ingest.orders(prepared)
    actual = orders.select(
        "source", "customer_id", "order_ts", "order_date", "order_amount", "item_count",
        "is_return",
    )  # fmt: skip
    assert_equal(actual, expected)
    ids = [r.order_id for r in orders.select("order_id").collect()]
    assert None not in ids and len(set(ids)) == 4


def test_transactions_identical_rows_are_kept_by_default_as_repeat_purchases(spark):
    twice = (2, "1997-01-12", 2, 20.0)  # the same amount on the same day: two purchases
    raw = frame(spark, [twice, twice, (3, "1997-01-02", 1, 9.5)], TX_DDL)
    prepared = prepare(raw, TX)
    recon = reconcile(raw, prepared)
    assert (recon.input_rows, recon.accepted_rows, recon.excluded) == (3, 3, {})
    expected = frame(
        spark, [("2", 20.0), ("2", 20.0), ("3", 9.5)], "customer_id string, order_amount double"
    )
    assert_equal(ingest.orders(prepared).select("customer_id", "order_amount"), expected)


def test_transactions_with_duplicate_rule_on_keep_identical_rows_once(spark):
    twice = (2, "1997-01-12", 2, 20.0)
    raw = frame(spark, [twice, twice, (3, "1997-01-02", 1, 9.5)], TX_DDL)
    prepared = prepare(raw, TX, rules=IngestRules(exact_duplicate=True))
    recon = reconcile(raw, prepared)
    assert (recon.input_rows, recon.accepted_rows, recon.excluded) == (3, 2, {"exact_duplicate": 1})
    expected = frame(spark, [("2", 20.0), ("3", 9.5)], "customer_id string, order_amount double")
    assert_equal(ingest.orders(prepared).select("customer_id", "order_amount"), expected)


def test_transactions_line_unit_price_is_amount_per_item(spark):
    raw = frame(spark, [(2, "1997-01-12", 5, 77.0)], TX_DDL)
    expected = frame(  # 77.0 / 5 = 15.4
        spark, [(5.0, 15.4, 77.0)], "quantity double, unit_price double, line_amount double"
    )
    actual = ingest.order_lines(prepare(raw, TX)).select("quantity", "unit_price", "line_amount")
    assert_close(actual, expected)


def test_transactions_sharing_an_order_id_sum_their_amounts(spark):
    raw = frame(
        spark,
        [
            ("c1", "2024-01-01", "o1", "p1", 1, 5.0),
            ("c1", "2024-01-01", "o1", "p2", 2, 7.0),
            ("c1", "2024-01-03", "o2", "p2", -1, -3.5),
        ],
        "customer_id string, date string, order_id string, product_id string, quantity long, "
        "amount double",
    )
    expected = frame(
        spark,
        [  # o1: 5.0 + 7.0 = 12.0, 1 + 2 = 3 items, 2 products
            (TX, "o1", "c1", "2024-01-01 00:00:00", "2024-01-01", None, None,
             12.0, None, None, 3.0, 2, False),
            (TX, "o2", "c1", "2024-01-03 00:00:00", "2024-01-03", None, None,
             -3.5, None, None, -1.0, 1, True),
        ],
        ORDERS_DDL,
    )  # fmt: skip
    assert_equal(ingest.orders(prepare(raw, TX)), expected)


def test_transactions_date_column_mapped_as_order_date(spark):
    raw = frame(
        spark,
        [("c1", "01/02/1997", 10.0), ("c2", "1997-02-01", 5.0)],
        "cust string, day string, spend double",
    )
    columns = {"customer_id": "cust", "order_date": "day", "order_amount": "spend"}
    expected = frame(  # transactions try yyyy-MM-dd, ..., M/d/yyyy: 01/02 is 2 January
        spark,
        [("c1", "1997-01-02", 10.0), ("c2", "1997-02-01", 5.0)],
        "customer_id string, order_date date, order_amount double",
    )
    actual = ingest.orders(prepare(raw, TX, columns=columns))
    assert_equal(actual.select("customer_id", "order_date", "order_amount"), expected)


def test_transactions_failing_a_rule_are_quarantined_with_their_reason(spark):
    raw = frame(
        spark,
        [(1, "1997-01-01", 1, 11.77), (2, "1997-01-02", 1, None), (3, None, 1, 4.0)],
        TX_DDL,
    )
    expected = frame(
        spark,
        [("1", None), ("2", "missing_amount"), ("3", "bad_date")],
        "customer_id string, reason string",
    )
    assert_equal(prepare(raw, TX).select("customer_id", "reason"), expected)


# ---------------------------------------------------------------------------------------------
# Reading files


PJ_CSV = (
    "transaction_id,customer_id,transaction_date,location,total_amt,discount,paid_amt,"
    "product_json\n"
    'T1,101,2024-01-05 10:00:00,SG-01,7.5,0,7.5,"[{""product_id"":""A"",""product_name"":'
    '""Apple, red"",""quantity"":3,""unit_price"":2.5}]"\n'
    'T2,,25/01/2024 11:30,MY-02,,0,4,"[{""product_id"":""B"",""quantity"":4,'
    '""unit_price"":1.0}]"\n'
)


def test_csv_source_with_doubled_quotes_is_read_and_ingested(spark, tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text(PJ_CSV, encoding="utf-8")
    raw = read_source(spark, SourceConfig(kind=PJ, path=str(path)))
    prepared = ingest.prepare(raw, SourceConfig(kind=PJ, path=str(path)))
    expected_lines = frame(
        spark,
        [  # 3 * 2.5 = 7.5; T2 has an empty total_amt: quarantined
            (PJ, "T1", "101", "2024-01-05 10:00:00", "2024-01-05", "SG-01", None,
             "A", "Apple, red", 3.0, 2.5, 7.5, False),
        ],
        LINES_DDL,
    )  # fmt: skip
    assert_equal(ingest.order_lines(prepared), expected_lines)
    assert_equal(
        reasons(prepared).filter("reason is not null"),
        frame(spark, [("T2", "missing_amount")], PREPARED_REASONS_DDL),
    )


def test_json_lines_source_is_read_and_ingested(spark, tmp_path):
    path = tmp_path / "tx.json"
    path.write_text(
        '{"customer_id": 7, "date": "1997-01-01", "quantity": 2, "amount": 10.5}\n'
        '{"customer_id": 8, "date": "1997-01-03", "quantity": 1, "amount": 4.25}\n',
        encoding="utf-8",
    )
    raw = read_source(spark, SourceConfig(kind=TX, path=str(path)))
    prepared = ingest.prepare(raw, SourceConfig(kind=TX, path=str(path)))
    expected = frame(
        spark,
        [("7", "1997-01-01", 10.5), ("8", "1997-01-03", 4.25)],
        "customer_id string, order_date date, order_amount double",
    )
    actual = ingest.orders(prepared).select("customer_id", "order_date", "order_amount")
    assert_equal(actual, expected)


def test_csv_record_with_line_breaks_in_a_quoted_field_is_one_row(spark, tmp_path):
    path = tmp_path / "retail.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        '536365,A,"MUG, ""LARGE""\nBLUE",2,12/1/2010 8:26,2.5,17850,United Kingdom\n'
        '536366,B,"TEA\r\nPOT\n",1,12/1/2010 8:28,4.0,17850,United Kingdom\n'
        "536367,C,PLATE,3,12/1/2010 8:34,1.0,13047,United Kingdom\n",
        encoding="utf-8",
    )
    source = SourceConfig(kind=IL, path=str(path))

    raw = read_source(spark, source)

    assert raw.count() == 3  # three records in five lines of text
    names = ingest.order_lines(ingest.prepare(raw, source)).select("product_id", "product_name")
    assert sorted(names.collect()) == [
        ("A", 'MUG, "LARGE"\nBLUE'),
        ("B", "TEA\r\nPOT\n"),
        ("C", "PLATE"),
    ]


def test_parquet_from_pandas_with_nanosecond_timestamps_is_read(spark, tmp_path):
    import pandas as pd
    import pyarrow.parquet as pq

    path = tmp_path / "retail.parquet"
    pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536366"],
            "StockCode": ["A", "B"],
            "Description": ["MUG", "TEA"],
            "Quantity": [2, 1],
            "InvoiceDate": pd.to_datetime(
                ["2010-12-01 08:26:00", "2011-06-30 23:59:59.5"], format="ISO8601"
            ),
            "UnitPrice": [2.5, 4.0],
            "CustomerID": [17850.0, None],
            "Country": ["United Kingdom", "France"],
        }
    ).to_parquet(path)
    assert str(pq.read_schema(path).field("InvoiceDate").type) == "timestamp[ns]"
    source = SourceConfig(kind=IL, path=str(path))

    lines = ingest.order_lines(ingest.prepare(read_source(spark, source), source))

    expected = frame(
        spark,
        [("536365", "2010-12-01 08:26:00"), ("536366", "2011-06-30 23:59:59.5")],
        "order_id string, order_ts timestamp",
    )
    assert_equal(lines.select("order_id", "order_ts"), expected)


def test_an_empty_csv_is_refused_as_empty(spark, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(b"")
    source = SourceConfig(kind=IL, path=str(path))

    with pytest.raises(InputError) as error:
        ingest.prepare(read_source(spark, source), source)

    assert str(error.value) == (
        f"source.path: invoice_lines input '{path}' has no columns: the file is empty (not even "
        "a header row)"
    )


def test_read_source_raises_input_error_for_a_path_that_matches_nothing(spark, tmp_path):
    missing = tmp_path / "nowhere" / "*.parquet"
    with pytest.raises(InputError, match="nothing found at"):
        read_source(spark, SourceConfig(kind=PJ, path=str(missing)))


# ---------------------------------------------------------------------------------------------
# The whole job through the command line (slower: one Spark job per table)


CANONICAL_TABLES = ("order_lines", "orders", "customers", "quarantine", "ingest_reconciliation")


def _ingest_args(source_path: Path, warehouse: Path, *more: str) -> list[str]:
    return [
        "ingest",
        "--conf",
        "conf/local.yaml",
        "--set",
        f"source.path={source_path}",
        "--set",
        "source.kind=product_json",
        "--set",
        "source.format=csv",
        "--set",
        f"warehouse.path={warehouse}",
        *more,
    ]


def test_cli_missing_source_path_exits_2_with_one_line_and_writes_nothing(
    spark, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(REPO)
    warehouse = tmp_path / "wh"
    code = cli.main(_ingest_args(tmp_path / "absent.csv", warehouse))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "absent.csv" in err and "source.path" in err
    assert not warehouse.exists()


def test_cli_missing_column_exits_2_naming_it_and_writes_no_table(
    spark, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(REPO)
    path = tmp_path / "tx.csv"
    path.write_text("transaction_id,customer_id,transaction_date\nT1,1,2024-01-05\n")
    warehouse = tmp_path / "wh"
    code = cli.main(_ingest_args(path, warehouse))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "'total_amt'" in err and "'product_json'" in err
    for table in CANONICAL_TABLES:
        assert not (warehouse / table).exists(), table


def test_cli_refuses_a_file_with_no_row_accepted_and_writes_no_table(
    spark, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(REPO)
    path = tmp_path / "tx.csv"
    path.write_text(
        "transaction_id,customer_id,transaction_date,location,total_amt,discount,paid_amt,"
        "product_json\n"
        'T1,101,2024-01-05 10:00:00,SG-01,,0,7.5,"[]"\n'
        'T2,102,2024-01-06 10:00:00,SG-01,,0,4,"[]"\n',
        encoding="utf-8",
    )
    warehouse = tmp_path / "wh"

    code = cli.main(_ingest_args(path, warehouse))

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines() == [
        f"customer-analytics: error: ingest accepted none of the 2 input rows of {path}, "
        "nothing written: missing_amount 2 (e.g. total amount is null)"
    ]
    assert not any((warehouse / table).exists() for table in CANONICAL_TABLES)


def test_cli_refuses_more_rejected_rows_than_the_limit_unless_it_is_raised(
    spark, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(REPO)
    path = tmp_path / "tx.csv"
    path.write_text(PJ_CSV, encoding="utf-8")  # T2 has no amount: 1 of 2 rows quarantined
    warehouse = tmp_path / "wh"

    refused = cli.main(_ingest_args(path, warehouse))
    err = capsys.readouterr().err
    accepted = cli.main(_ingest_args(path, warehouse, "--set", "source.max_rejected_share=0.5"))

    assert refused == 2
    assert "(50.0%), more than source.max_rejected_share (0.05), nothing written" in err
    assert accepted == 0
    quarantine = read_table(spark, str(warehouse / "quarantine")).select("reason").collect()
    assert [row.reason for row in quarantine] == ["missing_amount"]


def test_cli_rerun_writes_a_new_version_with_the_same_rows(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    path = tmp_path / "tx.csv"
    path.write_text(PJ_CSV, encoding="utf-8")
    warehouse = tmp_path / "wh"
    # the orders table keeps the customer attributes: features take their latest value
    expected_orders = frame(
        spark,
        [(PJ, "T1", "101", "2024-01-05 10:00:00", "2024-01-05", "SG-01", None,
          7.5, 0.0, 7.5, 3.0, 1, False, None, None)],
        f"{ORDERS_DDL}, price_sensitivity string, lifestage string",
    )  # fmt: skip
    for run in (0, 1):
        assert (
            cli.main(_ingest_args(path, warehouse, "--set", "source.max_rejected_share=0.5")) == 0
        )
        for table in ("order_lines", "orders", "customers", "quarantine"):
            assert DeltaTable(str(warehouse / table)).version() == run, table
        assert_equal(read_table(spark, str(warehouse / "orders")), expected_orders)
        quarantine = read_table(spark, str(warehouse / "quarantine"))
        assert_equal(
            quarantine.select("reason"), frame(spark, [("missing_amount",)], "reason string")
        )
    reconciliation = DeltaTable(str(warehouse / "ingest_reconciliation")).to_pyarrow_table()
    rows = sorted((r["category"], r["reason"] or "", r["rows"]) for r in reconciliation.to_pylist())
    # appended once per run: T1 accepted, T2 quarantined (empty total_amt)
    assert rows == [("accepted", "", 1)] * 2 + [("quarantined", "missing_amount", 1)] * 2
    assert len({r["run_id"] for r in reconciliation.to_pylist()}) == 2


def test_a_purchase_without_a_quantity_is_an_order_of_unknown_item_count(spark):
    raw = frame(spark, [(3, "1997-01-02", None, 9.5), (4, "1997-01-03", 2, 4.0)], TX_DDL)
    expected = frame(
        spark,
        [("3", 9.5, None), ("4", 4.0, 2.0)],
        "customer_id string, order_amount double, item_count double",
    )

    actual = ingest.orders(prepare(raw, TX)).select("customer_id", "order_amount", "item_count")

    assert_equal(actual, expected)


def test_a_run_that_accepts_no_row_is_refused_with_its_commonest_reasons():
    recon = reconciliation.Reconciliation(
        "s",
        5,
        0,
        0,
        {"bad_date": 1, "bad_quantity": 3, "missing_amount": 1},
        {},
        {"bad_quantity": "not a number: '1,296'", "bad_date": "unparseable date: 13/13/2011"},
    )

    with pytest.raises(InputError) as refused:
        recon.require_accepted(0.05, path="sales.csv")

    assert str(refused.value) == (
        "ingest accepted none of the 5 input rows of sales.csv, nothing written: "
        "bad_quantity 3 (e.g. not a number: '1,296'); "
        "bad_date 1 (e.g. unparseable date: 13/13/2011); missing_amount 1"
    )


def test_a_rejected_share_above_the_limit_is_refused_and_one_at_the_limit_passes():
    # 100 rows, 5 quarantined: 5% passes at 0.05 and fails at 0.04
    recon = reconciliation.Reconciliation("s", 100, 95, 95, {"bad_date": 5}, {}, {})

    assert recon.require_accepted(0.05, path="x.csv") is recon
    with pytest.raises(
        InputError,
        match=r"quarantined 5 of the 100 input rows of x.csv \(5.0%\), "
        r"more than source.max_rejected_share \(0.04\), nothing written: bad_date 5$",
    ):
        recon.require_accepted(0.04, path="x.csv")


def test_the_reconciliation_keeps_one_detail_of_each_reason_as_its_sample(spark):
    raw = frame(
        spark,
        [
            GOOD_IL,
            il_row(InvoiceNo="536366", InvoiceDate="N/A"),
            il_row(InvoiceNo="536367", InvoiceDate="31/31/2011"),
        ],
        IL_DDL,
    )

    recon = reconcile(raw, prepare(raw, IL))

    assert recon.quarantined == {"bad_date": 2}
    assert recon.samples == {"bad_date": "unparseable date: 31/31/2011"}


# ---------------------------------------------------------------------------------------------
# Numbers as exports write them


@pytest.mark.parametrize(
    ("decimal", "texts", "expected"),
    [
        (
            ".",
            ["12", " 3.5 ", "1,296", "1,050.15", "-1,000", "2,55", "1,29,6", "12a", None],
            [12.0, 3.5, 1296.0, 1050.15, -1000.0, None, None, None, None],
        ),
        (
            ",",
            ["12", "2,55", "1.050,15", "1 296", "1.296", "-3,5", "2.55", "1,2,3"],
            [12.0, 2.55, 1050.15, 1296.0, 1296.0, -3.5, None, None],
        ),
    ],
)
def test_numbers_read_thousands_separators_and_the_configured_decimal_mark(
    spark, decimal, texts, expected
):
    values = frame(spark, [(i, t) for i, t in enumerate(texts)], "i int, text string")

    read = values.select(
        "i", source_values.as_double(F.col("text"), StringType(), decimal).alias("n")
    )

    assert [row.n for row in read.orderBy("i").collect()] == expected


def test_invoice_lines_with_thousands_separators_are_accepted(spark):
    raw = frame(
        spark,
        [("536365", "22197", "POPCORN", "1,296", "12/1/2010 8:26", "1,050.15", "17850", "UK")],
        IL_DDL.replace("Quantity long", "Quantity string")
        .replace("UnitPrice double", "UnitPrice string")
        .replace("CustomerID double", "CustomerID string"),
    )

    lines = ingest.order_lines(prepare(raw, IL)).select("quantity", "unit_price", "line_amount")

    assert_close(
        lines,
        frame(spark, [(1296.0, 1050.15, 1296 * 1050.15)], "quantity double, unit_price double, "
              "line_amount double"),
    )  # fmt: skip


def test_a_quantity_that_is_not_a_number_is_quarantined_naming_the_value(spark):
    ddl = IL_DDL.replace("Quantity long", "Quantity string").replace(
        "UnitPrice double", "UnitPrice string"
    )
    raw = frame(
        spark,
        [
            ("536365", "22197", "POPCORN", "2,55", "12/1/2010 8:26", "1.5", 17850.0, "UK"),
            ("536366", "22198", "LANTERN", "2", "12/1/2010 8:26", "n/a", 17850.0, "UK"),
            ("536367", "22199", "CANDLE", "0", "12/1/2010 8:26", "1.5", 17850.0, "UK"),
        ],
        ddl,
    )

    quarantined = ingest.quarantine(prepare(raw, IL), "run", datetime(2024, 1, 1, tzinfo=UTC))

    assert sorted((r.reason, r.detail) for r in quarantined.collect()) == [
        ("bad_quantity", "a product line has a missing or zero quantity"),
        ("bad_quantity", "not a number: '2,55'"),
        ("missing_amount", "not a number: 'n/a'"),
    ]


def test_decimal_commas_are_read_when_the_source_says_so(spark):
    ddl = IL_DDL.replace("Quantity long", "Quantity string").replace(
        "UnitPrice double", "UnitPrice string"
    )
    raw = frame(
        spark, [("536365", "22197", "POPCORN", "3", "12/1/2010 8:26", "2,55", 1.0, "UK")], ddl
    )

    lines = ingest.order_lines(prepare(raw, IL, decimal=",")).select("unit_price", "line_amount")

    assert_close(lines, frame(spark, [(2.55, 7.65)], "unit_price double, line_amount double"))


def test_optional_columns_the_input_lacks_are_named_with_the_key_that_maps_them(spark):
    renamed = frame(
        spark,
        [("536365", "85123A", 6, "12/1/2010 8:26", 2.5, "17850")],
        "Invoice string, StockCode string, Quantity long, InvoiceDate string, Price double, "
        "Customer string",
    )
    mapped = source(
        IL, columns={"order_id": "Invoice", "unit_price": "Price", "customer_id": "Customer"}
    )

    assert ingest.unmapped_columns(renamed, mapped) == [
        "no 'Description' column (product_name): products are shown by id; map it with "
        "source.columns.product_name",
        "no 'Country' column (country): customers have no country; map it with "
        "source.columns.country",
    ]
    assert ingest.unmapped_columns(frame(spark, [GOOD_IL], IL_DDL), source(IL)) == []


IL_HEADER = "InvoiceNo;StockCode;Description;Quantity;InvoiceDate;UnitPrice;CustomerID;Country\n"


def _il_ingest(path: Path, warehouse: Path, *more: str) -> list[str]:
    args = ["ingest", "--set", f"source.path={path}", "--set", "source.kind=invoice_lines"]
    for value in (f"warehouse.path={warehouse}", "warehouse.delta=deltalake", *more):
        args += ["--set", value]
    return args


def test_cli_reads_a_day_first_file_and_refuses_one_that_reads_both_ways(
    spark, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(REPO)
    decided = tmp_path / "decided.csv"
    decided.write_text(
        IL_HEADER
        + "1;A;Lamp;1;13/08/2011 10:00;2.5;17850;UK\n2;B;Mug;1;01/09/2011 09:00;1;17850;UK\n"
    )
    ambiguous = tmp_path / "ambiguous.csv"
    ambiguous.write_text(
        IL_HEADER
        + "1;A;Lamp;1;05/08/2011 10:00;2.5;17850;UK\n2;B;Mug;1;01/09/2011 09:00;1;17850;UK\n"
    )
    sep = "source.read_options.sep=;"

    read = cli.main(_il_ingest(decided, tmp_path / "wh1", sep))
    capsys.readouterr()
    refused = cli.main(_il_ingest(ambiguous, tmp_path / "wh2", sep))
    err = capsys.readouterr().err.strip().splitlines()
    told = cli.main(
        _il_ingest(ambiguous, tmp_path / "wh3", sep, 'source.date_formats=["dd/MM/yyyy HH:mm"]')
    )

    assert (read, refused, told) == (0, 2, 0)
    dates = read_table(spark, str(tmp_path / "wh1" / "orders")).select("order_id", "order_date")
    assert sorted((r.order_id, r.order_date) for r in dates.collect()) == [
        ("1", date(2011, 8, 13)),
        ("2", date(2011, 9, 1)),
    ]
    assert len(err) == 1 and "read both day first and month first" in err[0]
    assert "'01/09/2011 09:00' and '05/08/2011 10:00'" in err[0]
    assert not (tmp_path / "wh2" / "orders").exists()


def test_cli_names_the_optional_columns_a_renamed_export_lacks(
    spark, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(REPO)
    path = tmp_path / "renamed.csv"
    path.write_text(
        "Invoice,StockCode,Quantity,InvoiceDate,Price,Customer\n1,A,2,2011-08-13,2.5,17850\n"
    )
    mapping = "source.columns={order_id: Invoice, unit_price: Price, customer_id: Customer}"

    assert cli.main(_il_ingest(path, tmp_path / "wh", mapping)) == 0

    said = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("[ingest] no ")
    ]
    assert said == [
        "[ingest] no 'Description' column (product_name): products are shown by id; map it with "
        "source.columns.product_name",
        "[ingest] no 'Country' column (country): customers have no country; map it with "
        "source.columns.country",
    ]
