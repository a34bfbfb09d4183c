"""
The jobs: each reads its inputs from the warehouse (or the source), calls the library and
writes its tables. ``PIPELINE_STAGES`` is the order ``customer-analytics pipeline`` runs them in.

A job is a function of a :class:`JobContext` that fills the stage summary it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from customer_analytics.config.schema import Config, RecommendConfig
from customer_analytics.core import catalog as T
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.core.paths import join
from customer_analytics.core.settings import sql_settings
from customer_analytics.io import filesystem
from customer_analytics.io.model_store import ModelStore
from customer_analytics.io.sources import read_source
from customer_analytics.io.tables import Commit, Warehouse
from customer_analytics.orchestration.progress import Progress, StageSummary
from customer_analytics.runtime.materialize import Materializer, Persisted
from customer_analytics.stages import (
    evaluation,
    features,
    ingest,
    migration,
    reconciliation,
    segmentation,
)
from customer_analytics.stages.evaluation import EvaluationPlan
from customer_analytics.stages.period import Period, last_order_as_of, single_as_of
from customer_analytics.stages.ranking_metrics import format_evaluation
from customer_analytics.stages.recommend import (
    SegmentPurchases,
    missing_products,
    period_purchases,
    purchases,
)

SEGMENT_MODES = ("fit", "score")
MEMORY_AND_DISK = StorageLevel.MEMORY_AND_DISK


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
    #: The page the ``report`` job wrote, once it has.
    report_file: str | None = None
    #: How frames read more than once are kept (``spark.materialize``).
    materializer: Materializer = field(default_factory=Materializer)

    def persisted(self, level: StorageLevel, *, cut_lineage: bool = False) -> Persisted:
        """A :class:`Persisted` block that keeps frames the way this run does."""
        return Persisted(level, cut_lineage=cut_lineage, materializer=self.materializer)


@dataclass(frozen=True)
class Job:
    name: str
    help: str
    run: Callable[[JobContext, StageSummary], None]
    reads_source: bool = False
    #: With several ``--as-of`` dates, run once, for the last date, after the other stages.
    last_date_only: bool = False
    #: In ``pipeline``: why this stage cannot run on the warehouse's data (it is then skipped),
    #: or None. Run alone, the stage itself says so and exits 2.
    skip_reason: Callable[[JobContext], str | None] | None = None


def run(ctx: JobContext) -> dict[str, str]:
    """The commit metadata of every write of this run."""
    return {"run_id": ctx.run_id}


def append(ctx: JobContext, name: str, df: DataFrame) -> Commit:
    """Append ``df`` to table ``name`` as one commit of this run."""
    return ctx.warehouse.write(name, df, mode="append", **run(ctx))


def write_together(ctx: JobContext, tables: dict[str, DataFrame]) -> list[Commit]:
    """
    Write (overwrite) several tables at once, each from a thread of its own, and return their
    commits in the order given. Their Spark jobs share the cores: while one job's driver plans,
    generates code or commits to Delta, the other's tasks run. The first error is raised once
    every write has ended.
    """
    with ThreadPoolExecutor(max_workers=len(tables)) as pool:
        futures = [
            pool.submit(ctx.warehouse.write, name, df, **run(ctx)) for name, df in tables.items()
        ]
    return [future.result() for future in futures]


def read_input(ctx: JobContext, name: str) -> DataFrame:
    """A warehouse table an earlier job writes; a missing one is an input error (exit 2)."""
    if not ctx.warehouse.exists(name):
        where = ctx.warehouse.where() if ctx.warehouse.by_name else repr(ctx.warehouse.path)
        raise InputError(
            f"table {name!r} not found in warehouse {where}: run the job that "
            "writes it first (customer-analytics pipeline runs every stage)"
        )
    return ctx.warehouse.read(name)


def optional(ctx: JobContext, name: str) -> DataFrame | None:
    """A warehouse table, or None where there is none."""
    return ctx.warehouse.read(name) if ctx.warehouse.exists(name) else None


def as_of_last_order(ctx: JobContext, orders: DataFrame) -> date:
    """The run's ``as_of``: ``--as-of`` / ``features.as_of``, else the date of the last order."""
    ctx.as_of = last_order_as_of(orders, ctx.as_of or ctx.config.features.as_of)
    return ctx.as_of


def as_of_table(ctx: JobContext, name: str, table: DataFrame) -> date:
    """The run's ``as_of``: that of a table written for one date, ``--as-of``'s if given."""
    ctx.as_of = single_as_of(table, name, wanted=ctx.as_of or ctx.config.features.as_of)
    return ctx.as_of


def without_products(ctx: JobContext) -> str | None:
    """
    Why no product list can be made from ``order_lines``: no purchase with a product in the
    period up to the run's ``as_of``, or on any date when the run has none yet; None when there
    is one, or when the table is missing (the job then says so).
    """
    if not ctx.warehouse.exists(T.ORDER_LINES):
        return None
    lines, settings = ctx.warehouse.read(T.ORDER_LINES), ctx.config.recommend
    if ctx.as_of is None:
        return missing_products(purchases(lines, exclude_products=settings.exclude_products))
    period = Period.of(ctx.config, ctx.as_of)
    return missing_products(period_purchases(lines, period, settings), period)


def without_evaluation(ctx: JobContext) -> str | None:
    """
    Why ``evaluate`` cannot run: :func:`without_products`, a cutoff after the last order, or a
    training period too short for its segmentation (:func:`evaluation.too_short`).
    """
    reason = without_products(ctx)
    if reason is not None or not ctx.warehouse.exists(T.ORDERS):
        return reason
    orders = ctx.warehouse.read(T.ORDERS)
    as_of = last_order_as_of(orders, ctx.as_of or ctx.config.features.as_of)
    try:
        plan = EvaluationPlan.of(Period.of(ctx.config, as_of), ctx.config.recommend.evaluation)
    except InputError as exc:
        return str(exc)
    saved = ModelStore(ctx.warehouse).latest_metadata()
    seg_cfg = evaluation.refit_settings(ctx.config.segmentation, saved and int(saved["k"]))
    return evaluation.too_short(orders, plan, seg_cfg)


def run_ingest(ctx: JobContext, summary: StageSummary) -> None:
    """Source files -> order_lines, orders, customers, quarantine, ingest_reconciliation."""
    source = ctx.config.source
    raw = read_source(ctx.spark, source)
    for line in ingest.unmapped_columns(raw, source):
        ctx.progress.say(f"[ingest] {line}")
    slash_order = None
    if source.date_formats is None:
        figures = ingest.slash_date_figures(raw, source, file=F.col(C.SOURCE_FILE))
        # one row per file with dates written with slashes
        slash_order = ingest.slash_date_order(figures.collect() if figures else [])
    # On disk, not in the heap: at 10M rows the cached frame left the orders aggregation too
    # little of a 4g heap (OutOfMemoryError); at 2.4M rows disk was no slower.
    with ctx.persisted(StorageLevel.DISK_ONLY) as persisted:
        prepared = persisted.keep(ingest.prepare(raw, source, slash_order=slash_order))
        counts = reconciliation.reconciliation_counts(prepared).collect()
        recon = (
            reconciliation.Reconciliation.from_counts(
                source.source_name(), counts, input_rows=raw.count()
            )
            .require_balanced()
            .require_accepted(source.max_rejected_share, path=source.path)
        )
        orders = persisted.keep(ingest.orders(prepared, with_attributes=True), MEMORY_AND_DISK)
        lines, order_commit, quarantined = write_together(
            ctx,
            {
                T.ORDER_LINES: ingest.order_lines(prepared),
                # with the attributes: features take each customer's latest value up to as_of
                T.ORDERS: orders,
                T.QUARANTINE: ingest.quarantine(prepared, ctx.run_id, datetime.now(UTC)),
            },
        )
        customer_commit = ctx.warehouse.write(T.CUSTOMERS, ingest.customers(orders), **run(ctx))
    recon.require_written(lines.rows)
    append(ctx, T.INGEST_RECONCILIATION, recon.frame(ctx.spark, ctx.run_id))
    for line in recon.lines():
        ctx.progress.say(line)
    summary.rows_in, summary.rows_out = recon.input_rows, lines.rows
    summary.detail.update(
        orders=order_commit.rows,
        customers=customer_commit.rows,
        quarantined=quarantined.rows,
        excluded=sum(recon.excluded.values()),
    )


def run_features(ctx: JobContext, summary: StageSummary) -> None:
    """orders, order_lines -> customer_features, monthly_sales."""
    cfg = ctx.config
    orders, lines = read_input(ctx, T.ORDERS), read_input(ctx, T.ORDER_LINES)
    period = Period.of(cfg, as_of_last_order(ctx, orders))
    ctx.progress.say(f"[features] {period.describe()}")
    with ctx.persisted(MEMORY_AND_DISK) as persisted:  # read by the RFM cut points and the scores
        base = persisted.keep(
            features.base_customer_features(
                orders,
                lines,
                period,
                expected_lifetime_years=cfg.features.expected_lifetime_years,
                time_unit=cfg.clv.period,
            )
        )
        written, monthly = write_together(
            ctx,
            {
                T.CUSTOMER_FEATURES: features.with_rfm_scores(base),
                T.MONTHLY_SALES: features.monthly_sales(orders, lines, as_of=period.as_of),
            },
        )
    summary.rows_in, summary.rows_out = ctx.warehouse.row_count(T.ORDERS), written.rows
    summary.detail.update(as_of=period.as_of.isoformat(), monthly_sales_rows=monthly.rows)


def run_clv(ctx: JobContext, summary: StageSummary) -> None:
    """
    customer_features -> clv_models (appended), customer_clv, as of the features' date
    (``--as-of`` must equal it). A fit that does not converge is recorded, then ends the job
    with exit 2.
    """
    from customer_analytics.stages import clv  # scipy and pandas: loaded by the stages using them

    settings = ctx.config.clv
    table = read_input(ctx, T.CUSTOMER_FEATURES)
    as_of = as_of_table(ctx, T.CUSTOMER_FEATURES, table)
    with sql_settings(ctx.spark, clv.FIT_SETTINGS):
        model = clv.ClvModel.fit(table, settings)
    parameters = ctx.spark.createDataFrame(model.parameter_rows(ctx.run_id), clv.MODELS_SCHEMA)
    append(ctx, T.CLV_MODELS, parameters)
    for line in model.describe():
        ctx.progress.say(f"[clv] {line}")
    model.require_converged()
    ctx.progress.say(f"[clv] fitted in {model.seconds:.1f} s ({settings.period}s)")
    started = time.perf_counter()
    scores = model.score(
        table,
        horizons_days=settings.horizons_days,
        ltv_horizon_days=settings.ltv_horizon_days,
        discount_rate=settings.discount_rate,
    )
    written = ctx.warehouse.write(T.CUSTOMER_CLV, scores, **run(ctx))
    ctx.progress.say(f"[clv] scored and written in {time.perf_counter() - started:.1f} s")
    summary.rows_in = summary.rows_out = written.rows
    summary.detail.update(
        as_of=as_of.isoformat(),
        fitted_customers=model.bgnbd.sample_size,
        fit_seconds=round(model.seconds, 1),
    )


def run_segment(ctx: JobContext, summary: StageSummary) -> None:
    """
    customer_features -> kmeans_selection, customer_segments, segment_profiles,
    feature_importance, segment_history, segment_migration, and (``fit``) a saved model under
    ``<warehouse>/_models/segmentation``.

    ``--mode fit`` matches the new clusters to the latest saved model's, so that segments keep
    their ids and names; ``--mode score`` applies the latest saved model to the features of
    ``--as-of`` without refitting (no ``kmeans_selection``).
    """
    if ctx.mode not in SEGMENT_MODES:
        raise InputError(f"--mode must be one of {', '.join(SEGMENT_MODES)}, got {ctx.mode!r}")
    features_table = read_input(ctx, T.CUSTOMER_FEATURES)
    as_of = as_of_table(ctx, T.CUSTOMER_FEATURES, features_table)
    table = with_customer_value(ctx, features_table, as_of)
    with ctx.persisted(MEMORY_AND_DISK) as persisted:  # the scores, read by all three tables
        result = fit_or_score(ctx, table, summary, persisted.keep)
        written = ctx.warehouse.write(T.CUSTOMER_SEGMENTS, result.segments, **run(ctx))
        ctx.warehouse.write(T.SEGMENT_PROFILES, result.profiles, **run(ctx))
        ctx.warehouse.write(T.FEATURE_IMPORTANCE, result.importance, **run(ctx))
    summary.rows_in = summary.rows_out = written.rows
    summary.detail.update(as_of=as_of.isoformat(), k=result.k)
    for cluster, (name, _) in sorted(result.names.items()):
        ctx.progress.say(f"[segment] segment {cluster}: {name}")
    record_migration(ctx, as_of)


def fit_or_score(
    ctx: JobContext, table: DataFrame, summary: StageSummary, keep: Callable[[DataFrame], DataFrame]
):
    """``segmentation.fit`` (saving the model and its K sweep) or ``segmentation.score``."""
    seg_cfg = ctx.config.segmentation
    store = ModelStore(ctx.warehouse)
    if ctx.mode == "score":
        saved = store.latest()
        ctx.progress.say(
            f"[segment] scoring the features as of {ctx.as_of} with model {saved.run_id} "
            f"(fitted as of {saved.as_of})"
        )
        summary.detail.update(mode="score", model_run=saved.run_id)
        return segmentation.score(saved, table, seg_cfg, keep=keep)
    previous = store.latest() if store.latest_metadata() is not None else None
    result = segmentation.fit(table, seg_cfg, previous, keep=keep)
    ctx.warehouse.write(T.KMEANS_SELECTION, result.selection, **run(ctx))
    summary.detail.update(mode="fit", model=store.save(result.saved(ctx.run_id, seg_cfg)))
    for line in result.changes:
        ctx.progress.say(f"[segment] {line}")
    return result


def with_customer_value(ctx: JobContext, customer_features: DataFrame, as_of: date) -> DataFrame:
    """
    ``customer_features`` with the lifetime values of ``customer_clv`` when that table is as of
    ``as_of`` (then the segments are profiled, and may be named, by value); unchanged
    otherwise, and the job says so.
    """
    from customer_analytics.stages import clv

    values = optional(ctx, T.CUSTOMER_CLV)
    if values is not None:
        dates = {row[0] for row in values.select(C.AS_OF).distinct().collect()}  # one or few
        if dates == {as_of}:
            ctx.progress.say("[segment] profiled with the lifetime values of customer_clv")
            return clv.with_customer_value(customer_features, values)
    ctx.progress.say(
        f"[segment] no customer_clv as of {as_of}: profiles without lifetime values (run clv first)"
    )
    return customer_features


def record_migration(ctx: JobContext, as_of: date) -> None:
    """
    Append this run's ``customer_segments`` to ``segment_history``, rewrite
    ``segment_migration`` from it, and print the move into ``as_of``.
    """
    segments = ctx.warehouse.read(T.CUSTOMER_SEGMENTS).withColumn(C.RUN_ID, F.lit(ctx.run_id))
    append(ctx, T.SEGMENT_HISTORY, segments)
    history = ctx.warehouse.read(T.SEGMENT_HISTORY)
    dates = [row[0] for row in migration.segment_dates(history).collect()]  # one per run date
    moves = migration.consecutive_migrations(history, dates)
    if moves is None:
        return
    ctx.warehouse.write(T.SEGMENT_MIGRATION, moves, **run(ctx))
    into = ctx.warehouse.read(T.SEGMENT_MIGRATION).filter(F.col(C.TO_AS_OF) == F.lit(as_of))
    rows = into.collect()  # at most (segments + 1) ** 2 rows; none when as_of is the first date
    for line in migration.format_matrix(rows) if rows else []:
        ctx.progress.say(f"[segment] {line}")


def run_recommend(ctx: JobContext, summary: StageSummary) -> None:
    """
    order_lines, customer_segments -> segment_top_products, basket_rules,
    customer_recommendations, as of the segments' date (``--as-of`` must equal it).
    """
    settings = ctx.config.recommend
    lines = read_input(ctx, T.ORDER_LINES)
    segments = read_input(ctx, T.CUSTOMER_SEGMENTS)
    period = Period.of(ctx.config, as_of_table(ctx, T.CUSTOMER_SEGMENTS, segments))
    with ctx.persisted(MEMORY_AND_DISK, cut_lineage=True) as persisted:
        purchases = SegmentPurchases.assemble(lines, segments, period, settings, persisted.keep)
        ctx.progress.doing("ranking the products of each segment")
        purchases.require_lists()
        top = ctx.warehouse.write(T.SEGMENT_TOP_PRODUCTS, purchases.top_products(), **run(ctx))
        ctx.progress.say(f"[recommend] top {settings.top_n} lists: {top.rows} rows")
        ctx.progress.doing(f"finding basket rules ({rules_settings(settings)})")
        rules = ctx.warehouse.write(T.BASKET_RULES, purchases.basket_rules(), **run(ctx))
        ctx.progress.say(f"[recommend] basket rules ({rules_settings(settings)}): {rules.rows}")
        ctx.progress.doing("listing products for each customer")
        lists = purchases.customer_lists(segments, rules=ctx.warehouse.read(T.BASKET_RULES))
        written = ctx.warehouse.write(T.CUSTOMER_RECOMMENDATIONS, lists, **run(ctx))
    summary.rows_in = ctx.warehouse.row_count(T.CUSTOMER_SEGMENTS)
    summary.rows_out = written.rows
    summary.detail.update(
        as_of=period.as_of.isoformat(), top_product_rows=top.rows, basket_rules=rules.rows
    )


def rules_settings(settings: RecommendConfig) -> str:
    """The basket rules' settings, as the progress lines name them."""
    if not settings.use_basket_rules:
        return "off: recommend.use_basket_rules is false"
    return (
        f"{settings.rules_engine}, support >= {settings.min_support}, confidence >= "
        f"{settings.min_confidence}"
    )


def run_evaluate(ctx: JobContext, summary: StageSummary) -> None:
    """
    order_lines, orders -> recommendation_eval: the recommenders refitted before the cutoff and
    scored on the test days (:func:`customer_analytics.stages.evaluation.evaluate_recommenders`).
    """
    ev = ctx.config.recommend.evaluation
    lines, orders = read_input(ctx, T.ORDER_LINES), read_input(ctx, T.ORDERS)
    plan = EvaluationPlan.of(Period.of(ctx.config, as_of_last_order(ctx, orders)), ev)
    ctx.progress.say(f"[evaluate] {plan.describe(ev)}")
    saved = ModelStore(ctx.warehouse).latest_metadata()
    # On disk: with a dozen frames cached in the heap, the lists' aggregations ran out of a 4g
    # heap at 10M transactions. Without adaptive execution: the lists' plans are deep, and
    # re-planning them after every query stage cost more than it saved (1x: 147 s against 174).
    with (
        sql_settings(ctx.spark, {"spark.sql.adaptive.enabled": "false"}),
        ctx.persisted(StorageLevel.DISK_ONLY, cut_lineage=True) as persisted,
    ):
        result = evaluation.evaluate_recommenders(
            lines,
            orders,
            plan,
            ctx.config,
            saved_k=saved and int(saved["k"]),
            keep=persisted.keep,
            say=ctx.progress.say,
        )
    table = result.table(ctx.spark, plan, ctx.run_id)
    written = ctx.warehouse.write(T.RECOMMENDATION_EVAL, table, **run(ctx))
    for line in format_evaluation(result.rows):
        ctx.progress.say(line)
    summary.rows_in, summary.rows_out = result.customers, written.rows
    summary.detail.update(cutoff=plan.cutoff.isoformat(), k=result.k, catalogue=result.catalogue)


#: ``report.exports`` name -> the table it exports.
EXPORTED_TABLES = {
    "segments": T.CUSTOMER_SEGMENTS,
    "profiles": T.SEGMENT_PROFILES,
    "top_products": T.SEGMENT_TOP_PRODUCTS,
    "recommendations": T.CUSTOMER_RECOMMENDATIONS,
    "migration": T.SEGMENT_MIGRATION,
}
#: The tables the report summarises besides ``segment_profiles`` (each optional).
REPORTED_TABLES = (
    T.KMEANS_SELECTION,
    T.CUSTOMER_FEATURES,
    T.MONTHLY_SALES,
    T.SEGMENT_TOP_PRODUCTS,
    T.RECOMMENDATION_EVAL,
    T.CUSTOMER_CLV,
    T.CUSTOMER_SEGMENTS,
    T.SEGMENT_MIGRATION,
    T.INGEST_RECONCILIATION,
)


def report_folder(ctx: JobContext) -> str:
    """``report.path``, or ``<warehouse.path>/_report`` when it is not set."""
    return ctx.config.report.path or join(ctx.warehouse.path, T.REPORT_FOLDER)


def run_report(ctx: JobContext, summary: StageSummary) -> None:
    """
    The gold tables -> ``<report.path>/report.html``, ``charts/*.png`` and ``exports/*.csv``,
    as of the segments' date. Only summaries of the tables reach the driver
    (:class:`~customer_analytics.stages.report.data.ReportData`); Spark writes the exports.
    """
    from customer_analytics.stages.report import publish  # matplotlib: only this stage draws
    from customer_analytics.stages.report.data import ReportData

    settings = ctx.config.report
    profiles = read_input(ctx, T.SEGMENT_PROFILES)
    as_of = as_of_table(ctx, T.SEGMENT_PROFILES, profiles)
    started = time.perf_counter()
    tables = {name: optional(ctx, name) for name in REPORTED_TABLES}
    no_products = without_products(ctx) is not None
    data = ReportData.collect(profiles, as_of=as_of, no_products=no_products, **tables)
    ctx.progress.say(f"[report] figures summarised in {time.perf_counter() - started:.1f} s")
    fs = filesystem.for_session(ctx.spark)
    exports = {
        name: (EXPORTED_TABLES[name], optional(ctx, EXPORTED_TABLES[name]))
        for name in settings.exports
    }
    published = publish.publish(
        data,
        exports,
        fs,
        report_folder(ctx),
        run_id=ctx.run_id,
        warehouse=ctx.warehouse.namespace
        if ctx.warehouse.by_name
        else fs.qualified(ctx.warehouse.path),
        products_per_card=settings.card_products,
        say=ctx.progress.say,
    )
    ctx.report_file = published.page
    ctx.progress.say(f"[report] {published.page}")
    summary.rows_in = int(data.segments[C.SIZE].sum())
    summary.rows_out = published.charts + len(published.exports) + 1
    summary.detail.update(
        as_of=as_of.isoformat(), charts=published.charts, exports=len(published.exports)
    )


def run_vacuum(ctx: JobContext, summary: StageSummary) -> None:
    """
    Every table of the warehouse: delete the files no current version uses that are older than
    ``warehouse.vacuum_retention_hours`` (a killed or losing writer's, and replaced versions');
    then the folders a killed run left beside the tables, once as old: unfinished model saves,
    a cluster run's checkpoints and scratch tables (spark.materialize: table).
    """
    retention = ctx.config.warehouse.vacuum_retention_hours
    names = ctx.warehouse.table_names()
    left_over = [  # tables by name: a killed run's scratch tables (spark.materialize: table)
        name
        for name in names
        if name.startswith(T.SCRATCH_PREFIX) and ctx.warehouse.idle_seconds(name) > retention * 3600
    ]
    for name in left_over:
        ctx.warehouse.drop(name)
        ctx.progress.say(f"[vacuum] table {name}: left by a killed run, dropped")
    names = [name for name in names if name not in left_over]
    deleted = 0
    for name in names:
        files = ctx.warehouse.vacuum(name, retention)
        if files:
            ctx.progress.say(f"[vacuum] {name}: {files:,} file(s) deleted")
        deleted += files
    folders = [
        f"{T.MODELS_FOLDER}/{run_id}"
        for run_id in ModelStore(ctx.warehouse).remove_incomplete(retention * 3600)
    ]
    fs = filesystem.for_session(ctx.spark)
    for kind in (T.CHECKPOINTS_FOLDER, T.SCRATCH_FOLDER):  # a finished run removes its own
        parent = join(ctx.warehouse.path, kind)
        for run in fs.idle_folders(parent, retention * 3600):
            fs.delete(join(parent, run))
            folders.append(f"{kind}/{run}")
    for folder in folders:
        ctx.progress.say(f"[vacuum] {folder}: left by a killed run, deleted")
    summary.detail.update(
        tables=len(names),
        files_deleted=deleted,
        folders_deleted=len(folders),
        retention_hours=retention,
    )


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
    "clv": Job(
        "clv",
        "fit BG/NBD and Gamma-Gamma on the customer summary and score every customer: "
        "customer_clv (p_alive, expected visits, expected spend, ltv_predicted), clv_models",
        run_clv,
    ),
    "segment": Job(
        "segment",
        "cluster customers (KMeans) into named segments: customer_segments, segment_profiles, "
        "feature_importance, kmeans_selection, segment_history, segment_migration; --mode "
        "score applies the latest saved model to the features of --as-of",
        run_segment,
    ),
    "recommend": Job(
        "recommend",
        "per-segment top products, basket rules and per-customer recommendations as of a date: "
        "segment_top_products, basket_rules, customer_recommendations",
        run_recommend,
        skip_reason=without_products,
    ),
    "evaluate": Job(
        "evaluate",
        "score the recommenders against the global most-popular list on a time split "
        "(recommend.evaluation): recommendation_eval",
        run_evaluate,
        skip_reason=without_evaluation,
    ),
    "report": Job(
        "report",
        "charts, a self-contained report.html and CSV exports for BI tools from the gold "
        "tables, under report.path",
        run_report,
        last_date_only=True,
    ),
    "vacuum": Job(
        "vacuum",
        "delete the files of every table that no current version uses and that are older than "
        "warehouse.vacuum_retention_hours: those of killed runs and of replaced versions, and "
        "the model saves, checkpoints and scratch tables killed runs left",
        run_vacuum,
    ),
}

#: The stages ``pipeline`` runs, in order; only stages that are built are listed.
PIPELINE_STAGES: tuple[str, ...] = (
    "ingest",
    "features",
    "clv",
    "segment",
    "recommend",
    "evaluate",
    "report",
)
