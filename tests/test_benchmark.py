"""
The benchmark's peers (``scripts/benchmark_peers.py``): pandas, DuckDB and plain PySpark compute
the compared ``customer_features`` columns from a few hand-written ``product_json`` rows, with the
expected values worked out here; one test runs the project's own ingest and features on the same
rows.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

from customer_analytics.config.schema import SourceConfig
from customer_analytics.core import columns as C
from customer_analytics.stages.period import last_order_as_of

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "benchmark_peers.py"
EXCLUDED_2021 = "2021-01-01:2021-12-31"
AS_OF = date(2023, 3, 15)  # the guest's order T9: the last accepted order

#: The generated data's date formats: the product_json defaults, slashes day first.
FORMATS = SourceConfig(kind="product_json", path="x").effective_date_formats("day_first")


@pytest.fixture(scope="module")
def peers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmark_peers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def basket(*products: tuple[str, int, float]) -> str:
    return json.dumps([{"product_id": p, "quantity": q, "unit_price": u} for p, q, u in products])


PRODUCT_P3 = {"product_id": "P3", "quantity": 4, "unit_price": 5.0}  # an object, not an array


def row(tid, customer, when, amount, products):
    return (tid, customer, when, amount, products)


ROWS = [
    # 101: two visits (one date in the dd/MM/yyyy format), a return, an exact duplicate row
    row("T1", 101, "2023-03-01 10:00:00", 10.0, basket(("P1", 2, 3.0), ("P2", 1, 4.0))),
    row("T1", 101, "2023-03-01 10:00:00", 10.0, basket(("P1", 2, 3.0), ("P2", 1, 4.0))),
    row("T2", 101, "10/03/2023 09:30", 5.5, basket(("P1", 1, 5.5))),
    row("T3", 101, "2023-03-12 10:00:00", -5.5, basket(("P1", -1, 5.5))),
    # 102: a visit in excluded 2021, one whose JSON is an object (one product), and a later
    # row with malformed JSON (quarantined: it moves neither as_of nor the last order date)
    row("T4", 102, "2021-05-01 10:00:00", 8.0, basket(("P9", 1, 8.0))),
    row("T5", 102, "2023-02-01 12:00:00", 20.0, json.dumps(PRODUCT_P3)),
    row("T6", 102, "2023-03-20 10:00:00", 9.0, '[{"product_id": "P4", "quan'),
    # 103: every row quarantined (null total, unparseable date, zero quantity)
    row("T7", 103, "2023-03-05 10:00:00", None, basket(("P5", 1, 3.0))),
    row("T8", 103, "N/A", 3.0, basket(("P5", 1, 3.0))),
    row("T11", 103, "2023-03-02 10:00:00", 6.0, basket(("P6", 0, 6.0))),
    # 104: a return only; a guest (no customer id) buys last, on 2023-03-15
    row("T10", 104, "2023-03-14 10:00:00", -12.0, basket(("P5", -2, 6.0))),
    row("T9", None, "2023-03-15 18:00:00", 7.0, basket(("P7", 1, 7.0))),
]

EXPECTED = pd.DataFrame(
    [
        # T1 + T2: spend 10 + 5.5, items 2 + 1 + 1, products P1 P2, last visit 10 March: 5 days
        ("101", AS_OF, 2, 15.5, 4.0, 2, date(2023, 3, 1), date(2023, 3, 10), 5),
        # T5 only: 1 Feb to 15 Mar = 27 + 15 days
        ("102", AS_OF, 1, 20.0, 4.0, 1, date(2023, 2, 1), date(2023, 2, 1), 42),
    ],
    columns=[
        C.CUSTOMER_ID,
        C.AS_OF,
        C.TOTAL_VISITS,
        C.TOTAL_SPEND,
        C.TOTAL_ITEMS,
        C.DISTINCT_PRODUCTS,
        C.FIRST_ORDER_DATE,
        C.LAST_ORDER_DATE,
        C.RECENCY_DAYS,
    ],
)


@pytest.fixture
def source(tmp_path: Path) -> str:
    frame = pd.DataFrame(
        ROWS,
        columns=["transaction_id", "customer_id", "transaction_date", "total_amt", "product_json"],
    ).astype({"customer_id": "Int64"})
    path = tmp_path / "transactions.parquet"
    frame.to_parquet(path, index=False)
    return str(path)


@pytest.fixture
def options(peers) -> dict:
    return {
        "date_formats": [peers.strptime_format(f) for f in FORMATS],
        "exclude": [peers.Period.parse(EXCLUDED_2021)],
    }


def sorted_rows(frame):
    """Rows by customer id, dates as ``datetime.date`` (DuckDB returns them as timestamps)."""
    out = frame.sort_values(C.CUSTOMER_ID).reset_index(drop=True)
    for name in (C.AS_OF, C.FIRST_ORDER_DATE, C.LAST_ORDER_DATE):
        out[name] = pd.to_datetime(out[name]).dt.date
    return out


def test_pandas_peer_computes_the_hand_worked_features(peers, source, options):
    rows_in, features = peers.pandas_features(source, **options)
    assert rows_in == len(ROWS)
    pd.testing.assert_frame_equal(sorted_rows(features), EXPECTED, check_dtype=False)


def test_duckdb_peer_computes_the_hand_worked_features(peers, source, options):
    pytest.importorskip("duckdb")
    rows_in, features = peers.duckdb_features(source, **options)
    assert rows_in == len(ROWS)
    pd.testing.assert_frame_equal(sorted_rows(features), EXPECTED, check_dtype=False)


def test_spark_peer_computes_the_hand_worked_features(spark, peers, source, options):
    orders = peers.spark_orders(spark, source, date_formats=FORMATS)
    features = peers.spark_features(orders, exclude=options["exclude"]).toPandas()
    pd.testing.assert_frame_equal(sorted_rows(features), EXPECTED, check_dtype=False)


def test_compare_features_reports_a_changed_spend_and_a_missing_customer(peers):
    peer = EXPECTED.copy()
    peer.loc[0, C.TOTAL_SPEND] = 15.5 * (1 + 1e-5)  # outside the 1e-6 tolerance
    result = peers.compare_features(EXPECTED, peer.iloc[:1])
    assert not result.equal
    assert (result.missing, result.extra) == (1, 0)
    assert result.mismatches[C.TOTAL_SPEND] == 1
    assert result.mismatches[C.TOTAL_VISITS] == 0


def test_compare_features_accepts_sums_within_the_tolerance(peers):
    peer = EXPECTED.copy()
    peer[C.TOTAL_SPEND] = peer[C.TOTAL_SPEND] * (1 + 1e-9)
    assert peers.compare_features(EXPECTED, peer).equal


def test_strptime_format_converts_every_default_product_json_format(peers):
    converted = [peers.strptime_format(f) for f in FORMATS]
    assert converted == [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d",
        "%Y%m%d",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
        "%d/%m/%Y",
    ]
    with pytest.raises(ValueError, match="hh:mm a"):
        peers.strptime_format("hh:mm a")


def test_project_computes_the_same_features_from_the_same_rows(spark, peers, source):
    """The peers' rules are the project's: ingest and features on the same rows give EXPECTED."""
    from customer_analytics.config.schema import ExcludePeriod, SourceConfig
    from customer_analytics.stages import features, ingest
    from customer_analytics.stages.period import Period

    config = SourceConfig(kind="product_json", path=source)
    prepared = ingest.prepare(spark.read.parquet(source), config)
    orders = ingest.orders(prepared)
    lines = ingest.order_lines(prepared)
    as_of = last_order_as_of(orders)
    excluded = [ExcludePeriod(start=date(2021, 1, 1), end=date(2021, 12, 31))]
    single_view = features.customer_features(
        orders,
        lines,
        Period(as_of, exclude_periods=excluded),
        expected_lifetime_years=3.0,
        time_unit="day",
    )
    project = single_view.select(*peers.FEATURE_COLUMNS).toPandas()
    assert as_of == AS_OF
    pd.testing.assert_frame_equal(sorted_rows(project), EXPECTED, check_dtype=False)
