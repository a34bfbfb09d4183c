"""
Every source shape through the whole pipeline, report included, on the files of
``../shared/data``: CDNOW (``transactions``: no products), the dunnhumby sample (``basket_lines``:
products without names), the Online Retail sample CSV (``invoice_lines``) and the
``product_json`` sample. Each run must end with exit 0 and a report with every segment's card,
and no product shown blank, ``None`` or ``nan`` in the page or the exports.
"""

from __future__ import annotations

import csv
import json
import re

import pytest
from deltalake import DeltaTable

from customer_analytics.core import catalog
from customer_analytics.stages.report.html import NO_PRODUCTS
from tests.conftest import run_cli, shared_file

pytestmark = pytest.mark.e2e

ONLINE_RETAIL_DATES = 'source.date_formats=["M/d/yyyy H:mm"]'
#: Shape -> (file, kind, more settings). K is fixed and one KMeans start is fitted: these runs
#: test what each shape gets, not the choice of K.
SHAPES = {
    "transactions": ("cdnow_master.parquet", "transactions", []),
    "basket_lines": (
        "lgsr_500_customers.parquet",
        "basket_lines",
        ["source.columns={price_sensitivity: seg_1, lifestage: seg_2}"],
    ),
    # nine days of December 2010 written M/d/yyyy: every date reads both ways, so the file
    # needs its format (test_a_file_whose_dates_read_both_ways_is_refused_until_told)
    "invoice_lines": ("online_retail_sample.csv", "invoice_lines", [ONLINE_RETAIL_DATES]),
    "product_json": ("transactions_product_json_sample.parquet", "product_json", []),
}
BLANK = {"", "none", "nan", "null"}


def settings(name: str, warehouse) -> list[str]:
    file, kind, more = SHAPES[name]
    values = [
        f"source.path={shared_file(file)}",
        f"source.kind={kind}",
        f"warehouse.path={warehouse}",
        "warehouse.delta=deltalake",
        "segmentation.k=4",
        "segmentation.n_init=1",
        *more,
    ]
    return [arg for value in values for arg in ("--set", value)]


@pytest.fixture(scope="module", params=list(SHAPES))
def shape_run(request, tmp_path_factory):
    """(shape, warehouse folder, exit code, output) of ``pipeline`` on the shape's file."""
    warehouse = tmp_path_factory.mktemp(request.param) / "wh"
    code, out = run_cli("pipeline", *settings(request.param, warehouse))
    return request.param, warehouse, code, out


def page_of(warehouse) -> str:
    return (warehouse / catalog.REPORT_FOLDER / "report.html").read_text(encoding="utf-8")


def export_rows(warehouse, name: str) -> list[dict]:
    path = warehouse / catalog.REPORT_FOLDER / "exports" / f"{name}.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_pipeline_ends_with_exit_0(shape_run):
    _, _, code, out = shape_run
    assert code == 0, out
    assert "[report] rows in" in out


def test_the_report_has_a_card_for_every_segment(shape_run):
    _, warehouse, _, _ = shape_run
    segments = DeltaTable(str(warehouse / catalog.CUSTOMER_SEGMENTS)).to_pyarrow_table()
    clusters = set(segments.column("cluster").to_pylist())

    cards = re.findall(r"\(segment (\d+)\)</p>", page_of(warehouse))

    assert len(clusters) == 4
    assert sorted(int(c) for c in cards) == sorted(clusters)


def test_no_product_is_shown_blank(shape_run):
    _, warehouse, _, _ = shape_run
    page = page_of(warehouse)
    listed = re.findall(r"<li>(.*?) <small>\(", page)
    exported = [
        row["product_name"]
        for name in ("top_products", "recommendations")
        for row in export_rows(warehouse, name)
    ]

    assert not [p for p in listed + exported if p.strip().lower() in BLANK]
    assert "<li> <small>" not in page


def test_a_source_with_products_gets_lists_on_every_card(shape_run):
    shape, warehouse, _, _ = shape_run
    if shape == "transactions":
        pytest.skip("CDNOW has no products: test_a_source_without_products_...")
    page = page_of(warehouse)

    listed = page.count("<p>Top products:</p><ol><li>")
    # a segment whose customers bought nothing in the lists' window says so instead
    quiet = page.count("Top products: none bought in the recommendation window.")
    assert listed >= 1 and listed + quiet == 4
    assert export_rows(warehouse, "recommendations")
    assert NO_PRODUCTS not in page


def test_products_without_names_are_shown_by_their_id(shape_run):
    shape, warehouse, _, _ = shape_run
    if shape != "basket_lines":
        pytest.skip("only the dunnhumby sample has no product names")
    rows = export_rows(warehouse, "top_products")

    assert rows and all(r["product_name"] == f"product {r['product_id']}" for r in rows)
    assert re.search(r"<li>product PRD\d+ <small>", page_of(warehouse))


def test_a_source_without_products_skips_recommend_and_evaluate_and_says_why(shape_run):
    shape, warehouse, _, out = shape_run
    if shape != "transactions":
        pytest.skip("only CDNOW has no products")
    page = page_of(warehouse)
    runs = DeltaTable(str(warehouse / catalog.RUNS)).to_pyarrow_table().to_pylist()
    stages = {s["stage"]: s for s in json.loads(runs[-1]["stages"])}

    for stage in ("recommend", "evaluate"):
        assert f"[{stage}] skipped: order_lines has no purchases with a product" in out
        assert stages[stage]["status"] == "skipped"
        assert "no purchases with a product" in stages[stage]["detail"]["reason"]
    assert stages["report"]["status"] == "ran"
    assert not (warehouse / catalog.CUSTOMER_RECOMMENDATIONS).exists()
    # in the charts' notes and the evaluation section, and on every card
    assert page.count(NO_PRODUCTS) == 2
    assert page.count("Top products: none, the source has no product lines.") == 4


def test_recommend_asked_for_alone_on_a_source_without_products_exits_2(shape_run):
    shape, warehouse, _, _ = shape_run
    if shape != "transactions":
        pytest.skip("only CDNOW has no products")

    code, _ = run_cli("recommend", *settings(shape, warehouse))

    assert code == 2


def test_a_file_shorter_than_the_evaluation_weeks_skips_evaluate_and_says_why(shape_run):
    shape, warehouse, _, out = shape_run
    if shape != "invoice_lines":
        pytest.skip("only the Online Retail sample (9 days) is shorter than the test weeks")

    # 2010-12-01 .. 12-09: four test weeks before the last day leave no day to train on
    assert (
        "[evaluate] skipped: the evaluation trains on the orders up to 2010-11-11, and 0 "
        "customer(s) ordered then; its segmentation needs at least 4" in out
    )
    assert "[report] rows in" in out


def test_a_file_whose_dates_read_both_ways_is_refused_until_told(tmp_path, capsys):
    values = [
        f"source.path={shared_file('online_retail_sample.csv')}",
        "source.kind=invoice_lines",
        f"warehouse.path={tmp_path / 'wh'}",
        "warehouse.delta=deltalake",
    ]

    code, _ = run_cli("ingest", *[arg for value in values for arg in ("--set", value)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "its 20,000 dates with slashes, such as '12/1/2010 10:03' and '12/9/2010 9:49'" in err[0]
    assert "set source.date_formats" in err[0]
    assert not (tmp_path / "wh" / catalog.ORDERS).exists()
