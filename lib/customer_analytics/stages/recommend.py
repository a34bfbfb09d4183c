"""
Product recommendations (SPEC section 6): what each segment buys lately, what to offer each
customer next, and which products go together.

Purchases
    Lines of ``order_lines`` that are not returns, with a positive quantity and a product
    (:func:`purchases`). Returns and corrections never count as buying.

Top lists (:func:`product_ranking`, :func:`segment_top_products`)
    Purchases of segmented customers in the window ``(as_of - window_months, as_of]`` (excluded
    periods left out, :meth:`Period.recent`). Each segment's products are ranked by distinct
    buyers, then quantity, then product id, with ``row_number`` over a window partitioned by
    cluster, so ranks are unique and repeatable. The all-customers list is the same ranking
    over every segmented customer, with ``cluster`` null. ``penetration`` is buyers divided by
    the segment's size (all segmented customers for the all-customers list): the share of the
    segment that bought the product in the window.

Customer lists (:func:`customer_recommendations`)
    A customer's candidates are the first ``candidates`` products of their segment's list,
    scored by penetration. With basket rules, every rule whose antecedent the customer has
    bought in full proposes its consequent, scored by the rule's confidence; a product proposed
    twice keeps its higher score. Whatever the customer bought before (any time up to
    ``as_of``) is removed with a left anti join, and the rest ranked by score. Customers whose
    segment list runs out (fewer than ``top_n`` products left) get the all-customers list after
    it, also without what they bought. Both scores estimate the chance of buying the product,
    so they rank together; the reason column says which one put the product there.

Basket rules (:mod:`customer_analytics.stages.basket_rules`)
    The jobs find them in the purchases of the top lists' window: what goes together lately,
    and a few months of baskets instead of every basket ever.

The evaluation of such lists is :mod:`customer_analytics.stages.evaluation`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from customer_analytics.config.schema import RecommendConfig
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.stages.basket_rules import (
    RULE_SCHEMA,
    basket_rules,
    largest_frequent_basket,
)
from customer_analytics.stages.period import Period

ALL_CUSTOMERS = "All customers"
REASON_SEGMENT = "popular in your segment"
REASON_ALL = "popular with all customers"
REASON_RULE_PREFIX = "often bought with "
#: :func:`product_label` of a product without a name: ``product 1004906``.
PRODUCT_LABEL_PREFIX = "product "

TOP_PRODUCT_COLUMNS = (
    C.CLUSTER,
    C.SEGMENT_NAME,
    C.RANK,
    C.PRODUCT_ID,
    C.PRODUCT_NAME,
    C.BUYERS,
    C.QUANTITY,
    C.REVENUE,
    C.PENETRATION,
)
RECOMMENDATION_COLUMNS = (C.CUSTOMER_ID, C.RANK, C.PRODUCT_ID, C.PRODUCT_NAME, C.SCORE, C.REASON)
#: The columns of ``order_lines`` a :class:`SegmentPurchases` reads.
PURCHASE_COLUMNS = (
    C.SOURCE,
    C.ORDER_ID,
    C.CUSTOMER_ID,
    C.ORDER_DATE,
    C.PRODUCT_ID,
    C.PRODUCT_NAME,
    C.QUANTITY,
    C.LINE_AMOUNT,
)


def purchases(order_lines: DataFrame, *, exclude_products: Iterable[str] = ()) -> DataFrame:
    """
    The lines that count as buying a product.

    Parameters
    ----------
    order_lines : DataFrame
        Needs ``product_id``, ``quantity`` and ``is_return``.
    exclude_products : iterable of str
        Product ids that are not products to recommend (postage, fees, manual adjustments).

    Returns
    -------
    DataFrame
        The rows of ``order_lines`` with a product not in ``exclude_products``,
        ``quantity > 0`` and ``is_return`` false.
    """
    keep = (
        F.col(C.PRODUCT_ID).isNotNull()
        & (F.col(C.QUANTITY) > 0)
        & F.col(C.IS_RETURN).eqNullSafe(F.lit(False))
    )
    excluded = sorted(set(exclude_products))
    if excluded:
        keep &= ~F.col(C.PRODUCT_ID).isin(excluded)
    return order_lines.filter(keep)


def period_purchases(
    order_lines: DataFrame, period: Period, settings: RecommendConfig
) -> DataFrame:
    """:func:`purchases` of the modelled ``period``, :data:`PURCHASE_COLUMNS` only."""
    modelled = period.modelled(order_lines)
    bought = purchases(modelled, exclude_products=settings.exclude_products)
    return bought.select(*PURCHASE_COLUMNS)


def missing_products(bought: DataFrame, period: Period | None = None) -> str | None:
    """
    Why no product list can be made from ``bought`` (:func:`period_purchases`, or
    :func:`purchases` of every date without a ``period``), or None when it holds a purchase:
    one one-row read.
    """
    if bought.limit(1).count() > 0:
        return None
    when = period.describe() if period is not None else "on any date"
    return (
        f"order_lines has no purchases with a product ({when}): recommendations "
        "need product lines, and this source has none (a source of kind 'transactions' "
        "needs a product column, source.columns.product_id)"
    )


def purchase_history(bought: DataFrame) -> DataFrame:
    """Distinct (``customer_id``, ``product_id``) pairs of members in ``bought``."""
    return (
        bought.filter(F.col(C.CUSTOMER_ID).isNotNull())
        .select(C.CUSTOMER_ID, C.PRODUCT_ID)
        .distinct()
    )


def product_label(name: Column, product_id: Column) -> Column:
    """
    How a product is shown: its name, or ``product <id>`` where it has none (a null or blank
    name, e.g. a source without a name column).
    """
    return F.coalesce(
        F.when(F.trim(name) != "", name), F.concat(F.lit(PRODUCT_LABEL_PREFIX), product_id)
    )


def product_names(bought: DataFrame) -> DataFrame:
    """
    One name per product: the one most lines carry, ties to the smallest; ``product <id>``
    if none (:func:`product_label`).

    Returns
    -------
    DataFrame
        ``product_id``, ``product_name``, one row per product in ``bought``.
    """
    counted = bought.groupBy(C.PRODUCT_ID, C.PRODUCT_NAME).agg(F.count("*").alias(C.NAME_COUNT))
    order = Window.partitionBy(C.PRODUCT_ID).orderBy(
        F.col(C.PRODUCT_NAME).isNull(), F.desc(C.NAME_COUNT), F.col(C.PRODUCT_NAME)
    )
    return (
        counted.withColumn(C.RANK, F.row_number().over(order))
        .filter(F.col(C.RANK) == 1)
        .select(
            C.PRODUCT_ID,
            product_label(F.col(C.PRODUCT_NAME), F.col(C.PRODUCT_ID)).alias(C.PRODUCT_NAME),
        )
    )


def product_ranking(recent: DataFrame, segments: DataFrame) -> DataFrame:
    """
    Every product bought in ``recent``, ranked per segment and over all segmented customers.

    Parameters
    ----------
    recent : DataFrame
        Purchases in the window (:meth:`Period.recent`); needs ``customer_id``,
        ``product_id``, ``quantity``, ``line_amount``. Lines of customers without a segment
        are not counted.
    segments : DataFrame
        ``customer_segments``: ``customer_id``, ``cluster``, ``segment_name``.

    Returns
    -------
    DataFrame
        ``cluster`` (null for the all-customers list), ``segment_name`` ("All customers" for
        it), ``rank`` (1, 2, ... by buyers desc, quantity desc, product_id), ``product_id``,
        ``buyers``, ``quantity``, ``revenue``, ``penetration`` (buyers / segment size).
    """
    members = segments.select(C.CUSTOMER_ID, C.CLUSTER, C.SEGMENT_NAME)
    sizes = members.groupBy(C.CLUSTER, C.SEGMENT_NAME).agg(F.count("*").alias(C.POPULATION))
    everyone = members.agg(F.count("*").alias(C.POPULATION)).select(
        F.lit(None).cast(T.IntegerType()).alias(C.CLUSTER),
        F.lit(ALL_CUSTOMERS).alias(C.SEGMENT_NAME),
        C.POPULATION,
    )
    bought = recent.join(members, C.CUSTOMER_ID)
    totals = [
        F.countDistinct(C.CUSTOMER_ID).alias(C.BUYERS),
        F.sum(C.QUANTITY).alias(C.QUANTITY),
        F.sum(C.LINE_AMOUNT).alias(C.REVENUE),
    ]
    per_segment = (
        bought.groupBy(C.CLUSTER, C.SEGMENT_NAME, C.PRODUCT_ID)
        .agg(*totals)
        .join(sizes.drop(C.SEGMENT_NAME), C.CLUSTER)
    )
    overall = bought.groupBy(C.PRODUCT_ID).agg(*totals).crossJoin(everyone)
    counted = per_segment.unionByName(overall)
    order = Window.partitionBy(C.CLUSTER).orderBy(
        F.desc(C.BUYERS), F.desc(C.QUANTITY), F.col(C.PRODUCT_ID)
    )
    return counted.select(
        C.CLUSTER,
        C.SEGMENT_NAME,
        F.row_number().over(order).alias(C.RANK),
        C.PRODUCT_ID,
        C.BUYERS,
        C.QUANTITY,
        C.REVENUE,
        (F.col(C.BUYERS) / F.col(C.POPULATION)).alias(C.PENETRATION),
    )


def segment_top_products(ranking: DataFrame, names: DataFrame, *, top_n: int) -> DataFrame:
    """
    The first ``top_n`` of every list in ``ranking`` (:func:`product_ranking`), named.

    Returns
    -------
    DataFrame
        :data:`TOP_PRODUCT_COLUMNS`; ``cluster`` null for the all-customers list.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    return (
        ranking.filter(F.col(C.RANK) <= top_n)
        .join(names, C.PRODUCT_ID, "left")
        .select(*TOP_PRODUCT_COLUMNS)
    )


def _rule_candidates(rules: DataFrame, history: DataFrame, names: DataFrame) -> DataFrame:
    """Per customer, the consequent of every rule whose whole antecedent they bought."""
    named = (
        rules.select(C.ANTECEDENT)
        .distinct()
        .select(C.ANTECEDENT, F.explode(C.ANTECEDENT).alias(C.PRODUCT_ID))
        .join(names, C.PRODUCT_ID, "left")
        .groupBy(C.ANTECEDENT)
        .agg(
            F.array_join(
                F.array_sort(F.collect_list(F.coalesce(C.PRODUCT_NAME, C.PRODUCT_ID))), ", "
            ).alias(C.REASON)
        )
    )
    items = rules.select(
        C.ANTECEDENT,
        C.CONSEQUENT,
        C.CONFIDENCE,
        F.size(C.ANTECEDENT).alias(C.RULE_SIZE),
        F.explode(C.ANTECEDENT).alias(C.PRODUCT_ID),
    )
    fired = (
        history.join(items, C.PRODUCT_ID)
        .groupBy(C.CUSTOMER_ID, C.ANTECEDENT, C.CONSEQUENT, C.CONFIDENCE, C.RULE_SIZE)
        .agg(F.count("*").alias(C.MATCHED))
        .filter(F.col(C.MATCHED) == F.col(C.RULE_SIZE))
    )
    return fired.join(named, C.ANTECEDENT).select(
        C.CUSTOMER_ID,
        F.col(C.CONSEQUENT).alias(C.PRODUCT_ID),
        F.col(C.CONFIDENCE).alias(C.SCORE),
        F.lit(None).cast(T.IntegerType()).alias(C.LIST_RANK),
        F.lit(0).alias(C.PRIORITY),
        F.concat(F.lit(REASON_RULE_PREFIX), F.col(C.REASON)).alias(C.REASON),
    )


def customer_recommendations(
    ranking: DataFrame,
    segments: DataFrame,
    history: DataFrame,
    names: DataFrame,
    *,
    top_n: int,
    candidates: int,
    rules: DataFrame | None = None,
) -> DataFrame:
    """
    Per customer, the ``top_n`` products they have not bought that their segment buys most.

    Parameters
    ----------
    ranking : DataFrame
        :func:`product_ranking`. Its all-customers list (``cluster`` null) fills up the lists
        of customers whose segment list runs out; pass only that list to recommend it to
        everybody.
    segments : DataFrame
        The customers to recommend to: ``customer_id``, ``cluster``.
    history : DataFrame
        What each customer bought before (:func:`purchase_history`): never recommended.
    names : DataFrame
        :func:`product_names`.
    top_n : int
        List length, >= 1.
    candidates : int
        How far down the segment's list to look, >= ``top_n``.
    rules : DataFrame, optional
        :func:`basket_rules`; when given, rules the customer's history fires add and
        re-rank candidates (see the module docstring).

    Returns
    -------
    DataFrame
        :data:`RECOMMENDATION_COLUMNS`: ``rank`` 1..``top_n`` (fewer when the customer has
        bought nearly everything listed), ``score`` (penetration or confidence), ``reason``.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    if candidates < top_n:
        raise ValueError(f"candidates must be >= top_n ({top_n}), got {candidates}")
    members = segments.select(C.CUSTOMER_ID, C.CLUSTER)
    listed = ranking.filter(F.col(C.RANK) <= candidates).select(
        C.CLUSTER, C.RANK, C.PRODUCT_ID, C.PENETRATION
    )
    segment_lists = listed.filter(F.col(C.CLUSTER).isNotNull())
    everyone_list = listed.filter(F.col(C.CLUSTER).isNull()).drop(C.CLUSTER)

    with_skipped = _skipped_ranks(members, segment_lists, history, keys=[C.CLUSTER])
    proposed = _list_heads(
        with_skipped,
        segment_lists,
        keys=[C.CLUSTER],
        top_n=top_n,
        priority=0,
        reason=REASON_SEGMENT,
    )
    if rules is not None:
        fired = _rule_candidates(rules, history, names).join(
            _of_products(history, rules.select(F.col(C.CONSEQUENT).alias(C.PRODUCT_ID))),
            [C.CUSTOMER_ID, C.PRODUCT_ID],
            "left_anti",
        )
        proposed = proposed.unionByName(fired)

    fill = _fill(with_skipped, segment_lists, everyone_list, history, top_n=top_n)
    return _best_first(proposed.unionByName(fill), names, top_n=top_n)


def _fill(
    with_skipped: DataFrame,
    segment_lists: DataFrame,
    everyone_list: DataFrame,
    history: DataFrame,
    *,
    top_n: int,
) -> DataFrame:
    """
    Candidates from the all-customers list for the customers whose segment list, less what
    they bought, is shorter than ``top_n``, less what they bought.
    """
    list_lengths = segment_lists.groupBy(C.CLUSTER).agg(F.count("*").alias(C.LIST_LENGTH))
    short = (
        with_skipped.join(F.broadcast(list_lengths), C.CLUSTER, "left")
        .filter(F.coalesce(C.LIST_LENGTH, F.lit(0)) - F.size(C.SKIPPED_RANKS) < F.lit(top_n))
        .select(C.CUSTOMER_ID)
    )
    return _list_heads(
        _skipped_ranks(short, everyone_list, history, keys=[]),
        everyone_list,
        keys=[],
        top_n=top_n,
        priority=1,
        reason=REASON_ALL,
    )


def _best_first(candidates: DataFrame, names: DataFrame, *, top_n: int) -> DataFrame:
    """
    Each customer's first ``top_n`` ``candidates``, named: a product proposed twice keeps its
    best proposal (the segment list's or a rule's before the all-customers list's, then the
    higher score). One shuffle by customer serves both windows.
    """
    best = Window.partitionBy(C.CUSTOMER_ID, C.PRODUCT_ID).orderBy(
        C.PRIORITY, F.desc(C.SCORE), F.col(C.LIST_RANK).asc_nulls_last(), F.col(C.REASON)
    )
    order = Window.partitionBy(C.CUSTOMER_ID).orderBy(
        C.PRIORITY, F.desc(C.SCORE), F.col(C.LIST_RANK).asc_nulls_last(), C.PRODUCT_ID
    )
    return (
        candidates.repartition(C.CUSTOMER_ID)
        .withColumn(C.RANK, F.row_number().over(best))
        .filter(F.col(C.RANK) == 1)
        .withColumn(C.RANK, F.row_number().over(order))
        .filter(F.col(C.RANK) <= top_n)
        .join(F.broadcast(names), C.PRODUCT_ID, "left")
        .select(*RECOMMENDATION_COLUMNS)
    )


def _of_products(history: DataFrame, products: DataFrame) -> DataFrame:
    """
    The rows of ``history`` whose product is in ``products`` (a few: list entries or rule
    consequents), found without a shuffle of the history.
    """
    return history.join(F.broadcast(products.distinct()), C.PRODUCT_ID, "left_semi")


def _skipped_ranks(
    customers: DataFrame, lists: DataFrame, history: DataFrame, *, keys: list[str]
) -> DataFrame:
    """
    ``customers`` (``customer_id`` and the ``keys``) with ``_skipped_ranks``: the ranks, in
    their list of ``lists`` (the ``keys``, ``rank``, ``product_id``; one list when ``keys`` is
    empty), of the products they bought (``history``); an empty array when none.
    """
    owned = _of_products(history, lists.select(C.PRODUCT_ID)).join(customers, C.CUSTOMER_ID)
    small = F.broadcast(lists.select(*keys, C.PRODUCT_ID, C.RANK))
    bought = (
        owned.join(small, [*keys, C.PRODUCT_ID])
        .groupBy(C.CUSTOMER_ID)
        .agg(F.collect_list(C.RANK).alias(C.SKIPPED_RANKS))
    )
    return customers.join(bought, C.CUSTOMER_ID, "left").withColumn(
        C.SKIPPED_RANKS, F.coalesce(C.SKIPPED_RANKS, F.array().cast("array<int>"))
    )


def _list_heads(
    with_skipped: DataFrame,
    lists: DataFrame,
    *,
    keys: list[str],
    top_n: int,
    priority: int,
    reason: str,
) -> DataFrame:
    """
    The first ``top_n`` products of each customer's list that they did not buy: the entries
    of ``lists`` whose rank is not skipped and at most ``top_n`` + the number skipped (a few
    more where a skipped rank lies beyond that), as candidates scored by penetration.

    Each customer meets ``top_n`` + their purchases from the list rows instead of the whole
    list, and no join with the purchase history is needed: the skipped ranks travel with the
    customer.
    """
    rank = F.col(C.RANK)
    skipped = F.col(C.SKIPPED_RANKS)
    small = F.broadcast(lists)
    paired = with_skipped.join(small, keys) if keys else with_skipped.crossJoin(small)
    return paired.filter(
        (rank <= F.size(skipped) + F.lit(top_n)) & ~F.array_contains(skipped, rank)
    ).select(
        C.CUSTOMER_ID,
        C.PRODUCT_ID,
        F.col(C.PENETRATION).alias(C.SCORE),
        rank.alias(C.LIST_RANK),
        F.lit(priority).alias(C.PRIORITY),
        F.lit(reason).alias(C.REASON),
    )


@dataclass(frozen=True)
class SegmentPurchases:
    """
    The purchases of one period seen by segment: what every list is built from. ``recommend``
    writes its tables from it, ``evaluate`` builds one on the training period and scores the
    lists of :mod:`customer_analytics.stages.recommenders` built from it.
    Assemble it with :meth:`assemble`; the frames are lazy unless ``keep`` persisted them.

    Attributes
    ----------
    bought : DataFrame
        Purchases (:func:`purchases`) in the modelled period, :data:`PURCHASE_COLUMNS` only.
    history : DataFrame
        :func:`purchase_history` of ``bought`` (of the ``history_of`` customers only, if
        given): never recommended again.
    names : DataFrame
        :func:`product_names` of ``bought``.
    recent : DataFrame
        ``bought`` in the top lists' window (``recommend.window_months``).
    ranking : DataFrame
        :func:`product_ranking` of ``recent`` over the segments.
    settings : RecommendConfig
    period : Period
        The modelled period.
    """

    bought: DataFrame
    history: DataFrame
    names: DataFrame
    recent: DataFrame
    ranking: DataFrame
    settings: RecommendConfig
    period: Period

    @classmethod
    def assemble(
        cls,
        order_lines: DataFrame,
        segments: DataFrame,
        period: Period,
        settings: RecommendConfig,
        keep: Callable[[DataFrame], DataFrame] = lambda df: df,
        *,
        history_of: DataFrame | None = None,
    ) -> SegmentPurchases:
        """
        Parameters
        ----------
        order_lines : DataFrame
            The ``order_lines`` table (any dates: the period selects).
        segments : DataFrame
            ``customer_segments`` of the same period: ``customer_id``, ``cluster``,
            ``segment_name``.
        period : Period
        settings : RecommendConfig
        keep : callable, optional
            Applied to the frames read more than once and costly to compute again
            (``history``, ``names``, ``ranking``), e.g. a job's ``persist``. ``bought`` is
            not kept: a scan of its columns of ``order_lines`` is cheaper than persisting
            millions of lines.
        history_of : DataFrame, optional
            The customers (``customer_id``) whose history will be asked for, when not
            everybody's: ``history`` then holds only theirs (``evaluate`` scores a sample).

        Nothing is read until a frame is (or ``keep`` materialises one);
        :meth:`require_lists` checks there is something to list.
        """
        bought = period_purchases(order_lines, period, settings)
        recent = period.recent(bought, months=settings.window_months)
        ranking = keep(product_ranking(recent, segments))
        owners = bought
        if history_of is not None:
            owners = bought.join(history_of.select(C.CUSTOMER_ID), C.CUSTOMER_ID, "left_semi")
        return cls(
            bought=bought,
            history=keep(purchase_history(owners)),
            names=keep(product_names(bought)),
            recent=recent,
            ranking=ranking,
            settings=settings,
            period=period,
        )

    def require_lists(self) -> SegmentPurchases:
        """
        ``self``, after checking that there is something to list (two one-row reads).

        Raises
        ------
        InputError
            No purchase with a product in the period, or none by a segmented customer in the
            top lists' window.
        """
        missing = missing_products(self.bought, self.period)
        if missing is not None:
            raise InputError(missing)
        if self.ranking.limit(1).count() == 0:
            raise InputError(
                f"no purchases by segmented customers in the {self.settings.window_months} "
                f"month(s) up to {self.period.as_of}: check --as-of, and run segment on features "
                "of the same data"
            )
        return self

    def top_products(self) -> DataFrame:
        """Table ``segment_top_products``: :func:`segment_top_products` at ``top_n``."""
        return segment_top_products(self.ranking, self.names, top_n=self.settings.top_n)

    def basket_rules(self) -> DataFrame:
        """
        Table ``basket_rules``: :func:`basket_rules` over the window's baskets, by the
        configured engine; no rule (an empty frame) when ``use_basket_rules`` is off.

        Raises
        ------
        InputError
            With the ``fpgrowth`` engine, when an order of the window holds more frequent
            products than ``max_basket_items``: checked first, by one aggregation, since
            FPGrowth would then run for hours.
        """
        settings = self.settings
        if not settings.use_basket_rules:
            return self.recent.sparkSession.createDataFrame([], RULE_SCHEMA)
        if settings.rules_engine == "fpgrowth":
            largest = largest_frequent_basket(self.recent, min_support=settings.min_support)
            size = largest.first()[0]
            if size > settings.max_basket_items:
                raise InputError(
                    f"recommend.rules_engine fpgrowth: an order holds {size} products that are "
                    f"each in >= {settings.min_support} of the orders, more than "
                    f"recommend.max_basket_items ({settings.max_basket_items}); FPGrowth would "
                    "enumerate their subsets. Use rules_engine: pairs, or raise min_support"
                )
        return basket_rules(
            self.recent,
            engine=settings.rules_engine,
            min_support=settings.min_support,
            min_confidence=settings.min_confidence,
        )

    def customer_lists(self, customers: DataFrame, *, rules=None) -> DataFrame:
        """
        Table ``customer_recommendations`` for ``customers`` (``customer_id``, ``cluster``):
        :func:`customer_recommendations`, with ``rules`` when ``use_basket_rules`` is set.
        """
        return customer_recommendations(
            self.ranking,
            customers,
            self.history,
            self.names,
            top_n=self.settings.top_n,
            candidates=self.settings.candidates,
            rules=rules if self.settings.use_basket_rules else None,
        )
