"""
The evaluation of the recommenders (``recommend.evaluation``): where the time split falls,
which days are tested, which segmentation is refitted on the training period, and the whole
run of :func:`evaluate_recommenders`. The lists compared are in
:mod:`customer_analytics.stages.recommenders`, the metrics in
:mod:`customer_analytics.stages.ranking_metrics`.

The test days are ``cutoff`` .. ``cutoff + test_weeks - 1 day``, never past the run's
``as_of``: an evaluation as of a past date reads nothing after it, whatever the cutoff. The
training period is the run's period ending the day before the cutoff (same lookback and
excluded periods); excluded periods are left out of the test days too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from customer_analytics.config.schema import Config, EvaluationConfig, SegmentationConfig
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.stages import features, segmentation
from customer_analytics.stages.period import Period
from customer_analytics.stages.ranking_metrics import METRICS_SCHEMA, score_recommenders
from customer_analytics.stages.recommend import SegmentPurchases, purchase_history, purchases
from customer_analytics.stages.recommenders import RECOMMENDERS, evaluation_lists

#: ``all``: every product bought in the test weeks; ``new``: those not bought before the cutoff.
TARGETS = ("all", "new")

#: Table ``recommendation_eval``: one row per recommender, target and K.
EVALUATION_SCHEMA = T.StructType(
    [
        T.StructField(C.RECOMMENDER, T.StringType(), False),
        T.StructField(C.TARGET, T.StringType(), False),
        *METRICS_SCHEMA.fields,
        T.StructField(C.CUTOFF_DATE, T.DateType(), False),
        T.StructField(C.TEST_END_DATE, T.DateType(), False),
        T.StructField(C.RUN_ID, T.StringType(), False),
    ]
)


@dataclass(frozen=True)
class EvaluationPlan:
    """
    Attributes
    ----------
    cutoff : date
        The first test day.
    test_end : date
        The last test day: ``cutoff + test_weeks`` weeks - 1 day, or ``as_of`` when earlier.
    training : Period
        The run's period ending the day before ``cutoff``.
    testing : Period
        The test days, with the run's excluded periods.
    """

    cutoff: date
    test_end: date
    training: Period
    testing: Period

    @classmethod
    def of(cls, period: Period, settings: EvaluationConfig) -> EvaluationPlan:
        """
        The plan of a run: ``settings.cutoff``, else ``test_weeks`` before the day after
        ``period.as_of``.

        Raises
        ------
        InputError
            When the cutoff is after ``as_of``: there would be nothing to test on.
        """
        as_of = period.as_of
        cutoff = settings.cutoff or as_of + timedelta(days=1) - timedelta(weeks=settings.test_weeks)
        if cutoff > as_of:
            raise InputError(
                f"recommend.evaluation.cutoff {cutoff} is after the last day observed ({as_of}): "
                "there is nothing to test on"
            )
        test_end = min(cutoff + timedelta(weeks=settings.test_weeks, days=-1), as_of)
        testing = Period(
            test_end,
            lookback_days=(test_end - cutoff).days + 1,
            exclude_periods=period.exclude_periods,
        )
        return cls(cutoff, test_end, period.ending(cutoff - timedelta(days=1)), testing)

    def tested(self, df: DataFrame) -> DataFrame:
        """Rows of ``df`` (needs ``order_date``) on the test days."""
        return self.testing.modelled(df)

    def describe(self, settings: EvaluationConfig) -> str:
        line = f"train up to {self.training.as_of}, test {self.cutoff}..{self.test_end}"
        full_end = self.cutoff + timedelta(weeks=settings.test_weeks, days=-1)
        if self.test_end < full_end:
            line += f" (cut at as_of; {settings.test_weeks} weeks would end {full_end})"
        return line


def refit_settings(seg_cfg: SegmentationConfig, saved_k: int | None) -> SegmentationConfig:
    """
    The segmentation the evaluation refits on the training period: ``segmentation.k`` if set,
    else ``saved_k`` (the K of the latest saved model, so that it measures the recommenders,
    not a new choice of K), else the configured sweep.
    """
    if seg_cfg.k is not None or saved_k is None:
        return seg_cfg
    return seg_cfg.model_copy(update={"k": int(saved_k)})


def too_short(orders: DataFrame, plan: EvaluationPlan, seg_cfg: SegmentationConfig) -> str | None:
    """
    Why the evaluation cannot refit on ``plan.training``: fewer members ordered in it than the
    refitted segmentation (``seg_cfg``, :func:`refit_settings`) needs; None otherwise. One
    aggregation of ``orders``.
    """
    members = plan.training.modelled(orders).filter(F.col(C.CUSTOMER_ID).isNotNull())
    customers = members.agg(F.countDistinct(C.CUSTOMER_ID)).first()[0]
    needed = segmentation.customers_needed(seg_cfg)
    if customers >= needed:
        return None
    return (
        f"the evaluation trains on the orders up to {plan.training.as_of}, and {customers} "
        f"customer(s) ordered then; its segmentation needs at least {needed}: the source is "
        "too short for recommend.evaluation.test_weeks"
    )


@dataclass(frozen=True)
class EvaluationResult:
    """
    What :func:`evaluate_recommenders` measured: one tuple per recommender, target and K, in
    the order of :data:`RECOMMENDERS` (``recommender``, ``target``, ``k``,
    ``customers`` and the metrics of :data:`EVALUATION_SCHEMA`), and the figures of
    the refit.
    """

    rows: list[tuple]
    k: int
    catalogue: int

    def table(self, spark, plan: EvaluationPlan, run_id: str) -> DataFrame:
        """Table ``recommendation_eval``: the rows with the cutoff, the test end and the run."""
        rows = [(*row, plan.cutoff, plan.test_end, run_id) for row in self.rows]
        return spark.createDataFrame(rows, EVALUATION_SCHEMA)

    @property
    def customers(self) -> int:
        """The customers scored (those with a purchase in the test days, or their sample)."""
        return max((row[3] for row in self.rows if row[1] == "all"), default=0)


def evaluate_recommenders(
    order_lines: DataFrame,
    orders: DataFrame,
    plan: EvaluationPlan,
    cfg: Config,
    *,
    saved_k: int | None,
    keep: Callable[[DataFrame], DataFrame],
    say: Callable[[str], None],
) -> EvaluationResult:
    """
    Refit features, segments, top lists and basket rules on ``plan.training``, then score
    every recommender on the purchases of the test days against the global most-popular list.

    Parameters
    ----------
    order_lines, orders : DataFrame
        The silver tables.
    plan : EvaluationPlan
        The time split.
    cfg : Config
        ``recommend`` (lists, rules and ``evaluation``), ``segmentation`` and ``features``.
    saved_k : int, optional
        The K of the latest saved segmentation model, which the refit keeps.
    keep : callable
        Materialises a frame read more than once and returns it (the caller releases them);
        it must also cut the frame's lineage (a checkpoint), as the lists are kept with it.
    say : callable
        Prints one progress line.

    Returns
    -------
    EvaluationResult
    """
    ev = cfg.recommend.evaluation
    seg_cfg = refit_settings(cfg.segmentation, saved_k)
    # the lists need each customer's cluster only: no other feature, no segment name
    single_view = keep(
        features.customer_features(
            orders,
            order_lines,
            plan.training,
            columns=[C.CUSTOMER_ID, C.AS_OF, *seg_cfg.features],
            expected_lifetime_years=cfg.features.expected_lifetime_years,
            time_unit=cfg.clv.period,
        )
    )
    fitted = segmentation.refit(single_view, seg_cfg, named=False, keep=keep)
    segments = keep(fitted.segments)
    say(f"[evaluate] segments refitted before the cutoff: K={fitted.k}")
    test_bought = purchases(
        plan.tested(order_lines), exclude_products=cfg.recommend.exclude_products
    )
    buyers = keep(evaluation_audience(segments, relevant_products(test_bought, segments)))
    audience = _audience(buyers, ev.max_customers, keep, say)
    # only the audience's purchase history is read: the lists and the "new" target
    trained = SegmentPurchases.assemble(
        order_lines, segments, plan.training, cfg.recommend, keep, history_of=audience
    ).require_lists()
    rules = keep(trained.basket_rules()) if cfg.recommend.use_basket_rules else None
    relevant = {
        "all": keep(relevant_products(test_bought, audience)),
        "new": keep(relevant_products(test_bought, audience, new_only_given=trained.history)),
    }
    catalogue = trained.names.count()
    longest = max(ev.k)
    lists = evaluation_lists(
        trained.ranking,
        audience,
        trained.history,
        trained.names,
        rules,
        top_n=longest,
        candidates=max(cfg.recommend.candidates, longest),
    )
    # Each list becomes one leaf of the scoring plan, which otherwise repeats every list's
    # lineage in each of its branches: planning that tree, or comparing it with the cached
    # plans when they are released, filled a 4g heap even on 14 orders.
    lists = {name: keep(df) for name, df in lists.items()}
    metrics = score_recommenders(
        lists, relevant, ks=ev.k, catalogue_size=catalogue
    ).collect()  # one row per recommender, target and K
    order = {name: i for i, name in enumerate(RECOMMENDERS)}
    rows = sorted(
        (tuple(row) for row in metrics),
        key=lambda r: (order.get(r[0], len(order)), TARGETS.index(r[1]), r[2]),
    )
    return EvaluationResult(rows, fitted.k, catalogue)


def _audience(buyers: DataFrame, limit: int | None, keep, say) -> DataFrame:
    """``buyers``, or a fixed sample of about ``limit`` of them."""
    total = buyers.count()
    if limit is None or total <= limit:
        say(f"[evaluate] scoring all {total:,} customers who bought in the test weeks")
        return buyers
    sample = keep(customer_sample(buyers, limit / total))
    say(
        f"[evaluate] scoring a fixed sample of {sample.count():,} of the {total:,} customers who "
        f"bought in the test weeks (recommend.evaluation.max_customers: {limit:,})"
    )
    return sample


def relevant_products(
    test_bought: DataFrame, population: DataFrame, *, new_only_given: DataFrame | None = None
) -> DataFrame:
    """
    What the evaluation counts as a hit: distinct (``customer_id``, ``product_id``) bought in
    the test weeks by the customers of ``population`` (needs ``customer_id``); with
    ``new_only_given`` (a :func:`purchase_history` of the training period), only products the
    customer had not bought before.
    """
    relevant = purchase_history(test_bought).join(
        population.select(C.CUSTOMER_ID), C.CUSTOMER_ID, "left_semi"
    )
    if new_only_given is not None:
        relevant = relevant.join(new_only_given, [C.CUSTOMER_ID, C.PRODUCT_ID], "left_anti")
    return relevant


def evaluation_audience(segments: DataFrame, relevant: DataFrame) -> DataFrame:
    """
    The customers of ``segments`` (``customer_id``, ``cluster``) that an evaluation scores:
    those with a row in ``relevant`` (:func:`relevant_products` of every product bought in the
    test weeks). :func:`ranking_metrics` scores only them, so lists for anybody else are work
    for nothing: most customers buy nothing in a few test weeks.
    """
    return segments.select(C.CUSTOMER_ID, C.CLUSTER).join(
        relevant.select(C.CUSTOMER_ID), C.CUSTOMER_ID, "left_semi"
    )


def customer_sample(df: DataFrame, fraction: float) -> DataFrame:
    """
    The rows of ``df`` (needs ``customer_id``) of about ``fraction`` of its customers, chosen
    by a hash of the customer id: the same customers whatever the partitioning or the run, and
    all rows of a chosen customer.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    buckets = 1_000_000
    bucket = F.pmod(F.xxhash64(C.CUSTOMER_ID), F.lit(buckets))
    return df.filter(bucket < F.lit(int(round(fraction * buckets))))
