"""
The jobs: each reads its inputs from the warehouse (or the source), calls the library and
writes its tables. ``PIPELINE`` is the order ``customer-analytics pipeline`` runs them in.

A job is a function of a :class:`JobContext` that fills the stage summary it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from customer_analytics.config.schema import Config
from customer_analytics.core import catalog as T
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.core.paths import join
from customer_analytics.core.settings import sql_settings
from customer_analytics.io.filesystem import FileSystem
from customer_analytics.io.model_store import ModelStore
from customer_analytics.io.sources import read_source
from customer_analytics.io.tables import Commit, Warehouse
from customer_analytics.orchestration.progress import Progress, StageSummary
from customer_analytics.runtime import materialize
from customer_analytics.stages import (
    evaluation,
    features,
    ingest,
    migration,
    recommend,
    segmentation,
)
from customer_analytics.stages.evaluation import EvaluationPlan
from customer_analytics.stages.period import Period
from customer_analytics.stages.recommend import Recommender

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
    #: The page the ``report`` job wrote, once it has.
    report_file: str | None = None


@dataclass(frozen=True)
class Job:
    name: str
    help: str
    run: Callable[[JobContext, StageSummary], None]
    reads_source: bool = False
    #: With several ``--as-of`` dates, run once, for the last date, after the other stages.
    last_date_only: bool = False


def run_ingest(ctx: JobContext, summary: StageSummary) -> None:
    """Source files -> order_lines, orders, customers, quarantine, ingest_reconciliation."""
    source = ctx.config.source
    raw = read_source(ctx.spark, source)
    # On disk, not in the heap: at 10M rows the cached frame left the orders aggregation too
    # little of a 4g heap (OutOfMemoryError); at 2.4M rows disk was no slower.
    prepared = ingest.prepare(raw, source).persist(StorageLevel.DISK_ONLY)
    try:
        counts = ingest.reconciliation_counts(prepared).collect()
        recon = ingest.Reconciliation.from_counts(
            source.source_name(), counts, input_rows=raw.count()
        )
        if not recon.balanced:
            raise RuntimeError(f"ingest does not reconcile, nothing written: {recon}")
        orders = ingest.orders(prepared, with_attributes=True).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            lines, order_commit, quarantined = write_together(
                ctx,
                {
                    T.ORDER_LINES: ingest.order_lines(prepared),
                    # with the attributes: features take each customer's latest value up to as_of
                    T.ORDERS: orders,
                    T.QUARANTINE: ingest.quarantine(prepared, ctx.run_id, datetime.now(UTC)),
                },
            )
            customer_commit = ctx.warehouse.write(
                T.CUSTOMERS, ingest.customers(orders), run_id=ctx.run_id
            )
        finally:
            orders.unpersist()
    finally:
        prepared.unpersist()
    if lines.rows != recon.lines_written:
        raise RuntimeError(
            f"ingest does not reconcile: {recon} but {lines.rows} lines were written"
        )
    ctx.warehouse.write(
        T.INGEST_RECONCILIATION,
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


def write_together(ctx: JobContext, tables: dict[str, DataFrame]) -> list[Commit]:
    """
    Write (overwrite) several tables at once, each from a thread of its own, and return their
    commits in the order given. Their Spark jobs share the cores: while one job's driver plans,
    generates code or commits to Delta, the other's tasks run. The first error is raised once
    every write has ended.
    """
    with ThreadPoolExecutor(max_workers=len(tables)) as pool:
        futures = [
            pool.submit(ctx.warehouse.write, name, df, run_id=ctx.run_id)
            for name, df in tables.items()
        ]
    return [future.result() for future in futures]


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


def table_as_of(ctx: JobContext, name: str, table) -> date:
    """
    The ``as_of`` of a table an earlier stage wrote for one date, which must be ``--as-of``
    when it is given (and becomes the run's ``as_of`` when it is not).
    """
    if C.AS_OF not in table.columns:
        raise InputError(
            f"table {name!r} has no {C.AS_OF} column (written by an older version): run the "
            "stages before this one again"
        )
    low, high = table.agg(F.min(C.AS_OF), F.max(C.AS_OF)).first()
    if low is None:
        raise InputError(f"table {name!r} is empty: run the stage that writes it first")
    if low != high:
        raise InputError(
            f"table {name!r} holds several dates ({low} .. {high}): run the stages before this "
            "one for a single --as-of"
        )
    wanted = ctx.as_of or ctx.config.features.as_of
    if wanted is not None and wanted != low:
        raise InputError(
            f"table {name!r} is as of {low}, not {wanted}: run the stages before this one "
            f"with --as-of {wanted} first"
        )
    ctx.as_of = low
    return low


def feature_options(cfg: Config) -> dict:
    """The keyword arguments of ``features.customer_features`` that come from configuration."""
    return dict(
        expected_lifetime_years=cfg.features.expected_lifetime_years,
        time_unit=cfg.clv.period,
    )


def run_features(ctx: JobContext, summary: StageSummary) -> None:
    """orders, order_lines -> customer_features, monthly_sales."""
    cfg = ctx.config
    orders = read_input(ctx, T.ORDERS)
    lines = read_input(ctx, T.ORDER_LINES)
    period = Period.of(cfg, resolve_as_of(ctx, orders))
    ctx.progress.say(f"[features] {period.describe()}")
    base = features.base_customer_features(orders, lines, period, **feature_options(cfg)).persist(
        StorageLevel.MEMORY_AND_DISK
    )  # read by the RFM cut points and by the scores
    try:
        written, monthly = write_together(
            ctx,
            {
                T.CUSTOMER_FEATURES: features.with_rfm_scores(base),
                T.MONTHLY_SALES: features.monthly_sales(orders, lines, as_of=period.as_of),
            },
        )
    finally:
        base.unpersist()
    summary.rows_in = ctx.warehouse.row_count(T.ORDERS)
    summary.rows_out = written.rows
    summary.detail.update(as_of=period.as_of.isoformat(), monthly_sales_rows=monthly.rows)


def run_clv(ctx: JobContext, summary: StageSummary) -> None:
    """
    customer_features -> clv_models (appended), customer_clv, as of the features' date
    (``--as-of`` must equal it). A fit that does not converge is recorded, then ends the job
    with exit 2.
    """
    from customer_analytics.stages import (
        clv,  # scipy and pandas: loaded by the stages that use them
    )

    settings = ctx.config.clv
    table = read_input(ctx, T.CUSTOMER_FEATURES)
    as_of = table_as_of(ctx, T.CUSTOMER_FEATURES, table)
    model = clv.ClvModel.fit(table, settings)
    ctx.warehouse.write(
        T.CLV_MODELS,
        ctx.spark.createDataFrame(model.parameter_rows(ctx.run_id), clv.MODELS_SCHEMA),
        mode="append",
        run_id=ctx.run_id,
    )
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
    written = ctx.warehouse.write(T.CUSTOMER_CLV, scores, run_id=ctx.run_id)
    ctx.progress.say(f"[clv] scored and written in {time.perf_counter() - started:.1f} s")
    summary.rows_in = written.rows
    summary.rows_out = written.rows
    summary.detail.update(
        as_of=as_of.isoformat(),
        fitted_customers=model.bgnbd.sample_size,
        fit_seconds=round(model.seconds, 1),
    )


def with_customer_value(ctx: JobContext, customer_features, as_of: date):
    """
    ``customer_features`` with ``p_alive``, ``expected_spend`` and ``ltv_predicted`` of
    ``customer_clv`` joined on when that table is as of ``as_of`` (then the segments are
    profiled, and may be named, by value); unchanged otherwise, and the job says so.
    """
    if ctx.warehouse.exists(T.CUSTOMER_CLV):
        values = ctx.warehouse.read(T.CUSTOMER_CLV)
        dates = {row[0] for row in values.select(C.AS_OF).distinct().collect()}  # one or few
        if dates == {as_of}:
            ctx.progress.say("[segment] profiled with the lifetime values of customer_clv")
            return customer_features.join(
                values.select(C.CUSTOMER_ID, *C.CUSTOMER_VALUE_COLUMNS), C.CUSTOMER_ID, "left"
            )
    ctx.progress.say(
        f"[segment] no customer_clv as of {as_of}: profiles without lifetime values (run clv first)"
    )
    return customer_features


def run_segment(ctx: JobContext, summary: StageSummary) -> None:
    """
    customer_features -> kmeans_selection, customer_segments, segment_profiles,
    feature_importance, segment_history, segment_migration, and (``fit``) a saved model under
    ``<warehouse>/_models/segmentation``.

    ``--mode fit`` matches the new clusters to the latest saved model's, so that segments keep
    their ids and names; ``--mode score`` applies the latest saved model to the features of
    ``--as-of`` without refitting (no ``kmeans_selection``).
    """
    seg_cfg = ctx.config.segmentation
    if ctx.mode not in SEGMENT_MODES:
        raise InputError(f"--mode must be one of {', '.join(SEGMENT_MODES)}, got {ctx.mode!r}")
    features_table = read_input(ctx, T.CUSTOMER_FEATURES)
    as_of = table_as_of(ctx, T.CUSTOMER_FEATURES, features_table)
    table = with_customer_value(ctx, features_table, as_of)
    store = ModelStore(ctx.warehouse)
    if ctx.mode == "score":
        saved = store.latest()
        result = segmentation.score(saved, table, seg_cfg)
        ctx.progress.say(
            f"[segment] scoring the features as of {as_of} with model {saved.run_id} "
            f"(fitted as of {saved.as_of})"
        )
        summary.detail.update(mode="score", model_run=saved.run_id)
    else:
        previous = store.latest() if store.latest_metadata() is not None else None
        result = segmentation.fit(table, seg_cfg, previous)
        ctx.warehouse.write(T.KMEANS_SELECTION, result.selection, run_id=ctx.run_id)
        folder = store.save(result.saved(ctx.run_id, seg_cfg))
        summary.detail.update(mode="fit", model=folder)
        result.selection.unpersist()
        for line in result.changes:
            ctx.progress.say(f"[segment] {line}")
    try:
        written = ctx.warehouse.write(T.CUSTOMER_SEGMENTS, result.segments, run_id=ctx.run_id)
        ctx.warehouse.write(T.SEGMENT_PROFILES, result.profiles, run_id=ctx.run_id)
        ctx.warehouse.write(T.FEATURE_IMPORTANCE, result.importance, run_id=ctx.run_id)
    finally:
        result.scored.unpersist()
    summary.rows_in = written.rows
    summary.rows_out = written.rows
    summary.detail.update(as_of=as_of.isoformat(), k=result.k)
    for cluster, (name, _) in sorted(result.names.items()):
        ctx.progress.say(f"[segment] segment {cluster}: {name}")
    record_migration(ctx, as_of)


def record_migration(ctx: JobContext, as_of: date) -> None:
    """
    Append this run's ``customer_segments`` to ``segment_history``, rewrite
    ``segment_migration`` from it, and print the move into ``as_of``.
    """
    segments = ctx.warehouse.read(T.CUSTOMER_SEGMENTS).withColumn(C.RUN_ID, F.lit(ctx.run_id))
    ctx.warehouse.write(T.SEGMENT_HISTORY, segments, mode="append", run_id=ctx.run_id)
    moves = migration.consecutive_migrations(ctx.warehouse.read(T.SEGMENT_HISTORY))
    if moves is None:
        return
    ctx.warehouse.write(T.SEGMENT_MIGRATION, moves, run_id=ctx.run_id)
    into = ctx.warehouse.read(T.SEGMENT_MIGRATION).filter(F.col(C.TO_AS_OF) == F.lit(as_of))
    rows = into.collect()  # at most (segments + 1) ** 2 rows
    if rows:
        for line in migration.format_matrix(rows):
            ctx.progress.say(f"[segment] {line}")


def run_recommend(ctx: JobContext, summary: StageSummary) -> None:
    """
    order_lines, customer_segments -> segment_top_products, basket_rules,
    customer_recommendations, as of the segments' date (``--as-of`` must equal it).
    """
    cfg = ctx.config
    lines = read_input(ctx, T.ORDER_LINES)
    segments = read_input(ctx, T.CUSTOMER_SEGMENTS)
    period = Period.of(cfg, table_as_of(ctx, T.CUSTOMER_SEGMENTS, segments))
    persisted = materialize.Persisted(cut_lineage=True)
    try:
        recommender = Recommender.assemble(lines, segments, period, cfg.recommend, persisted.keep)
        top = ctx.warehouse.write(
            T.SEGMENT_TOP_PRODUCTS, recommender.top_products(), run_id=ctx.run_id
        )
        ctx.progress.say(f"[recommend] top {cfg.recommend.top_n} lists: {top.rows} rows")
        rule_commit = ctx.warehouse.write(
            T.BASKET_RULES, recommender.basket_rules(), run_id=ctx.run_id
        )
        ctx.progress.say(
            f"[recommend] basket rules (support >= {cfg.recommend.min_support}, confidence >= "
            f"{cfg.recommend.min_confidence}): {rule_commit.rows}"
        )
        customer_lists = recommender.customer_lists(
            segments,
            rules=ctx.warehouse.read(T.BASKET_RULES),
        )
        written = ctx.warehouse.write(T.CUSTOMER_RECOMMENDATIONS, customer_lists, run_id=ctx.run_id)
    finally:
        persisted.release()
    summary.rows_in = ctx.warehouse.row_count(T.CUSTOMER_SEGMENTS)
    summary.rows_out = written.rows
    summary.detail.update(
        as_of=period.as_of.isoformat(), top_product_rows=top.rows, basket_rules=rule_commit.rows
    )


def _evaluation_sample(ctx: JobContext, buyers, persisted: materialize.Persisted):
    """``buyers``, or a fixed sample of about ``recommend.evaluation.max_customers`` of them."""
    limit = ctx.config.recommend.evaluation.max_customers
    total = buyers.count()
    if limit is None or total <= limit:
        ctx.progress.say(f"[evaluate] scoring all {total:,} customers who bought in the test weeks")
        return buyers
    sample = persisted.keep(recommend.customer_sample(buyers, limit / total))
    ctx.progress.say(
        f"[evaluate] scoring a fixed sample of {sample.count():,} of the {total:,} customers who "
        f"bought in the test weeks (recommend.evaluation.max_customers: {limit:,})"
    )
    return sample


def run_evaluate(ctx: JobContext, summary: StageSummary) -> None:
    """
    order_lines, orders -> recommendation_eval: refit features, segments, top lists and basket
    rules on the period before the cutoff, then score every recommender on the purchases of
    the test days that follow (:class:`~customer_analytics.stages.evaluation.EvaluationPlan`).
    """
    cfg = ctx.config
    ev = cfg.recommend.evaluation
    lines = read_input(ctx, T.ORDER_LINES)
    orders = read_input(ctx, T.ORDERS)
    plan = EvaluationPlan.of(Period.of(cfg, resolve_as_of(ctx, orders)), ev)
    ctx.progress.say(f"[evaluate] {plan.describe(ev)}")
    # On disk: with a dozen frames cached in the heap, the lists' aggregations ran out of a 4g
    # heap at 10M transactions.
    persisted = materialize.Persisted(StorageLevel.DISK_ONLY, cut_lineage=True)
    # Without adaptive execution: the lists' plans are deep, and re-planning them after every
    # query stage cost more than it saved (evaluate at 1x: 147 s without, 174 s with).
    with sql_settings(ctx.spark, {"spark.sql.adaptive.enabled": "false"}):
        try:
            saved = ModelStore(ctx.warehouse).latest_metadata()
            seg_cfg = evaluation.refit_settings(cfg.segmentation, saved and int(saved["k"]))
            # the lists need each customer's cluster only: no other feature, no segment name
            single_view = persisted.keep(
                features.customer_features(
                    orders,
                    lines,
                    plan.training,
                    columns=[C.CUSTOMER_ID, C.AS_OF, *seg_cfg.features],
                    **feature_options(cfg),
                )
            )
            fitted = segmentation.refit(single_view, seg_cfg, named=False)
            persisted.adopt(fitted.scored)
            segments = persisted.keep(fitted.segments)
            ctx.progress.say(f"[evaluate] segments refitted before the cutoff: K={fitted.k}")
            test_bought = recommend.purchases(
                plan.tested(lines), exclude_products=cfg.recommend.exclude_products
            )
            buyers = persisted.keep(
                recommend.evaluation_audience(
                    segments, recommend.relevant_products(test_bought, segments)
                )
            )
            audience = _evaluation_sample(ctx, buyers, persisted)
            # only the audience's purchase history is read: the lists and the "new" target
            trained = Recommender.assemble(
                lines, segments, plan.training, cfg.recommend, persisted.keep, history_of=audience
            )
            rules = persisted.keep(trained.basket_rules())
            relevant = {
                "all": persisted.keep(recommend.relevant_products(test_bought, audience)),
                "new": persisted.keep(
                    recommend.relevant_products(
                        test_bought, audience, new_only_given=trained.history
                    )
                ),
            }
            catalogue = trained.names.count()
            lists = trained.evaluation_lists(audience, trained.history, rules, top_n=max(ev.k))
            # Each list becomes one leaf of the scoring plan, which otherwise repeats every list's
            # lineage in each of its branches: planning that tree, or comparing it with the cached
            # plans when they are released, filled a 4g heap even on 14 orders. On disk: the
            # blocks of a local checkpoint stay until the JVM collects the frame, and in the heap
            # they left too little of 4g for the scoring at 10M transactions.
            lists = {
                name: materialize.cut_lineage(df, StorageLevel.DISK_ONLY)
                for name, df in lists.items()
            }
            metrics = recommend.score_recommenders(
                lists, relevant, ks=ev.k, catalogue_size=catalogue
            ).collect()  # one row per recommender, target and K
            order = {name: i for i, name in enumerate(recommend.RECOMMENDERS)}
            results = sorted(
                (tuple(row) for row in metrics),
                key=lambda r: (order.get(r[0], len(order)), recommend.TARGETS.index(r[1]), r[2]),
            )
        finally:
            persisted.release()
    table = ctx.spark.createDataFrame(
        [(*row, plan.cutoff, plan.test_end, ctx.run_id) for row in results],
        recommend.EVALUATION_SCHEMA,
    )
    written = ctx.warehouse.write(T.RECOMMENDATION_EVAL, table, run_id=ctx.run_id)
    for line in recommend.format_evaluation(results):
        ctx.progress.say(line)
    summary.rows_in = max((row[3] for row in results if row[1] == "all"), default=0)
    summary.rows_out = written.rows
    summary.detail.update(cutoff=plan.cutoff.isoformat(), k=fitted.k, catalogue=catalogue)


#: ``report.exports`` name -> the table it exports.
EXPORTED_TABLES = {
    "segments": T.CUSTOMER_SEGMENTS,
    "profiles": T.SEGMENT_PROFILES,
    "top_products": T.SEGMENT_TOP_PRODUCTS,
    "recommendations": T.CUSTOMER_RECOMMENDATIONS,
    "migration": T.SEGMENT_MIGRATION,
}


def report_folder(ctx: JobContext) -> str:
    """``report.path``, or ``<warehouse.path>/_report`` when it is not set."""
    return ctx.config.report.path or join(ctx.warehouse.path, T.REPORT_FOLDER)


def run_report(ctx: JobContext, summary: StageSummary) -> None:
    """
    The gold tables -> ``<report.path>/report.html``, ``charts/*.png`` and ``exports/*.csv``,
    as of the segments' date. Only summaries of the tables reach the driver
    (:class:`~customer_analytics.stages.report.data.ReportData`); the CSV exports are written by Spark.
    """
    from customer_analytics.io.exports import CsvExport
    from customer_analytics.stages.report import charts
    from customer_analytics.stages.report import (
        html as report_html,  # matplotlib: only this stage draws
    )
    from customer_analytics.stages.report.data import ReportData

    settings = ctx.config.report
    profiles = read_input(ctx, T.SEGMENT_PROFILES)
    as_of = table_as_of(ctx, T.SEGMENT_PROFILES, profiles)

    def optional(name: str):
        return ctx.warehouse.read(name) if ctx.warehouse.exists(name) else None

    started = time.perf_counter()
    data = ReportData.collect(
        profiles,
        as_of=as_of,
        kmeans_selection=optional(T.KMEANS_SELECTION),
        customer_features=optional(T.CUSTOMER_FEATURES),
        monthly_sales=optional(T.MONTHLY_SALES),
        segment_top_products=optional(T.SEGMENT_TOP_PRODUCTS),
        recommendation_eval=optional(T.RECOMMENDATION_EVAL),
        customer_clv=optional(T.CUSTOMER_CLV),
        customer_segments=optional(T.CUSTOMER_SEGMENTS),
        segment_migration=optional(T.SEGMENT_MIGRATION),
        ingest_reconciliation=optional(T.INGEST_RECONCILIATION),
    )
    ctx.progress.say(f"[report] figures summarised in {time.perf_counter() - started:.1f} s")
    folder = report_folder(ctx)
    fs = FileSystem.for_session(ctx.spark)
    started = time.perf_counter()
    drawn = charts.draw(data, products_per_segment=settings.card_products)
    fs.delete(join(folder, "charts"))  # no chart of an earlier report outlives it
    for chart in drawn:
        fs.write_bytes(join(folder, "charts", chart.file_name), chart.png)
    ctx.progress.say(
        f"[report] {len(drawn)} charts drawn in {time.perf_counter() - started:.1f} s: "
        f"{join(folder, 'charts')}"
    )
    fs.delete(join(folder, "exports"))
    export = CsvExport(fs, join(folder, "exports"))
    exported = []
    for name in settings.exports:
        table = EXPORTED_TABLES[name]
        if not ctx.warehouse.exists(table):
            ctx.progress.say(f"[report] no {name}.csv: the warehouse has no table {table!r}")
            continue
        started = time.perf_counter()
        export.write(name, ctx.warehouse.read(table))
        exported.append(f"{name}.csv")
        ctx.progress.say(f"[report] exports/{name}.csv in {time.perf_counter() - started:.1f} s")
    facts = report_html.RunFacts(
        run_id=ctx.run_id,
        generated_at=datetime.now(UTC),
        warehouse=fs.qualified(ctx.warehouse.path),
        exports=exported,
    )
    page = join(folder, "report.html")
    fs.write_text(
        page, report_html.render(data, drawn, facts, products_per_card=settings.card_products)
    )
    ctx.report_file = fs.qualified(page)
    ctx.progress.say(f"[report] {ctx.report_file}")
    summary.rows_in = int(data.segments[C.SIZE].sum())
    summary.rows_out = len(drawn) + len(exported) + 1
    summary.detail.update(as_of=as_of.isoformat(), charts=len(drawn), exports=len(exported))


def run_vacuum(ctx: JobContext, summary: StageSummary) -> None:
    """
    Every table of the warehouse: delete the files no current version uses that are older than
    ``warehouse.vacuum_retention_hours`` (a killed or losing writer's, and replaced versions');
    then the folders a killed run left beside the tables, once as old: unfinished model saves
    and a cluster run's checkpoints.
    """
    retention = ctx.config.warehouse.vacuum_retention_hours
    names = ctx.warehouse.table_names()
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
    fs = FileSystem.for_session(ctx.spark)
    checkpoints = join(ctx.warehouse.path, T.CHECKPOINTS_FOLDER)
    for run in fs.list_dirs(checkpoints):  # a finished run removes its own
        if time.time() - fs.last_modified(join(checkpoints, run)) > retention * 3600:
            fs.delete(join(checkpoints, run))
            folders.append(f"{T.CHECKPOINTS_FOLDER}/{run}")
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
    ),
    "evaluate": Job(
        "evaluate",
        "score the recommenders against the global most-popular list on a time split "
        "(recommend.evaluation): recommendation_eval",
        run_evaluate,
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
        "the model saves and checkpoints killed runs left",
        run_vacuum,
    ),
}

#: The stages ``pipeline`` runs, in order; only stages that are built are listed.
PIPELINE: tuple[str, ...] = (
    "ingest",
    "features",
    "clv",
    "segment",
    "recommend",
    "evaluate",
    "report",
)
