"""
The jobs: each reads its inputs from the warehouse (or the source), calls the library and
writes its tables. ``PIPELINE`` is the order ``customer-analytics pipeline`` runs them in.

A job is a function of a :class:`JobContext` that fills the stage summary it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from customer_analytics import columns as C
from customer_analytics import features, ingest, recommend, segmentation
from customer_analytics.config import Config, SegmentationConfig
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
SEGMENT_TOP_PRODUCTS = "segment_top_products"
CUSTOMER_RECOMMENDATIONS = "customer_recommendations"
BASKET_RULES = "basket_rules"
RECOMMENDATION_EVAL = "recommendation_eval"
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


def feature_options(cfg: Config) -> dict:
    """The keyword arguments of ``features.customer_features`` that come from configuration."""
    return dict(
        lookback_days=cfg.features.lookback_days,
        exclude_periods=cfg.source.exclude_periods,
        expected_lifetime_years=cfg.features.expected_lifetime_years,
        period=cfg.clv.period,
    )


def run_features(ctx: JobContext, summary: StageSummary) -> None:
    """orders, order_lines, customers -> customer_features, monthly_sales."""
    cfg = ctx.config
    orders = read_input(ctx, ORDERS)
    lines = read_input(ctx, ORDER_LINES)
    customer_table = read_input(ctx, CUSTOMERS)
    as_of = resolve_as_of(ctx, orders)
    base = features.base_customer_features(
        orders, lines, customer_table, as_of=as_of, **feature_options(cfg)
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


class Persisted:
    """DataFrames a job reads more than once: ``keep(df)`` persists one, ``release()`` all."""

    def __init__(self) -> None:
        self._frames = []

    def keep(self, df):
        self._frames.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return self._frames[-1]

    def adopt(self, df):
        """Track a frame persisted elsewhere (e.g. ``SegmentationResult.scored``)."""
        self._frames.append(df)
        return df

    def release(self) -> None:
        for df in self._frames:
            df.unpersist()
        self._frames.clear()


def _purchases_up_to(ctx: JobContext, lines, as_of: date):
    """Purchases up to ``as_of``; none at all is an input error (e.g. a source without products)."""
    bought = recommend.purchases(
        features.in_window(lines, as_of=as_of),
        exclude_products=ctx.config.recommend.exclude_products,
    )
    if bought.limit(1).count() == 0:
        raise InputError(
            f"order_lines has no purchases with a product up to {as_of}: recommendations need "
            "product lines (a source of kind 'transactions' without product_id has none)"
        )
    return bought


def run_recommend(ctx: JobContext, summary: StageSummary) -> None:
    """
    order_lines, customer_segments -> segment_top_products, basket_rules,
    customer_recommendations, as of ``--as-of`` (default: the last order date).
    """
    cfg = ctx.config.recommend
    lines = read_input(ctx, ORDER_LINES)
    segments = read_input(ctx, CUSTOMER_SEGMENTS)
    as_of = resolve_as_of(ctx, lines)
    persisted = Persisted()
    try:
        bought = persisted.keep(_purchases_up_to(ctx, lines, as_of))
        recent = recommend.recent_purchases(
            bought,
            as_of=as_of,
            window_months=cfg.window_months,
            exclude_periods=ctx.config.source.exclude_periods,
        )
        ranking = persisted.keep(recommend.product_ranking(recent, segments))
        if ranking.limit(1).count() == 0:
            raise InputError(
                f"no purchases by segmented customers in the {cfg.window_months} month(s) up to "
                f"{as_of}: check --as-of, and run segment on features of the same data"
            )
        names = persisted.keep(recommend.product_names(bought))
        top = ctx.warehouse.write(
            SEGMENT_TOP_PRODUCTS,
            recommend.segment_top_products(ranking, names, top_n=cfg.top_n),
            run_id=ctx.run_id,
        )
        ctx.progress.say(f"[recommend] top {cfg.top_n} lists: {top.rows} rows")
        rules = recommend.basket_rules(
            recent, min_support=cfg.min_support, min_confidence=cfg.min_confidence
        )
        rule_commit = ctx.warehouse.write(BASKET_RULES, rules, run_id=ctx.run_id)
        ctx.progress.say(
            f"[recommend] basket rules (support >= {cfg.min_support}, confidence >= "
            f"{cfg.min_confidence}): {rule_commit.rows}"
        )
        customer_lists = recommend.customer_recommendations(
            ranking,
            segments,
            persisted.keep(recommend.purchase_history(bought)),  # read by 3-4 joins
            names,
            top_n=cfg.top_n,
            candidates=cfg.candidates,
            rules=ctx.warehouse.read(BASKET_RULES) if cfg.use_basket_rules else None,
        )
        written = ctx.warehouse.write(CUSTOMER_RECOMMENDATIONS, customer_lists, run_id=ctx.run_id)
    finally:
        persisted.release()
    summary.rows_in = ctx.warehouse.row_count(CUSTOMER_SEGMENTS)
    summary.rows_out = written.rows
    summary.detail.update(
        as_of=as_of.isoformat(), top_product_rows=top.rows, basket_rules=rule_commit.rows
    )


def evaluation_segmentation(ctx: JobContext) -> SegmentationConfig:
    """
    The segmentation the evaluation refits on the training period: ``segmentation.k`` if set,
    else the K of the latest saved model (so it measures the recommenders, not a new choice of
    K), else the configured sweep.
    """
    seg_cfg = ctx.config.segmentation
    if seg_cfg.k is not None:
        return seg_cfg
    try:
        _, metadata = segmentation.load_latest_model(ctx.warehouse.path)
    except InputError:
        return seg_cfg
    return seg_cfg.model_copy(update={"k": int(metadata["k"])})


def evaluation_cutoff(ctx: JobContext, as_of: date) -> date:
    """``recommend.evaluation.cutoff``, else ``test_weeks`` before the day after ``as_of``."""
    ev = ctx.config.recommend.evaluation
    cutoff = ev.cutoff or as_of + timedelta(days=1) - timedelta(weeks=ev.test_weeks)
    if cutoff > as_of:
        raise InputError(
            f"recommend.evaluation.cutoff {cutoff} is after the last day observed ({as_of}): "
            "there is nothing to test on"
        )
    return cutoff


def _evaluation_sample(ctx: JobContext, buyers, persisted: Persisted):
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
    order_lines, orders, customers -> recommendation_eval: refit features, segments, top lists
    and basket rules on the orders before the cutoff, then score every recommender on the
    purchases of the ``test_weeks`` that follow.
    """
    cfg = ctx.config
    rec_cfg, ev = cfg.recommend, cfg.recommend.evaluation
    lines = read_input(ctx, ORDER_LINES)
    orders = read_input(ctx, ORDERS)
    customer_table = read_input(ctx, CUSTOMERS)
    as_of = resolve_as_of(ctx, orders)
    cutoff = evaluation_cutoff(ctx, as_of)
    train_end = cutoff - timedelta(days=1)
    test_end = cutoff + timedelta(weeks=ev.test_weeks) - timedelta(days=1)
    ctx.progress.say(
        f"[evaluate] train up to {train_end}, test {cutoff}..{test_end}"
        + (f" (data ends {as_of})" if test_end > as_of else "")
    )
    train_orders, _ = recommend.split_at(orders, cutoff=cutoff, test_weeks=ev.test_weeks)
    train_lines, test_lines = recommend.split_at(lines, cutoff=cutoff, test_weeks=ev.test_weeks)
    persisted = Persisted()
    try:
        single_view = persisted.keep(
            features.customer_features(
                train_orders, train_lines, customer_table, as_of=train_end, **feature_options(cfg)
            )
        )
        seg_cfg = evaluation_segmentation(ctx)
        fitted = segmentation.refit(single_view, seg_cfg)
        persisted.adopt(fitted.scored)
        segments = persisted.keep(fitted.segments)
        ctx.progress.say(f"[evaluate] segments refitted before the cutoff: K={fitted.k}")
        bought = persisted.keep(_purchases_up_to(ctx, train_lines, train_end))
        history = persisted.keep(recommend.purchase_history(bought))
        names = persisted.keep(recommend.product_names(bought))
        recent = recommend.recent_purchases(
            bought,
            as_of=train_end,
            window_months=rec_cfg.window_months,
            exclude_periods=cfg.source.exclude_periods,
        )
        ranking = persisted.keep(recommend.product_ranking(recent, segments))
        rules = persisted.keep(
            recommend.basket_rules(
                recent, min_support=rec_cfg.min_support, min_confidence=rec_cfg.min_confidence
            )
        )
        test_bought = recommend.purchases(test_lines, exclude_products=rec_cfg.exclude_products)
        buyers = persisted.keep(
            recommend.evaluation_audience(
                segments, recommend.relevant_products(test_bought, segments)
            )
        )
        audience = _evaluation_sample(ctx, buyers, persisted)
        relevant = {
            "all": persisted.keep(recommend.relevant_products(test_bought, audience)),
            "new": persisted.keep(
                recommend.relevant_products(test_bought, audience, new_only_given=history)
            ),
        }
        catalogue = names.count()
        lists = recommend.evaluation_lists(
            ranking,
            audience,
            persisted.keep(history.join(audience, C.CUSTOMER_ID, "left_semi")),
            names,
            rules,
            top_n=max(ev.k),
            candidates=max(rec_cfg.candidates, max(ev.k)),
        )
        # Each list becomes one leaf of the scoring plan, which otherwise repeats every list's
        # lineage in each of its branches: planning that tree, or comparing it with the cached
        # plans when they are released, filled a 4g heap even on 14 orders.
        lists = {name: df.localCheckpoint() for name, df in lists.items()}
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
        [(*row, cutoff, test_end, ctx.run_id) for row in results], recommend.EVALUATION_SCHEMA
    )
    written = ctx.warehouse.write(RECOMMENDATION_EVAL, table, run_id=ctx.run_id)
    for line in recommend.format_evaluation(results):
        ctx.progress.say(line)
    summary.rows_in = max((row[3] for row in results if row[1] == "all"), default=0)
    summary.rows_out = written.rows
    summary.detail.update(cutoff=cutoff.isoformat(), k=fitted.k, catalogue=catalogue)


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
}

#: The stages ``pipeline`` runs, in order; only stages that are built are listed.
PIPELINE: tuple[str, ...] = ("ingest", "features", "segment", "recommend", "evaluate")
