"""
Views over time: ``pipeline`` for several dates, ``segment --mode score`` on another date,
``segment_migration``, and ``recommend`` refusing segments of another date.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from customer_analytics.core import columns as C
from customer_analytics.io.tables import Warehouse
from tests.conftest import run_cli
from tests.helpers import BACKEND, invoice_lines, settings, write_csv

MARCH, JUNE = date(2011, 3, 31), date(2011, 6, 30)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("views") / "lines.csv", invoice_lines())


def customers_by(day: date) -> set[str]:
    """Customers with an order on or before ``day``, from the generated rows themselves."""
    return {str(r[6]) for r in invoice_lines() if r[4][:10] <= day.isoformat()}


@pytest.fixture(scope="module")
def two_dates(spark, source, tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("views") / "wh"
    code, out = run_cli(
        "pipeline",
        "--skip",
        "clv",
        "--skip",
        "evaluate",  # the views are segments; evaluate's dates are tested in test_backfill
        "--as-of",
        JUNE.isoformat(),
        "--as-of",
        MARCH.isoformat(),
        *settings(source, warehouse),
    )
    assert code == 0, out
    return Warehouse.for_path(spark, str(warehouse), BACKEND), out


def test_pipeline_for_two_dates_runs_the_stages_for_each_oldest_first(two_dates):
    warehouse, out = two_dates
    history = warehouse.read("segment_history")
    dates = sorted(r[0] for r in history.select(C.AS_OF).distinct().collect())
    assert dates == [MARCH, JUNE]
    assert out.index(f"features {MARCH}") < out.index(f"features {JUNE}")
    # the last date's tables are the ones left in place
    assert warehouse.read("customer_segments").select(C.AS_OF).distinct().collect() == [(JUNE,)]


def test_migration_counts_every_customer_of_either_date_once(two_dates):
    warehouse, _ = two_dates
    moves = warehouse.read("segment_migration")
    march, june = customers_by(MARCH), customers_by(JUNE)
    # nobody lapses here: a customer with a visit by March still has one by June
    assert march <= june
    assert moves.agg(F.sum(C.CUSTOMERS)).first()[0] == len(june)
    joined = moves.filter(F.col(C.FROM_SEGMENT) == "(new)").agg(F.sum(C.CUSTOMERS)).first()[0]
    assert joined == len(june - march)
    assert moves.filter(F.col(C.TO_SEGMENT) == "(lapsed)").count() == 0
    shares = moves.groupBy(C.FROM_SEGMENT).agg(F.sum(C.SHARE).alias("total")).collect()
    assert all(abs(r["total"] - 1.0) < 1e-9 for r in shares)
    assert {(r[0], r[1]) for r in moves.select(C.FROM_AS_OF, C.TO_AS_OF).collect()} == {
        (MARCH, JUNE)
    }


def test_the_segment_job_prints_the_matrix_into_its_date(two_dates):
    _, out = two_dates
    assert f"[segment] Segment migration {MARCH} → {JUNE}: customers (share of the" in out


def test_recommend_refuses_segments_of_another_date(two_dates, source, capsys):
    warehouse, _ = two_dates
    capsys.readouterr()

    code, _ = run_cli("recommend", "--as-of", MARCH.isoformat(), *settings(source, warehouse.path))

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert f"table 'customer_segments' is as of {JUNE}, not {MARCH}" in err[0]


def test_score_mode_applies_the_saved_model_to_another_date(spark, two_dates, source):
    # after the run for both dates the latest model is June's; score March's features with it
    warehouse, _ = two_dates
    common = settings(source, warehouse.path)
    assert run_cli("features", "--as-of", MARCH.isoformat(), *common)[0] == 0
    code, out = run_cli("segment", "--mode", "score", "--as-of", MARCH.isoformat(), *common)

    assert code == 0, out
    assert f"fitted as of {JUNE}" in out
    segments = warehouse.read("customer_segments")
    assert segments.select(C.AS_OF).distinct().collect() == [(MARCH,)]
    assert segments.count() == len(customers_by(MARCH))
    june = warehouse.read("segment_history").filter(F.col(C.AS_OF) == JUNE)
    published = {(r[C.CLUSTER], r[C.SEGMENT_NAME]) for r in june.collect()}
    assert {(r[C.CLUSTER], r[C.SEGMENT_NAME]) for r in segments.collect()} <= published


def test_several_dates_are_only_for_pipeline(source, tmp_path, capsys):
    code, _ = run_cli("features", "--as-of", "2011-03-31", "--as-of", "2011-06-30")
    assert code == 2
    assert "--as-of: features runs for one date; pipeline takes several" in capsys.readouterr().err


def test_the_pipeline_ends_with_the_report_of_its_last_date(two_dates):
    warehouse, out = two_dates
    folder = Path(warehouse.path) / "_report"  # report.path unset: beside the tables

    page = (folder / "report.html").read_text(encoding="utf-8")
    assert f"Customers as of {JUNE}: 2 segments" in page
    # clv and evaluate were skipped: no value and no evaluation chart
    assert sorted(p.stem for p in (folder / "charts").iterdir()) == [
        "k_selection",
        "monthly_sales",
        "profile_heatmap",
        "rfm_distribution",
        "segment_migration",
        "segment_sizes",
        "top_products",
    ]
    with open(folder / "exports" / "migration.csv", newline="", encoding="utf-8") as handle:
        moves = list(csv.DictReader(handle))
    assert {(m["from_as_of"], m["to_as_of"]) for m in moves} == {(str(MARCH), str(JUNE))}
    assert sum(int(m["customers"]) for m in moves) == len(customers_by(JUNE))
    assert f"[report {JUNE}] started" in out and f"[report {MARCH}]" not in out  # once, last
    assert out.strip().splitlines()[-1].endswith(f"; report file:{folder}/report.html")
