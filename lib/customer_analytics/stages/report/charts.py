"""
The report's charts (SPEC section 7) as PNG images, drawn with matplotlib's Agg canvas from the
small frames of :class:`~customer_analytics.stages.report.data.ReportData`.

Each function takes pandas frames of at most a few hundred rows and returns a :class:`Chart`:
its file name, title, alternative text and PNG bytes, at the pixel size of :data:`SIZES`.
Figures are built with :class:`matplotlib.figure.Figure`, not ``pyplot``: no global state, no
display, no backend to choose. Text is 10 to 13 points at 100 dpi, readable at 100% zoom.
"""

from __future__ import annotations

import functools
import io
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from customer_analytics.core import columns as C
from customer_analytics.stages.report.data import BASELINE, BOX_COLUMNS, MEASURE, ReportData

DPI = 100
#: Chart name -> (width, height) in pixels.
SIZES = {
    "k_selection": (1100, 480),
    "segment_sizes": (1000, 520),
    "profile_heatmap": (1100, 620),
    "rfm_distribution": (1000, 520),
    "monthly_sales": (1100, 900),
    "top_products": (1200, 1000),
    "recommendation_evaluation": (1100, 520),
    "customer_value": (1100, 560),
    "segment_migration": (1000, 720),
}
#: Colours of the recommenders and of the baseline (grey), in bar order.
PALETTE = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb")
LABEL_WIDTH = 28


@dataclass(frozen=True)
class Chart:
    """One PNG chart: ``name`` (the file is ``<name>.png``), ``title``, ``alt`` and the image."""

    name: str
    title: str
    alt: str
    png: bytes

    @property
    def file_name(self) -> str:
        return f"{self.name}.png"


def _plain_text(draw_chart: Callable[..., Chart]) -> Callable[..., Chart]:
    """
    Draw with ``$`` as a plain character: product and segment names are data, and matplotlib
    would read the text between two dollar signs as a formula (or fail to parse it).
    """

    @functools.wraps(draw_chart)
    def drawn(*args, **kwargs) -> Chart:
        with matplotlib.rc_context({"text.parse_math": False}):
            return draw_chart(*args, **kwargs)

    return drawn


def _figure(name: str) -> Figure:
    width, height = SIZES[name]
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _label(text: object, width: int = LABEL_WIDTH) -> str:
    """A tick label wrapped onto at most two lines of ``width`` characters."""
    return textwrap.shorten(str(text), width * 2, placeholder="...") if text is not None else "-"


def _wrapped(text: object, width: int = LABEL_WIDTH) -> str:
    return "\n".join(textwrap.wrap(_label(text, width), width)) or "-"


def _thousands(value: float, _position: object = None) -> str:
    for limit, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


@_plain_text
def k_selection(selection: pd.DataFrame, chosen_k: int) -> Chart:
    """Training cost (the elbow) and silhouette against K, the chosen K marked."""
    name, title = "k_selection", "Choosing the number of segments K"
    figure = _figure(name)
    figure.suptitle(title, fontsize=13)
    cost_axes, silhouette_axes = figure.subplots(1, 2)
    for axes, column, label in (
        (cost_axes, C.TRAINING_COST, "Training cost (within-cluster sum of squares)"),
        (silhouette_axes, C.SILHOUETTE, "Silhouette (higher is better)"),
    ):
        axes.plot(selection[C.K], selection[column], marker="o", color=PALETTE[0])
        chosen = selection[selection[C.K] == chosen_k]
        axes.axvline(chosen_k, color=PALETTE[1], linestyle="--", linewidth=1)
        axes.plot(chosen[C.K], chosen[column], marker="o", markersize=11, color=PALETTE[1])
        axes.set_xlabel("K (number of segments)")
        axes.set_ylabel(label)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    cost_axes.yaxis.set_major_formatter(FuncFormatter(_thousands))
    silhouette_axes.text(
        chosen_k,
        0.02,
        f" chosen K = {chosen_k}",
        color=PALETTE[1],
        fontsize=11,
        transform=silhouette_axes.get_xaxis_transform(),
    )
    return Chart(
        name, title, f"Elbow and silhouette against K; K = {chosen_k} chosen", _png(figure)
    )


@_plain_text
def segment_sizes(segments: pd.DataFrame) -> Chart:
    """Customers per segment, with each segment's share, largest at the top."""
    name, title = "segment_sizes", "Segment sizes"
    figure = _figure(name)
    axes = figure.subplots()
    ordered = segments.sort_values(C.SIZE)
    bars = axes.barh(
        [_wrapped(n, 34) for n in ordered[C.SEGMENT_NAME]], ordered[C.SIZE], color=PALETTE[0]
    )
    axes.bar_label(
        bars,
        labels=[
            f"{size:,}  ({share:.1%})"
            for size, share in zip(ordered[C.SIZE], ordered[C.SHARE], strict=True)
        ],
        padding=4,
        fontsize=10,
    )
    axes.set_title(title, fontsize=13)
    axes.set_xlabel("Customers")
    axes.set_ylabel("Segment")
    axes.xaxis.set_major_formatter(FuncFormatter(_thousands))
    axes.set_xlim(0, float(ordered[C.SIZE].max()) * 1.3)
    axes.grid(axis="x", alpha=0.3)
    return Chart(name, title, "Customers and share of customers per segment", _png(figure))


@_plain_text
def profile_heatmap(profiles: pd.DataFrame, segments: pd.DataFrame) -> Chart:
    """
    Each segment's mean of each feature as an index of the mean over all customers (100:
    average), segments in rows, features in columns.
    """
    name, title = "profile_heatmap", "Segment profiles: index of each feature (100 = average)"
    figure = _figure(name)
    axes = figure.subplots()
    order = list(segments[C.CLUSTER])
    matrix = profiles.pivot_table(
        index=C.CLUSTER, columns=C.FEATURE, values=C.INDEX, aggfunc="first", dropna=False
    ).reindex(order)
    labels = dict(zip(segments[C.CLUSTER], segments[C.SEGMENT_NAME], strict=True))
    values = matrix.to_numpy(dtype=float) * 100.0
    finite = values[np.isfinite(values)]
    high = max(200.0, float(finite.max()) if finite.size else 200.0)
    image = axes.imshow(
        np.ma.masked_invalid(values),
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=100.0, vmin=0.0, vmax=high),
        aspect="auto",
    )
    for (row, column), value in np.ndenumerate(values):
        text = "n/a" if not np.isfinite(value) else f"{value:.0f}"
        axes.text(column, row, text, ha="center", va="center", fontsize=10)
    axes.set_xticks(range(len(matrix.columns)), [_wrapped(c, 14) for c in matrix.columns])
    axes.set_yticks(range(len(order)), [_wrapped(labels[c], 30) for c in order])
    axes.tick_params(axis="x", labelsize=9)
    axes.set_xlabel("Feature")
    axes.set_ylabel("Segment")
    axes.set_title(title, fontsize=13)
    figure.colorbar(image, ax=axes, label="Index (segment mean / overall mean x 100)")
    return Chart(name, title, "Heatmap of feature indices per segment", _png(figure))


@_plain_text
def rfm_distribution(rfm: pd.DataFrame) -> Chart:
    """Customers per RFM score (R + F + M, 3 to 15), stacked by RFM segment."""
    name, title = "rfm_distribution", "RFM score distribution"
    figure = _figure(name)
    axes = figure.subplots()
    table = rfm.pivot_table(
        index=C.RFM_SCORE, columns=C.RFM_SEGMENT, values=C.CUSTOMERS, aggfunc="sum", fill_value=0
    ).sort_index()
    bottom = np.zeros(len(table))
    for i, segment in enumerate(table.columns):
        axes.bar(
            table.index.astype(int),
            table[segment],
            bottom=bottom,
            label=str(segment),
            color=PALETTE[i % len(PALETTE)],
        )
        bottom += table[segment].to_numpy()
    axes.set_title(title, fontsize=13)
    axes.set_xlabel("RFM score (recency + frequency + monetary scores, each 1 to 5)")
    axes.set_ylabel("Customers")
    axes.set_xticks(table.index.astype(int))
    axes.yaxis.set_major_formatter(FuncFormatter(_thousands))
    axes.legend(title="RFM segment", fontsize=10, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.grid(axis="y", alpha=0.3)
    return Chart(name, title, "Customers per RFM score, by RFM segment", _png(figure))


@_plain_text
def monthly_sales(monthly: pd.DataFrame) -> Chart:
    """Revenue, customers (new and returning) and products sold, per month."""
    name, title = "monthly_sales", "Monthly sales"
    figure = _figure(name)
    figure.suptitle(title, fontsize=13)
    revenue_axes, customer_axes, product_axes = figure.subplots(3, 1, sharex=True)
    months = pd.to_datetime(monthly[C.MONTH])
    width = 20  # days
    revenue_axes.bar(months, monthly[C.REVENUE], width=width, color=PALETTE[0])
    revenue_axes.set_ylabel("Revenue\n(currency of the data)")
    customer_axes.bar(
        months, monthly[C.RETURNING_CUSTOMERS], width=width, color=PALETTE[0], label="returning"
    )
    customer_axes.bar(
        months,
        monthly[C.NEW_CUSTOMERS],
        width=width,
        bottom=monthly[C.RETURNING_CUSTOMERS],
        color=PALETTE[2],
        label="new (first visit that month)",
    )
    customer_axes.set_ylabel("Customers")
    customer_axes.legend(fontsize=10, loc="upper left")
    product_axes.bar(months, monthly[C.QUANTITY], width=width, color=PALETTE[3])
    product_axes.set_ylabel("Products sold\n(units)")
    product_axes.set_xlabel("Month")
    for axes in (revenue_axes, customer_axes, product_axes):
        axes.yaxis.set_major_formatter(FuncFormatter(_thousands))
        axes.grid(axis="y", alpha=0.3)
    return Chart(
        name, title, "Revenue, new and returning customers and units sold per month", _png(figure)
    )


@_plain_text
def top_products(top: pd.DataFrame, segments: pd.DataFrame, per_segment: int) -> Chart:
    """
    Each segment's top products by penetration (the share of the segment's customers who
    bought the product in the window), one panel per segment, the largest segment first.
    """
    name, title = "top_products", "Top products per segment"
    figure = _figure(name)
    figure.suptitle(f"{title} (share of the segment's customers who bought it)", fontsize=13)
    order = list(segments[C.CLUSTER])
    columns = 1 if len(order) == 1 else 2
    rows = -(-len(order) // columns)
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for axes, cluster in zip(grid, order, strict=False):  # grid may have a spare panel
        products = top[top[C.CLUSTER] == cluster].sort_values(C.RANK).head(per_segment)
        segment = segments.loc[segments[C.CLUSTER] == cluster, C.SEGMENT_NAME].iloc[0]
        axes.set_title(_label(segment, 50), fontsize=11)
        if not len(products):
            axes.set_axis_off()
            axes.text(0.5, 0.5, "no purchases in the window", ha="center", transform=axes.transAxes)
            continue
        axes.barh(
            [_label(p, 36) for p in products[C.PRODUCT_NAME]][::-1],
            list(products[C.PENETRATION])[::-1],
            color=PALETTE[0],
        )
        axes.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        axes.tick_params(axis="y", labelsize=9)
        axes.set_xlabel("Customers of the segment who bought it")
    for axes in grid[len(order) :]:
        axes.set_visible(False)
    return Chart(name, title, "Top products per segment by penetration", _png(figure))


@_plain_text
def recommendation_evaluation(evaluation: pd.DataFrame) -> Chart:
    """Precision@K and recall@K of every recommender against the baseline, at each K."""
    name, title = "recommendation_evaluation", "Recommendations against the baseline"
    figure = _figure(name)
    figure.suptitle(f"{title} (target: all products bought in the test weeks)", fontsize=13)
    rows = evaluation[evaluation[C.TARGET] == "all"]
    recommenders = _baseline_last(rows[C.RECOMMENDER].unique())
    ks = sorted(rows[C.K].unique())
    width = 0.8 / max(len(recommenders), 1)
    for axes, metric, label in zip(
        figure.subplots(1, 2),
        (C.PRECISION_AT_K, C.RECALL_AT_K),
        ("Precision@K", "Recall@K"),
        strict=True,
    ):
        for i, recommender in enumerate(recommenders):
            values = rows[rows[C.RECOMMENDER] == recommender].set_index(C.K)[metric]
            baseline = recommender == BASELINE
            axes.bar(
                np.arange(len(ks)) + i * width,
                [values.get(k, np.nan) for k in ks],
                width,
                label=f"{recommender} (baseline)" if baseline else recommender,
                color=PALETTE[-1] if baseline else PALETTE[i % (len(PALETTE) - 1)],
                hatch="//" if baseline else None,
            )
        axes.set_xticks(np.arange(len(ks)) + width * (len(recommenders) - 1) / 2, ks)
        axes.set_xlabel("K (length of the recommendation list)")
        axes.set_ylabel(label)
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=9, loc="upper left")
    return Chart(name, title, "Precision and recall at K per recommender", _png(figure))


def _baseline_last(recommenders: Iterable[str]) -> list[str]:
    return sorted(recommenders, key=lambda r: (r == BASELINE, r))


@_plain_text
def customer_value(value: pd.DataFrame, segments: pd.DataFrame) -> Chart:
    """
    Predicted lifetime value and P(alive) per segment as boxes: the box spans the quartiles,
    the line is the median, the whiskers reach the 5th and 95th percentiles, the diamond is
    the mean.
    """
    name, title = "customer_value", "Customer value per segment"
    figure = _figure(name)
    figure.suptitle(title, fontsize=13)
    order = list(segments[C.CLUSTER])
    labels = dict(zip(segments[C.CLUSTER], segments[C.SEGMENT_NAME], strict=True))
    for axes, measure, label in zip(
        figure.subplots(1, 2),
        (C.LTV_PREDICTED, C.P_ALIVE),
        ("Predicted lifetime value (currency of the data)", "P(alive)"),
        strict=True,
    ):
        rows = value[value[MEASURE] == measure].set_index(C.CLUSTER)
        present = [c for c in order if c in rows.index][::-1]  # the largest segment on top
        stats = [
            {
                "label": _wrapped(labels[c], 24),
                "whislo": rows.at[c, BOX_COLUMNS[0]],
                "q1": rows.at[c, BOX_COLUMNS[1]],
                "med": rows.at[c, BOX_COLUMNS[2]],
                "q3": rows.at[c, BOX_COLUMNS[3]],
                "whishi": rows.at[c, BOX_COLUMNS[4]],
                "mean": rows.at[c, C.MEAN],
            }
            for c in present
        ]
        boxes = axes.bxp(
            stats,
            showfliers=False,
            showmeans=True,
            patch_artist=True,
            orientation="horizontal",
            medianprops={"color": "black"},
            meanprops={"marker": "D", "markerfacecolor": PALETTE[1], "markeredgecolor": "black"},
        )
        for box in boxes["boxes"]:
            box.set_facecolor(PALETTE[4])
        axes.set_xlabel(label)
        axes.set_ylabel("Segment")
        axes.grid(axis="x", alpha=0.3)
    return Chart(name, title, "Distribution of predicted value and P(alive)", _png(figure))


@_plain_text
def segment_migration(migration: pd.DataFrame) -> Chart:
    """Customers moving from each segment at one date to each at the next, as shares."""
    from_date, to_date = migration[C.FROM_AS_OF].iloc[0], migration[C.TO_AS_OF].iloc[0]
    name, title = "segment_migration", f"Segment migration {from_date} -> {to_date}"
    figure = _figure(name)
    axes = figure.subplots()
    shares = migration.pivot_table(
        index=C.FROM_SEGMENT, columns=C.TO_SEGMENT, values=C.SHARE, aggfunc="sum", fill_value=0.0
    )
    counts = migration.pivot_table(
        index=C.FROM_SEGMENT, columns=C.TO_SEGMENT, values=C.CUSTOMERS, aggfunc="sum", fill_value=0
    ).reindex(index=shares.index, columns=shares.columns, fill_value=0)
    image = axes.imshow(shares.to_numpy(dtype=float), cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, column), share in np.ndenumerate(shares.to_numpy(dtype=float)):
        count = int(counts.iat[row, column])
        axes.text(
            column,
            row,
            f"{share:.0%}\n{count:,}",
            ha="center",
            va="center",
            fontsize=9,
            color="white" if share > 0.6 else "black",
        )
    axes.set_xticks(range(len(shares.columns)), [_wrapped(c, 14) for c in shares.columns])
    axes.set_yticks(range(len(shares.index)), [_wrapped(c, 24) for c in shares.index])
    axes.tick_params(axis="x", labelsize=9)
    axes.set_xlabel(f"Segment on {to_date}")
    axes.set_ylabel(f"Segment on {from_date}")
    axes.set_title(title, fontsize=13)
    figure.colorbar(image, ax=axes, label="Share of the row's customers", format="{x:.0%}")
    return Chart(name, title, "Matrix of customers moving between segments", _png(figure))


def draw(data: ReportData, *, products_per_segment: int) -> list[Chart]:
    """Every chart ``data`` has the figures for, in the report's order."""
    charts = []
    if data.selection is not None and len(data.selection):
        charts.append(k_selection(data.selection, data.k))
    charts.append(segment_sizes(data.segments))
    charts.append(profile_heatmap(data.profiles, data.segments))
    if data.rfm is not None and len(data.rfm):
        charts.append(rfm_distribution(data.rfm))
    if data.monthly is not None and len(data.monthly):
        charts.append(monthly_sales(data.monthly))
    if data.top_products is not None and len(data.top_products):
        charts.append(top_products(data.top_products, data.segments, products_per_segment))
    if data.evaluation is not None and len(data.evaluation):
        charts.append(recommendation_evaluation(data.evaluation))
    if data.value is not None and len(data.value):
        charts.append(customer_value(data.value, data.segments))
    if data.migration is not None and len(data.migration):
        charts.append(segment_migration(data.migration))
    return charts
