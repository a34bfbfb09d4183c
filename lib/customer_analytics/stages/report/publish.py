"""
Publishing the report: its charts, the CSV exports for BI tools and the self-contained HTML
page, written under one folder through the Hadoop file system (local paths and object storage).

``<folder>/report.html``, ``<folder>/charts/*.png`` and ``<folder>/exports/*.csv``; the charts
and exports of an earlier report are removed first, so none outlives it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, FloatType

from customer_analytics.core import columns as C
from customer_analytics.core.paths import join
from customer_analytics.io.exports import CsvExport
from customer_analytics.io.filesystem import FileSystem
from customer_analytics.stages.recommend import product_label
from customer_analytics.stages.report import charts, html
from customer_analytics.stages.report.data import ReportData

#: Decimal places of the exports' numbers: money to the cent, other fractions to a few places.
MONEY_PLACES, FRACTION_PLACES = 2, 4


@dataclass(frozen=True)
class PublishedReport:
    """Where the page is, and what was written beside it."""

    page: str
    charts: int
    exports: list[str] = field(default_factory=list)


def publish(
    data: ReportData,
    exports: dict[str, tuple[str, DataFrame | None]],
    fs: FileSystem,
    folder: str,
    *,
    run_id: str,
    warehouse: str,
    products_per_card: int,
    say: Callable[[str], None],
) -> PublishedReport:
    """
    Draw the charts, write the exports and render the page.

    Parameters
    ----------
    data : ReportData
        The summaries of the gold tables.
    exports : dict of str to (str, DataFrame or None)
        ``report.exports`` name -> the table's name and frame; None where the warehouse lacks
        it (the page says so, no file is written).
    fs, folder
        Where the report goes.
    run_id, warehouse : str
        Shown on the page.
    products_per_card : int
        ``report.card_products``.
    say : callable
        Prints one progress line.
    """
    started = time.perf_counter()
    drawn = charts.draw(data, products_per_segment=products_per_card)
    fs.delete(join(folder, "charts"))
    for chart in drawn:
        fs.write_bytes(join(folder, "charts", chart.file_name), chart.png)
    say(
        f"[report] {len(drawn)} charts drawn in {time.perf_counter() - started:.1f} s: "
        f"{join(folder, 'charts')}"
    )
    fs.delete(join(folder, "exports"))
    export = CsvExport(fs, join(folder, "exports"))
    exported = []
    for name, (table_name, table) in exports.items():
        if table is None:
            say(f"[report] no {name}.csv: the warehouse has no table {table_name!r}")
            continue
        started = time.perf_counter()
        export.write(name, for_bi(table))
        exported.append(f"{name}.csv")
        say(f"[report] exports/{name}.csv in {time.perf_counter() - started:.1f} s")
    facts = html.RunFacts(
        run_id=run_id, generated_at=datetime.now(UTC), warehouse=warehouse, exports=exported
    )
    page = join(folder, "report.html")
    fs.write_text(page, html.render(data, drawn, facts, products_per_card=products_per_card))
    return PublishedReport(fs.qualified(page), len(drawn), exported)


def for_bi(table: DataFrame) -> DataFrame:
    """
    ``table`` as a BI tool should read it: doubles rounded (money, :data:`C.MONEY_COLUMNS
    <customer_analytics.core.columns.MONEY_COLUMNS>`, to the cent, others to
    :data:`FRACTION_PLACES`), and every product shown by its :func:`product_label`.
    """
    columns = []
    for column_field in table.schema.fields:
        name = column_field.name
        column = F.col(name)
        if isinstance(column_field.dataType, DoubleType | FloatType):
            column = F.round(column, MONEY_PLACES if name in C.MONEY_COLUMNS else FRACTION_PLACES)
        elif name == C.PRODUCT_NAME and C.PRODUCT_ID in table.columns:
            column = product_label(column, F.col(C.PRODUCT_ID))
        columns.append(column.alias(name))
    return table.select(*columns)
