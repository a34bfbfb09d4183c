"""
``report.html``: one self-contained page a manager can open offline (SPEC section 7).

The charts are embedded as ``data:`` URIs and the style sheet is inline; the page has no
script and refers to nothing outside itself except the CSV exports beside it. Every text that
comes from data (segment names, actions, product names, features, recommenders, reasons) is
HTML-escaped by :func:`escape`: product names are untrusted input, and ``<script>`` in one
shows as text.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from customer_analytics.core import columns as C
from customer_analytics.stages.report.charts import SIZES, Chart
from customer_analytics.stages.report.data import BASELINE, MEASURE, ReportData

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       margin: 0 auto; max-width: 1240px; padding: 0 24px 48px; color: #1d2430;
       line-height: 1.45; }
h1 { margin: 28px 0 4px; font-size: 28px; }
h2 { margin-top: 40px; border-bottom: 2px solid #dfe3ea; padding-bottom: 6px; }
.subtitle { color: #5b6473; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #e6e9ef; padding: 4px 10px; text-align: left; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr));
         gap: 16px; }
.card { border: 1px solid #dfe3ea; border-radius: 8px; padding: 12px 16px;
        background: #fafbfd; }
.card h3 { margin: 0 0 4px; font-size: 19px; }
.card .size { color: #5b6473; margin: 0 0 8px; }
.card .action { background: #eef3fb; border-left: 4px solid #4477aa; padding: 6px 10px; }
.card table { font-size: 14px; width: 100%; }
.card th, .card td { padding: 3px 6px; }
.card td:first-child { font-size: 13px; }
.card ol { margin: 4px 0 8px; padding-left: 22px; }
figure { margin: 24px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e6e9ef; }
figcaption { color: #5b6473; font-size: 14px; }
.missing { color: #8a5a00; background: #fff7e6; padding: 6px 10px; border-radius: 4px; }
"""

#: Each optional part of the page: what it is, and how to add it when the warehouse lacks it.
ABSENT = {
    "selection": ("K sweep", "run segment with --mode fit and no fixed segmentation.k"),
    "rfm": ("RFM distribution", "run features for the segments' date"),
    "monthly": ("monthly sales", "run features"),
    "top_products": ("top products", "run recommend"),
    "evaluation": ("recommendation evaluation", "run evaluate"),
    "value": ("customer value", "run clv before segment"),
    "migration": ("segment migration", "run the pipeline for a second --as-of date"),
    "reconciliation": ("ingest reconciliation", "run ingest"),
}


#: Where the products would be, when the source has none.
NO_PRODUCTS = (
    "No recommendations: the source has no product lines, so recommend and evaluate did not "
    "run and there are no top products, lists or evaluation. A source with a product column "
    "(source.columns.product_id) gets them."
)


@dataclass(frozen=True)
class RunFacts:
    """What the page says of the run that wrote it."""

    run_id: str
    generated_at: datetime
    warehouse: str
    #: file names of the CSV exports written beside the page, under ``exports/``
    exports: Sequence[str] = field(default_factory=tuple)


def escape(value: object) -> str:
    """``value`` as HTML text, quotes included: the only way data reaches the page."""
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, int | float) and float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def _percent(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if 0 < float(value) < 0.0005:
        return "&lt;0.1%"
    return f"{float(value):.1%}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    """A table from already escaped cells; the columns in ``numeric`` align right."""

    def cell(tag: str, i: int, text: str) -> str:
        css = ' class="number"' if i in numeric else ""
        return f"<{tag}{css}>{text}</{tag}>"

    head = "".join(cell("th", i, escape(h)) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, text) for i, text in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _missing(part: str, data: ReportData | None = None) -> str:
    if data is not None and data.no_products and part in ("top_products", "evaluation"):
        return f'<p class="missing">{escape(NO_PRODUCTS)}</p>'
    what, how = ABSENT[part]
    return f'<p class="missing">No {escape(what)} in this warehouse: {escape(how)}.</p>'


def _facts(data: ReportData, facts: RunFacts) -> str:
    rows = [
        ("Data as of", escape(data.as_of.isoformat())),
        ("Report run", escape(facts.run_id)),
        ("Generated", escape(facts.generated_at.strftime("%Y-%m-%d %H:%M UTC"))),
        ("Warehouse", escape(facts.warehouse)),
        ("Customers segmented", _number(int(data.segments[C.SIZE].sum()))),
        ("Segments", _number(data.k)),
    ]
    out = _table(["Fact", "Value"], rows, numeric=set())
    recon = data.reconciliation
    if recon is None or not len(recon):
        return out + _missing("reconciliation")
    total = int(recon[C.ROWS].sum())
    lines = [
        (
            escape(row[C.CATEGORY]),
            escape(row[C.REASON] if isinstance(row[C.REASON], str) else "-"),
            _number(int(row[C.ROWS])),
            _percent(row[C.ROWS] / total if total else None),
        )
        for _, row in recon.iterrows()
    ]
    lines.append(("<b>input</b>", "", f"<b>{_number(total)}</b>", _percent(1.0 if total else None)))
    source = escape(recon[C.SOURCE].iloc[0])
    run = escape(recon[C.RUN_ID].iloc[0])
    return (
        out + f"<h3>Ingest reconciliation</h3><p>Source kind {source}, ingest run {run}: every "
        "input row is accepted, quarantined with a reason, or excluded by a rule.</p>"
        + _table(["Category", "Reason", "Rows", "Share"], lines, numeric={2, 3})
    )


def _card(data: ReportData, segment: pd.Series, products_per_card: int) -> str:
    cluster = segment[C.CLUSTER]
    profile = data.profiles[data.profiles[C.CLUSTER] == cluster]
    profile_rows = [
        (
            escape(row[C.FEATURE]).replace("_", "_<wbr>"),  # long names break at underscores
            _number(row[C.MEAN]),
            _number(row[C.OVERALL_MEAN]),
            _number(row[C.INDEX] * 100, 0) if pd.notna(row[C.INDEX]) else "n/a",
        )
        for _, row in profile.iterrows()
    ]
    parts = [
        f'<div class="card"><h3>{escape(segment[C.SEGMENT_NAME])}</h3>',
        f'<p class="size">{_number(int(segment[C.SIZE]))} customers, '
        f"{_percent(segment[C.SHARE])} of all (segment {escape(cluster)})</p>",
        f'<p class="action">{escape(segment[C.ACTION])}</p>',
    ]
    if data.value is not None:
        value = data.value[data.value[C.CLUSTER] == cluster].set_index(MEASURE)
        if C.LTV_PREDICTED in value.index:
            ltv, alive = value.loc[C.LTV_PREDICTED], value.loc[C.P_ALIVE]
            parts.append(
                f"<p>Predicted lifetime value: mean {_number(ltv[C.MEAN])}, median "
                f"{_number(ltv['median'])}; P(alive): mean {_percent(alive[C.MEAN])}.</p>"
            )
    if data.top_products is not None:
        top = data.top_products[data.top_products[C.CLUSTER] == cluster].head(products_per_card)
        items = "".join(
            f"<li>{escape(row[C.PRODUCT_NAME])} <small>({_percent(row[C.PENETRATION])} of the "
            "segment bought it)</small></li>"
            for _, row in top.iterrows()
        )
        parts.append(
            f"<p>Top products:</p><ol>{items}</ol>"
            if items
            else "<p>Top products: none bought in the recommendation window.</p>"
        )
    elif data.no_products:
        parts.append('<p class="missing">Top products: none, the source has no product lines.</p>')
    parts.append(
        _table(["Feature", "Segment mean", "All customers", "Index"], profile_rows, {1, 2, 3})
    )
    parts.append("</div>")
    return "".join(parts)


def _figure(chart: Chart) -> str:
    width, height = SIZES[chart.name]
    encoded = base64.b64encode(chart.png).decode("ascii")
    return (
        f'<figure id="{escape(chart.name)}"><img src="data:image/png;base64,{encoded}" '
        f'width="{width}" height="{height}" alt="{escape(chart.alt)}">'
        f"<figcaption>{escape(chart.title)}</figcaption></figure>"
    )


def _evaluation(data: ReportData) -> str:
    table = data.evaluation
    if table is None or not len(table):
        return _missing("evaluation", data)
    rows = [
        (
            escape(row[C.RECOMMENDER]),
            escape(row[C.TARGET]),
            _number(int(row[C.K])),
            _number(int(row[C.USERS])),
            _percent(row[C.PRECISION_AT_K]),
            _percent(row[C.RECALL_AT_K]),
            _number(row[C.MAP_AT_K], 3),
            _percent(row[C.COVERAGE]),
        )
        for _, row in table.iterrows()
    ]
    first = table.iloc[0]
    return (
        f"<p>Recommenders refitted on the data up to {escape(first[C.CUTOFF_DATE])} and scored on "
        f"the purchases until {escape(first[C.TEST_END_DATE])}; {escape(BASELINE)} is the "
        "baseline. Target <i>all</i>: every product bought in those weeks; <i>new</i>: products "
        "the customer had not bought before.</p>"
        + _table(
            [
                "Recommender",
                "Target",
                "K",
                "Customers",
                "Precision@K",
                "Recall@K",
                "MAP@K",
                "Coverage",
            ],
            rows,
            numeric={2, 3, 4, 5, 6, 7},
        )
    )


def render(
    data: ReportData, charts: Sequence[Chart], facts: RunFacts, *, products_per_card: int
) -> str:
    """The whole page as one HTML string."""
    cards = "".join(
        _card(data, segment, products_per_card) for _, segment in data.segments.iterrows()
    )
    figures = "".join(_figure(chart) for chart in charts)
    drawn = {chart.name for chart in charts}
    notes = "".join(
        _missing(part, data)
        for part, chart in (
            ("selection", "k_selection"),
            ("rfm", "rfm_distribution"),
            ("monthly", "monthly_sales"),
            ("top_products", "top_products"),
            ("value", "customer_value"),
            ("migration", "segment_migration"),
        )
        if chart not in drawn
    )
    exports = "".join(
        f'<li><a href="exports/{escape(name)}">{escape(name)}</a></li>' for name in facts.exports
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Customer analytics report, as of {escape(data.as_of.isoformat())}</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Customer analytics report</h1>"
        f'<p class="subtitle">Customers as of {escape(data.as_of.isoformat())}: '
        f"{_number(data.k)} segments</p>"
        f"<h2>Run</h2>{_facts(data, facts)}"
        f'<h2>Segments</h2><div class="cards">{cards}</div>'
        f"<h2>Charts</h2>{figures}{notes}"
        f"<h2>Recommendation evaluation</h2>{_evaluation(data)}"
        "<h2>Exports</h2>"
        + (
            f"<p>CSV files (UTF-8, with a header) for Tableau or Power BI:</p><ul>{exports}</ul>"
            if exports
            else "<p>No CSV exports were written (report.exports is empty).</p>"
        )
        + "</body></html>\n"
    )
