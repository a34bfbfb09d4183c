"""
The ``report`` job: its summaries of the gold tables, the charts, ``report.html`` and the CSV
exports, on a warehouse of gold tables written by hand (five customers in two segments), so
that every expected value can be read off the rows below. ``tests/test_views.py`` runs it as
the last stage of a real pipeline.
"""

from __future__ import annotations

import csv
import html.parser
import os
import re
import shutil
import struct
from datetime import date, datetime

import matplotlib.image
import pandas as pd
import pytest
from chispa import assert_approx_df_equality, assert_df_equality

from customer_analytics.io.tables import Warehouse
from customer_analytics.stages.report import data as report
from customer_analytics.stages.report import html as report_html
from customer_analytics.stages.report.charts import SIZES
from customer_analytics.stages.report.publish import for_bi
from tests.conftest import run_cli

AS_OF, BEFORE, EARLIER = date(2024, 3, 31), date(2023, 12, 31), date(2023, 9, 30)
SEEKERS = "Deal & <i>seekers</i>"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://x")'
MUG = 'Mug, "large", $5^$ off\nblue'  # between two $, matplotlib would parse a formula

PROFILES = (
    "as_of date, cluster int, segment_name string, action string, size long, share double, "
    "feature string, mean double, median double, overall_mean double, index double",
    [
        (AS_OF, 0, "Champions", "Reward them", 3, 0.6, "total_spend", 300.0, 280.0, 200.0, 1.5),
        (AS_OF, 0, "Champions", "Reward them", 3, 0.6, "recency_days", 10.0, 9.0, 25.0, 0.4),
        (AS_OF, 1, SEEKERS, "Send <b>coupons</b>", 2, 0.4, "total_spend", 50.0, 50.0, 200.0, 0.25),
        (AS_OF, 1, SEEKERS, "Send <b>coupons</b>", 2, 0.4, "recency_days", 47.5, 47.5, 25.0, 1.9),
    ],
)
SELECTION = (
    "k int, silhouette double, training_cost double, seconds double",
    [(2, 0.71, 900.0, 1.0), (3, 0.55, 600.0, 1.0), (4, 0.40, 450.0, 1.0)],
)
FEATURES = (
    "customer_id string, as_of date, rfm_score int, rfm_segment string",
    [
        ("c1", AS_OF, 15, "Champions"),
        ("c2", AS_OF, 15, "Champions"),
        ("c3", AS_OF, 12, "Loyal customers"),
        ("c4", AS_OF, 6, "Lapsed"),
        ("c5", AS_OF, 6, "Lapsed"),
        ("c1", BEFORE, 9, "At risk"),  # another date: not in the report of AS_OF
    ],
)
MONTHLY = (
    "month date, store_id string, country string, grouping string, orders long, customers long, "
    "revenue double, avg_order_value double, quantity double, distinct_products long, "
    "new_customers long, returning_customers long, returns long",
    [
        (date(2024, 2, 1), None, None, "all", 4, 3, 120.0, 30.0, 10.0, 3, 3, 0, 0),
        (date(2024, 3, 1), None, None, "all", 5, 5, 200.0, 40.0, 16.0, 4, 2, 3, 1),
        (date(2024, 3, 1), "S1", None, "store", 5, 5, 200.0, 40.0, 16.0, 4, 2, 3, 1),
    ],
)
TOP_PRODUCTS = (
    "cluster int, segment_name string, rank int, product_id string, product_name string, "
    "buyers long, quantity double, revenue double, penetration double",
    [
        (None, "All customers", 1, "P1", SCRIPT, 4, 6.0, 30.0, 0.8),
        (0, "Champions", 1, "P1", SCRIPT, 3, 5.0, 25.0, 1.0),
        (0, "Champions", 2, "P2", IMG, 2, 2.0, 8.0, 0.6667),
        (1, SEEKERS, 1, "P3", FORMULA, 1, 1.0, -3.5, 0.5),
        (1, SEEKERS, 2, "P4", MUG, 1, 1.0, 4.0, 0.5),
    ],
)
EVALUATION = (
    "recommender string, target string, k int, users long, precision_at_k double, "
    "recall_at_k double, map_at_k double, coverage double, cutoff_date date, "
    "test_end_date date, run_id string",
    [
        (
            "segment_not_bought_rules",
            "all",
            5,
            4,
            0.1,
            0.2,
            0.1,
            0.5,
            date(2024, 3, 3),
            AS_OF,
            "r1",
        ),
        ("segment_popular", "all", 5, 4, 0.3, 0.6, 0.5, 0.5, date(2024, 3, 3), AS_OF, "r1"),
        ("segment_not_bought", "all", 5, 4, 0.1, 0.2, 0.1, 0.5, date(2024, 3, 3), AS_OF, "r1"),
        ("global_popular", "all", 5, 4, 0.2, 0.4, 0.3, 0.25, date(2024, 3, 3), AS_OF, "r1"),
        ("global_not_bought", "all", 5, 4, 0.1, 0.2, 0.1, 0.25, date(2024, 3, 3), AS_OF, "r1"),
    ],
)
CLV = (
    "customer_id string, as_of date, p_alive double, expected_spend double, ltv_predicted double",
    [
        ("c1", AS_OF, 0.9, 10.0, 100.0),
        ("c2", AS_OF, 0.8, 10.0, 200.0),
        ("c3", AS_OF, 0.7, 10.0, 300.0),
        ("c4", AS_OF, 0.2, 5.0, 10.0),
        ("c5", AS_OF, 0.4, 5.0, 30.0),
        ("c6", AS_OF, 0.5, 5.0, 9999.0),  # in no segment: not counted
    ],
)
SEGMENTS = (
    "customer_id string, as_of date, cluster int, segment_name string, distance double",
    [
        ("c1", AS_OF, 0, "Champions", 0.1),
        ("c2", AS_OF, 0, "Champions", 0.2),
        ("c3", AS_OF, 0, "Champions", 0.3),
        ("c4", AS_OF, 1, SEEKERS, 0.4),
        ("c5", AS_OF, 1, SEEKERS, 0.5),
    ],
)
MIGRATION = (
    "from_as_of date, to_as_of date, from_segment string, to_segment string, customers long, "
    "share double",
    [
        (EARLIER, BEFORE, "(new)", "Champions", 2, 1.0),
        (BEFORE, AS_OF, "Champions", "Champions", 2, 2 / 3),
        (BEFORE, AS_OF, "Champions", SEEKERS, 1, 1 / 3),
        (BEFORE, AS_OF, "(new)", "Champions", 1, 0.5),
        (BEFORE, AS_OF, "(new)", SEEKERS, 1, 0.5),
    ],
)
RECONCILIATION = (
    "run_id string, source string, category string, reason string, rows long, lines long",
    [
        ("20240101T000000Z-aaaa", "invoice_lines", "accepted", None, 7, 15),
        ("20240401T000000Z-bbbb", "invoice_lines", "accepted", None, 9, 20),
        ("20240401T000000Z-bbbb", "invoice_lines", "quarantined", "bad_date", 1, None),
    ],
)
RECOMMENDATIONS = (
    "customer_id string, rank int, product_id string, product_name string, score double, "
    "reason string",
    [
        ("c1", 1, "P2", IMG, 0.5, "popular in your segment"),
        ("c4", 1, "P3", FORMULA, 0.25, "+ bought together"),
    ],
)
TABLES = {
    "segment_profiles": PROFILES,
    "kmeans_selection": SELECTION,
    "customer_features": FEATURES,
    "monthly_sales": MONTHLY,
    "segment_top_products": TOP_PRODUCTS,
    "recommendation_eval": EVALUATION,
    "customer_clv": CLV,
    "customer_segments": SEGMENTS,
    "segment_migration": MIGRATION,
    "ingest_reconciliation": RECONCILIATION,
    "customer_recommendations": RECOMMENDATIONS,
}


def frame(spark, table):
    schema, rows = table
    return spark.createDataFrame(rows, schema)


def write_warehouse(spark, folder, names) -> str:
    warehouse = Warehouse.for_path(spark, str(folder))
    for name in names:
        warehouse.write(name, frame(spark, TABLES[name]))
    return str(folder)


def run_report(warehouse: str, folder) -> tuple[int, str]:
    return run_cli(
        "report",
        "--set",
        "source.path=unused",
        "--set",
        f"warehouse.path={warehouse}",
        "--set",
        f"report.path={folder}",
    )


@pytest.fixture(scope="module")
def full_report(spark, tmp_path_factory):
    """The report of a warehouse with every table: (report folder, job output)."""
    base = tmp_path_factory.mktemp("report")
    warehouse = write_warehouse(spark, base / "wh", TABLES)
    code, out = run_report(warehouse, base / "report")
    assert code == 0, out
    return base / "report", out


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


class Tags(html.parser.HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


# ---------------------------------------------------------------------------------------------
# Summaries


def test_overview_has_one_row_per_segment_largest_first(spark):
    overview = report.segment_overview(frame(spark, PROFILES))

    expected = spark.createDataFrame(
        [(0, "Champions", "Reward them", 3, 0.6), (1, SEEKERS, "Send <b>coupons</b>", 2, 0.4)],
        "cluster int, segment_name string, action string, size long, share double",
    )
    assert_df_equality(overview, expected)


def test_rfm_distribution_counts_customers_per_score_and_segment(spark):
    features = frame(spark, FEATURES).filter(f"as_of = '{AS_OF}'")

    expected = spark.createDataFrame(
        [(6, "Lapsed", 2), (12, "Loyal customers", 1), (15, "Champions", 2)],
        "rfm_score int, rfm_segment string, customers long",
    )
    assert_df_equality(report.rfm_distribution(features), expected, ignore_nullable=True)


def test_monthly_totals_keep_the_all_rows_by_month(spark):
    totals = report.monthly_totals(frame(spark, MONTHLY))

    rows = [(r["month"], r["revenue"], r["new_customers"]) for r in totals.collect()]
    assert rows == [(date(2024, 2, 1), 120.0, 3), (date(2024, 3, 1), 200.0, 2)]


def test_value_by_segment_gives_mean_and_quantiles_of_segment_members(spark):
    value = report.value_by_segment(frame(spark, CLV), frame(spark, SEGMENTS))

    # Spark's percentile at p is the value of rank ceil(p * n): for 100, 200, 300 the 5% and
    # 25% are 100, the median 200, the 75% and 95% 300; for 10, 30: 10, 10, 10, 30, 30.
    expected = spark.createDataFrame(
        [
            (0, "Champions", "ltv_predicted", 3, 200.0, 100.0, 100.0, 200.0, 300.0, 300.0),
            (1, SEEKERS, "ltv_predicted", 2, 20.0, 10.0, 10.0, 10.0, 30.0, 30.0),
            (0, "Champions", "p_alive", 3, 0.8, 0.7, 0.7, 0.8, 0.9, 0.9),
            (1, SEEKERS, "p_alive", 2, 0.3, 0.2, 0.2, 0.2, 0.4, 0.4),
        ],
        "cluster int, segment_name string, measure string, customers long, mean double, "
        "q05 double, q25 double, median double, q75 double, q95 double",
    )
    assert_approx_df_equality(value, expected, 1e-9, ignore_nullable=True)


def test_latest_migration_keeps_the_move_into_the_last_date(spark):
    moves = report.latest_migration(frame(spark, MIGRATION))

    assert sorted((r[2], r[3], r[4]) for r in moves.collect()) == [
        ("(new)", "Champions", 1),
        ("(new)", SEEKERS, 1),
        ("Champions", "Champions", 2),
        ("Champions", SEEKERS, 1),
    ]


def test_latest_reconciliation_keeps_the_last_ingest(spark):
    rows = report.latest_reconciliation(frame(spark, RECONCILIATION)).collect()

    assert [(r["category"], r["reason"], r["rows"]) for r in rows] == [
        ("accepted", None, 9),
        ("quarantined", "bad_date", 1),
    ]


# ---------------------------------------------------------------------------------------------
# The job on every table


def test_report_writes_the_page_every_chart_and_every_export(full_report):
    folder, out = full_report

    assert (folder / "report.html").is_file()
    assert sorted(p.name for p in (folder / "charts").iterdir()) == sorted(
        f"{name}.png" for name in SIZES
    )
    assert sorted(p.name for p in (folder / "exports").iterdir()) == [
        "migration.csv",
        "profiles.csv",
        "recommendations.csv",
        "segments.csv",
        "top_products.csv",
    ]
    assert f"[report] file:{folder}/report.html" in out


@pytest.mark.parametrize("name", sorted(SIZES))
def test_each_chart_is_a_png_of_its_size(full_report, name):
    folder, _ = full_report
    path = folder / "charts" / f"{name}.png"

    assert png_size(path) == SIZES[name]
    assert path.stat().st_size > 10_000  # drawn, not blank: a blank PNG of this size is ~5 KB


def test_the_page_names_every_segment_and_shows_markup_in_data_as_text(full_report):
    page = (full_report[0] / "report.html").read_text(encoding="utf-8")

    assert "<h3>Champions</h3>" in page
    assert "<h3>Deal &amp; &lt;i&gt;seekers&lt;/i&gt;</h3>" in page
    assert "Send &lt;b&gt;coupons&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page
    assert "<img src=x" not in page
    assert "<i>seekers" not in page


def test_the_page_embeds_its_images_and_loads_nothing(full_report):
    parser = Tags()
    parser.feed((full_report[0] / "report.html").read_text(encoding="utf-8"))

    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == len(SIZES)
    assert all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert not [tag for tag, _ in parser.tags if tag in ("script", "link", "iframe", "object")]
    links = [attrs["href"] for tag, attrs in parser.tags if tag == "a"]
    assert links == [
        "exports/segments.csv",
        "exports/profiles.csv",
        "exports/top_products.csv",
        "exports/recommendations.csv",
        "exports/migration.csv",
    ]


def test_the_page_gives_the_run_facts_and_the_reconciliation(full_report):
    page = (full_report[0] / "report.html").read_text(encoding="utf-8")

    assert "Customers as of 2024-03-31: 2 segments" in page
    assert "20240401T000000Z-bbbb" in page and "20240101T000000Z-aaaa" not in page
    # 9 accepted + 1 quarantined = 10 input rows, 90% and 10%
    assert '<td class="number">9</td><td class="number">90.0%</td>' in page
    assert '<td class="number"><b>10</b></td>' in page


def test_the_evaluation_table_lists_the_baseline_first(full_report):
    page = (full_report[0] / "report.html").read_text(encoding="utf-8")

    table = page[page.index("<h2>Recommendation evaluation</h2>") :]
    table = table[: table.index("</table>")]
    shown = re.findall(r"<tr><td>([a-z_]+)</td>", table)
    # the baseline, then the others in the order of recommenders.RECOMMENDERS, each once
    assert shown[0] == "global_popular"
    assert list(dict.fromkeys(shown)) == [
        "global_popular",
        "segment_popular",
        "global_not_bought",
        "segment_not_bought",
        "segment_not_bought_rules",
    ]


def test_exports_carry_money_to_the_cent_fractions_to_four_places_and_every_product_a_label(
    spark,
):
    table = spark.createDataFrame(
        [("P9", None, 311.64000000000004, 1 / 3, 2.0), ("P8", "Mug", 0.125, 2 / 3, None)],
        "product_id string, product_name string, revenue double, penetration double, "
        "quantity double",
    )

    exported = for_bi(table)

    assert exported.columns == table.columns
    assert [tuple(r) for r in exported.orderBy("product_id", ascending=False).collect()] == [
        ("P9", "product P9", 311.64, 0.3333, 2.0),
        ("P8", "Mug", 0.13, 0.6667, None),  # money rounds half up: 0.125 -> 0.13
    ]


def test_csv_exports_neutralise_cells_that_start_like_formulas(full_report):
    exports = full_report[0] / "exports"

    products = {r["product_id"]: r for r in read_csv(exports / "top_products.csv")}
    assert products["P3"]["product_name"] == "'" + FORMULA
    assert products["P3"]["revenue"] == "-3.5"  # a number, not text: left as it is
    assert products["P1"]["product_name"] == SCRIPT
    recommendations = {r["customer_id"]: r for r in read_csv(exports / "recommendations.csv")}
    assert recommendations["c4"]["product_name"] == "'" + FORMULA
    assert recommendations["c4"]["reason"] == "'+ bought together"


def test_csv_exports_keep_commas_quotes_and_line_breaks_in_a_field(full_report):
    rows = read_csv(full_report[0] / "exports" / "top_products.csv")

    assert {r["product_id"]: r["product_name"] for r in rows}["P4"] == MUG
    assert list(rows[0]) == [
        "cluster",
        "segment_name",
        "rank",
        "product_id",
        "product_name",
        "buyers",
        "quantity",
        "revenue",
        "penetration",
    ]


def test_the_segments_export_has_every_customer_once(full_report):
    rows = read_csv(full_report[0] / "exports" / "segments.csv")

    assert sorted((r["customer_id"], r["cluster"], r["segment_name"]) for r in rows) == [
        ("c1", "0", "Champions"),
        ("c2", "0", "Champions"),
        ("c3", "0", "Champions"),
        ("c4", "1", SEEKERS),
        ("c5", "1", SEEKERS),
    ]


# ---------------------------------------------------------------------------------------------
# Fewer tables, no tables


def test_without_clv_evaluate_and_migration_the_page_says_which_stage_adds_them(spark, tmp_path):
    present = [
        n for n in TABLES if n not in ("customer_clv", "recommendation_eval", "segment_migration")
    ]
    warehouse = write_warehouse(spark, tmp_path / "wh", present)

    code, out = run_report(warehouse, tmp_path / "report")

    assert code == 0, out
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "No customer value in this warehouse: run clv before segment." in page
    assert "No recommendation evaluation in this warehouse: run evaluate." in page
    assert (
        "No segment migration in this warehouse: run the pipeline for a second --as-of date."
        in page
    )
    charts = {p.stem for p in (tmp_path / "report" / "charts").iterdir()}
    assert charts == set(SIZES) - {
        "customer_value",
        "recommendation_evaluation",
        "segment_migration",
    }
    assert "[report] no migration.csv: the warehouse has no table 'segment_migration'" in out
    assert "Predicted lifetime value" not in page


def test_report_without_segments_exits_2_naming_the_table(tmp_path, capsys):
    code, _ = run_report(str(tmp_path / "empty"), tmp_path / "report")

    assert code == 2
    assert "table 'segment_profiles' not found" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


# ---------------------------------------------------------------------------------------------
# The page in a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_headless_chromium_renders_the_page_offline_with_every_image(full_report, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra")
    requests, dialogs = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox"] if os.geteuid() == 0 else [],  # root has no sandbox
        )
        try:
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto((full_report[0] / "report.html").as_uri(), wait_until="load")
            images = page.evaluate(
                "() => Array.from(document.images)"
                ".map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
            )
            text = page.evaluate("() => document.body.innerText")
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    print(f"screenshot: {screenshot}")
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    assert dialogs == []  # no alert(1) ran
    assert sorted((w, h) for complete, w, h in images if complete) == sorted(SIZES.values())
    for shown in ("Champions", SEEKERS, SCRIPT, "Send <b>coupons</b>"):
        assert shown in text
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[1] == 1280 and pixels.shape[0] > 3000  # the whole page, charts included
    assert pixels[..., :3].std() > 0.05  # not a blank page


# ---------------------------------------------------------------------------------------------
# The page from frames (no Spark)


def test_a_card_says_when_its_segment_bought_nothing_in_the_window():
    segments = pd.DataFrame(
        {
            "cluster": [0, 1],
            "segment_name": ["Regulars", "Sleepers"],
            "action": ["Keep", "Wake"],
            "size": [9000, 1000],
            "share": [0.9, 0.1],
        }
    )
    profiles = segments.assign(
        feature="total_spend", mean=1.0, median=1.0, overall_mean=1.0, index=1.0
    )
    top = pd.DataFrame(
        {
            "cluster": [0],
            "segment_name": ["Regulars"],
            "rank": [1],
            "product_id": ["P1"],
            "product_name": ["Rare tea"],
            "penetration": [2 / 9000],  # 0.02%: not shown as 0.0%
        }
    )
    data = report.ReportData(as_of=AS_OF, segments=segments, profiles=profiles, top_products=top)

    facts = report_html.RunFacts("r1", datetime(2024, 4, 1), "wh")
    page = report_html.render(data, [], facts, products_per_card=5)

    assert "Rare tea <small>(&lt;0.1% of the segment bought it)</small>" in page
    assert page.count("Top products: none bought in the recommendation window.") == 1
    assert "No monthly sales in this warehouse: run features." in page
