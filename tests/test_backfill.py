"""
The backfill test: every stage run as of a past date on data that continues past it equals,
table by table, the same stage run on the data cut at that date. Then nothing from after the
date leaks in: no later order, attribute, basket, segment or test purchase.
"""

from __future__ import annotations

import contextlib
import io
from datetime import date

import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import functions as F

from customer_analytics import cli
from customer_analytics.core import columns as C
from customer_analytics.io.tables import Warehouse
from tests.conftest import REPO, shared_file
from tests.helpers import BACKEND, invoice_lines, settings, write_csv

AS_OF = date(2011, 6, 30)

#: Sums over differently partitioned files differ in the last bits (spend_trend's
#: regr_slope, about 3e-9 on online_retail.parquet).
PRECISION = 1e-6
#: Table -> columns that differ between two runs by design (run ids, timings).
RUN_COLUMNS = {
    "kmeans_selection": [C.SECONDS],
    "recommendation_eval": [C.RUN_ID],
    "clv_models": [C.RUN_ID],
}
TABLES = (
    "customer_features",
    "monthly_sales",
    "kmeans_selection",
    "customer_segments",
    "segment_profiles",
    "feature_importance",
    "segment_top_products",
    "basket_rules",
    "customer_recommendations",
    "recommendation_eval",
)


def run_pipeline(source: str, warehouse) -> int:
    # 14 customers: too few to fit the lifetime value models; the report writes no table
    argv = ["pipeline", "--as-of", AS_OF.isoformat(), "--skip", "clv", "--skip", "report"]
    argv += settings(source, warehouse)
    with contextlib.chdir(REPO), contextlib.redirect_stdout(io.StringIO()):
        return cli.main(argv)


@pytest.fixture(scope="module")
def two_runs(spark, tmp_path_factory):
    """(run as of AS_OF on all the data, run on the data cut at AS_OF), as warehouses."""
    folder = tmp_path_factory.mktemp("backfill")
    rows = invoice_lines()
    cut = [r for r in rows if r[4][:10] <= AS_OF.isoformat()]
    assert len(cut) < len(rows)  # the data does continue past AS_OF
    full_source = write_csv(folder / "all.csv", rows)
    cut_source = write_csv(folder / "cut.csv", cut)
    assert run_pipeline(full_source, folder / "all") == 0
    assert run_pipeline(cut_source, folder / "cut") == 0
    return (
        Warehouse.for_path(spark, str(folder / "all"), BACKEND),
        Warehouse.for_path(spark, str(folder / "cut"), BACKEND),
    )


@pytest.mark.parametrize("table", TABLES)
def test_a_run_as_of_a_past_date_equals_a_run_on_the_data_cut_there(two_runs, table):
    backfill, on_the_day = (w.read(table).drop(*RUN_COLUMNS.get(table, [])) for w in two_runs)
    assert backfill.count() > 0
    assert_approx_df_equality(backfill, on_the_day, PRECISION, ignore_row_order=True)


def test_the_attribute_changed_after_as_of_is_not_seen(two_runs):
    backfill, _ = two_runs
    row = backfill.read("customer_features").filter(f"{C.CUSTOMER_ID} = '1001'").first()
    assert (row[C.AS_OF], row[C.COUNTRY]) == (AS_OF, "United Kingdom")


#: One date: a second one in the same warehouse added a minute and a half to every CI run.
RETAIL_DATES = (date(2011, 6, 30),)
#: The tables of the stages compared on online_retail.parquet (evaluate is compared on the
#: small fixture above: on this file it would add minutes to every CI run), and the lifetime
#: values, which the small fixture has too few customers to fit.
RETAIL_TABLES = (*TABLES[:-1], "customer_clv", "clv_models")


@pytest.fixture(scope="module")
def retail_runs(spark, tmp_path_factory):
    """
    ``online_retail.parquet``: the whole file ingested once, then features, segment and
    recommend as of each date (each date's table versions recorded, and the saved model
    removed in between, as a warehouse with an earlier model matches its segments to it); and
    per date the file cut at the date, ingested and run the same way in a warehouse of its
    own. Returns {date: ((whole warehouse, {table: version}), cut warehouse)}.
    """
    import shutil

    from pyspark.sql import functions as F

    path = shared_file("online_retail.parquet")
    folder = tmp_path_factory.mktemp("retail")

    def run(job, source, warehouse, *extra):
        argv = [job, *extra, "--set", f"source.path={source}", "--set", "source.kind=invoice_lines"]
        argv += ["--set", f"warehouse.path={warehouse}", "--set", "segmentation.k=4"]
        argv += ["--set", "segmentation.n_init=1", "--set", f"warehouse.delta={BACKEND}"]
        with contextlib.chdir(REPO), contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(argv) == 0, job

    def stages(source, warehouse, day):
        for job in ("features", "clv", "segment", "recommend"):
            run(job, source, warehouse, "--as-of", day.isoformat())

    whole = folder / "whole"
    run("ingest", path, whole)
    tables = Warehouse.for_path(spark, str(whole), BACKEND)
    raw = spark.read.parquet(str(path))
    runs = {}
    for day in RETAIL_DATES:
        shutil.rmtree(whole / "_models", ignore_errors=True)
        stages(path, whole, day)
        versions = {t: tables.history(t)[0]["version"] for t in RETAIL_TABLES}
        cut_source, cut = folder / f"cut-{day}.parquet", folder / f"cut-{day}"
        raw.filter(F.to_date("InvoiceDate") <= F.lit(day)).write.parquet(str(cut_source))
        run("ingest", cut_source, cut)
        stages(cut_source, cut, day)
        runs[day] = ((tables, versions), Warehouse.for_path(spark, str(cut), BACKEND))
    return runs


@pytest.mark.parametrize("day", RETAIL_DATES, ids=str)
def test_online_retail_every_table_as_of_a_past_date_equals_the_cut_file(retail_runs, day):
    (whole, versions), cut = retail_runs[day]
    for table in RETAIL_TABLES:
        backfill = whole.read(table, version=versions[table])
        on_the_day = cut.read(table)
        if table == "clv_models":  # appended: the whole warehouse has every date's models
            backfill = backfill.filter(F.col(C.AS_OF) == F.lit(day))
        drop = RUN_COLUMNS.get(table, [])
        assert backfill.count() > 0, table
        assert_approx_df_equality(
            backfill.drop(*drop), on_the_day.drop(*drop), PRECISION, ignore_row_order=True
        )
