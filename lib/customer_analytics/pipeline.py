"""
The jobs: each reads its inputs from the warehouse (or the source), calls the library and
writes its tables. ``PIPELINE`` is the order ``customer-analytics pipeline`` runs them in.

A job is a function of a :class:`JobContext` that fills the stage summary it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from customer_analytics import columns as C
from customer_analytics import features, ingest, segmentation
from customer_analytics.config import Config
from customer_analytics.errors import InputError
from customer_analytics.progress import Progress, StageSummary
from customer_analytics.sources import read_source
from customer_analytics.tables import Warehouse

ORDER_LINES = "order_lines"
ORDERS = "orders"
CUSTOMERS = "customers"
QUARANTINE = "quarantine"
INGEST_RECONCILIATION = "ingest_reconciliation"
CUSTOMER_FEATURES = "customer_features"
MONTHLY_SALES = "monthly_sales"
KMEANS_SELECTION = "kmeans_selection"
CUSTOMER_SEGMENTS = "customer_segments"
SEGMENT_PROFILES = "segment_profiles"
FEATURE_IMPORTANCE = "feature_importance"
SEGMENT_MODES = ("fit", "score")


@dataclass
class JobContext:
    spark: SparkSession
    config: Config
    warehouse: Warehouse
    run_id: str
    as_of: date | None
    progress: Progress
    #: ``segment`` job: ``fit`` a new model, or ``score`` with the latest saved one.
    mode: str = "fit"


@dataclass(frozen=True)
class Job:
    name: str
    help: str
    run: Callable[[JobContext, StageSummary], None]
    reads_source: bool = False


def run_ingest(ctx: JobContext, summary: StageSummary) -> None:
    """Source files -> order_lines, orders, customers, quarantine, ingest_reconciliation."""
    source = ctx.config.source
    raw = read_source(ctx.spark, source)
    prepared = ingest.prepare(raw, source).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = ingest.reconciliation_counts(prepared).collect()
        recon = ingest.Reconciliation.from_counts(
            source.source_name(), counts, input_rows=raw.count()
        )
        if not recon.balanced:
            raise RuntimeError(f"ingest does not reconcile, nothing written: {recon}")
        lines = ctx.warehouse.write(ORDER_LINES, ingest.order_lines(prepared), run_id=ctx.run_id)
        orders = ingest.orders(prepared, with_attributes=True).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            order_commit = ctx.warehouse.write(
                ORDERS, orders.drop(*ingest.CUSTOMER_ATTRIBUTES), run_id=ctx.run_id
            )
            customer_commit = ctx.warehouse.write(
                CUSTOMERS, ingest.customers(orders), run_id=ctx.run_id
            )
        finally:
            orders.unpersist()
        quarantined = ctx.warehouse.write(
            QUARANTINE,
            ingest.quarantine(prepared, ctx.run_id, datetime.now(UTC)),
            run_id=ctx.run_id,
        )
    finally:
        prepared.unpersist()
    if lines.rows != recon.lines_written:
        raise RuntimeError(
            f"ingest does not reconcile: {recon} but {lines.rows} lines were written"
        )
    ctx.warehouse.write(
        INGEST_RECONCILIATION,
        ctx.spark.createDataFrame(recon.rows(ctx.run_id), ingest.RECONCILIATION_SCHEMA),
        mode="append",
        run_id=ctx.run_id,
    )
    for line in recon.lines():
        ctx.progress.say(line)
    summary.rows_in = recon.input_rows
    summary.rows_out = lines.rows
    summary.detail.update(
        orders=order_commit.rows,
        customers=customer_commit.rows,
        quarantined=quarantined.rows,
        excluded=sum(recon.excluded.values()),
    )


def read_input(ctx: JobContext, name: str):
    """A warehouse table an earlier job writes; a missing one is an input error (exit 2)."""
    if not ctx.warehouse.exists(name):
        raise InputError(
            f"table {name!r} not found in warehouse {ctx.warehouse.path!r}: run the job that "
            "writes it first (customer-analytics pipeline runs every stage)"
        )
    return ctx.warehouse.read(name)


def resolve_as_of(ctx: JobContext, orders) -> date:
    """``--as-of`` / ``features.as_of``, else the date of the last order."""
    as_of = ctx.as_of or ctx.config.features.as_of
    if as_of is None:
        as_of = features.last_order_date(orders)
        if as_of is None:
            raise InputError("orders is empty: there is no last order date to use as as_of")
        ctx.as_of = as_of
    return as_of


def run_features(ctx: JobContext, summary: StageSummary) -> None:
    """orders, order_lines, customers -> customer_features, monthly_sales."""
    cfg = ctx.config
    orders = read_input(ctx, ORDERS)
    lines = read_input(ctx, ORDER_LINES)
    customer_table = read_input(ctx, CUSTOMERS)
    as_of = resolve_as_of(ctx, orders)
    base = features.base_customer_features(
        orders,
        lines,
        customer_table,
        as_of=as_of,
        lookback_days=cfg.features.lookback_days,
        exclude_periods=cfg.source.exclude_periods,
        expected_lifetime_years=cfg.features.expected_lifetime_years,
        period=cfg.clv.period,
    ).persist(StorageLevel.MEMORY_AND_DISK)  # read by the RFM cut points and by the scores
    try:
        single_view = features.with_rfm_scores(base)
        written = ctx.warehouse.write(CUSTOMER_FEATURES, single_view, run_id=ctx.run_id)
    finally:
        base.unpersist()
    monthly = ctx.warehouse.write(
        MONTHLY_SALES, features.monthly_sales(orders, lines, as_of=as_of), run_id=ctx.run_id
    )
    summary.rows_in = ctx.warehouse.row_count(ORDERS)
    summary.rows_out = written.rows
    summary.detail.update(as_of=as_of.isoformat(), monthly_sales_rows=monthly.rows)


def run_segment(ctx: JobContext, summary: StageSummary) -> None:
    """
    customer_features -> kmeans_selection, customer_segments, segment_profiles,
    feature_importance, and (``fit``) a saved model under ``<warehouse>/_models/segmentation``.

    ``--mode score`` applies the latest saved model without refitting (no ``kmeans_selection``).
    """
    seg_cfg = ctx.config.segmentation
    if ctx.mode not in SEGMENT_MODES:
        raise InputError(f"--mode must be one of {', '.join(SEGMENT_MODES)}, got {ctx.mode!r}")
    table = read_input(ctx, CUSTOMER_FEATURES)
    if ctx.mode == "score":
        model, metadata = segmentation.load_latest_model(ctx.warehouse.path)
        result = segmentation.score(model, metadata, table, seg_cfg)
        summary.detail.update(mode="score", model_run=metadata["run_id"])
    else:
        result = segmentation.fit(table, seg_cfg)
        ctx.warehouse.write(KMEANS_SELECTION, result.selection, run_id=ctx.run_id)
        as_of_row = table.agg(F.max(C.AS_OF)).first() if C.AS_OF in table.columns else None
        folder = segmentation.save_model(
            result.model,
            ctx.warehouse.path,
            run_id=ctx.run_id,
            k=result.k,
            features=seg_cfg.features,
            feature_weights=seg_cfg.feature_weights,
            names=result.names,
            as_of=as_of_row[0] if as_of_row else ctx.as_of,
        )
        summary.detail.update(mode="fit", model=folder)
        result.selection.unpersist()
    try:
        written = ctx.warehouse.write(CUSTOMER_SEGMENTS, result.segments, run_id=ctx.run_id)
        ctx.warehouse.write(SEGMENT_PROFILES, result.profiles, run_id=ctx.run_id)
        ctx.warehouse.write(FEATURE_IMPORTANCE, result.importance, run_id=ctx.run_id)
    finally:
        result.scored.unpersist()
    summary.rows_in = written.rows
    summary.rows_out = written.rows
    summary.detail.update(k=result.k)
    for cluster, (name, _) in sorted(result.names.items()):
        ctx.progress.say(f"[segment] cluster {cluster}: {name}")


JOBS: dict[str, Job] = {
    "ingest": Job(
        "ingest",
        "read the source files into order_lines, orders, customers and quarantine",
        run_ingest,
        reads_source=True,
    ),
    "features": Job(
        "features",
        "build the customer single view (customer_features) and monthly_sales as of a date",
        run_features,
    ),
    "segment": Job(
        "segment",
        "cluster customers (KMeans) into named segments: customer_segments, segment_profiles, "
        "feature_importance, kmeans_selection; --mode score reuses the latest saved model",
        run_segment,
    ),
}

#: The stages ``pipeline`` runs, in order; only stages that are built are listed.
PIPELINE: tuple[str, ...] = ("ingest", "features", "segment")
