"""
Basket rules: which products are bought in the same order, over the distinct products of each
order in the purchases given (members and non-members, single-product orders included, so
support is a share of those orders).

:func:`pair_rules` (the default engine) counts the rules of one product implying another with
joins and aggregations; :func:`fpgrowth_rules` finds rules of any length with MLlib's
``FPGrowth``, whose work a basket of many frequent products makes explode
(:func:`largest_frequent_basket` bounds it).
"""

from __future__ import annotations

from typing import get_args

from pyspark.ml.fpm import FPGrowth
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from customer_analytics.config.schema import RulesEngine
from customer_analytics.core import columns as C

RULE_COLUMNS = (C.ANTECEDENT, C.CONSEQUENT, C.SUPPORT, C.CONFIDENCE, C.LIFT)
RULE_SCHEMA = (
    f"{C.ANTECEDENT} array<string>, {C.CONSEQUENT} string, {C.SUPPORT} double, "
    f"{C.CONFIDENCE} double, {C.LIFT} double"
)
RULES_ENGINES: tuple[str, ...] = get_args(RulesEngine)


def basket_rules(
    bought: DataFrame, *, engine: RulesEngine, min_support: float, min_confidence: float
) -> DataFrame:
    """
    Association rules between products bought in the same order: :func:`pair_rules` or
    :func:`fpgrowth_rules`, as ``engine`` says.

    Parameters
    ----------
    bought : DataFrame
        Purchases (:func:`~customer_analytics.stages.recommend.purchases`); needs
        ``source``, ``order_id``, ``product_id``.
    engine : {"pairs", "fpgrowth"}
    min_support : float
        In (0, 1]: the least share of the orders in ``bought`` that must hold a rule's products.
    min_confidence : float
        In (0, 1]: the least share of orders holding the antecedent that also hold the
        consequent.

    Returns
    -------
    DataFrame
        :data:`RULE_COLUMNS`: ``antecedent`` (sorted array of product ids), ``consequent`` (one
        product id), ``support`` (share of orders with antecedent and consequent),
        ``confidence``, ``lift`` (confidence / the consequent's own support).
    """
    for name, value in (("min_support", min_support), ("min_confidence", min_confidence)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must be in (0, 1], got {value}")
    build = {"pairs": pair_rules, "fpgrowth": fpgrowth_rules}.get(engine)
    if build is None:
        raise ValueError(f"engine must be one of {RULES_ENGINES}, got {engine!r}")
    return build(bought, min_support=min_support, min_confidence=min_confidence)


def pair_rules(bought: DataFrame, *, min_support: float, min_confidence: float) -> DataFrame:
    """
    The rules of one product implying another, counted with joins and aggregations: the
    frequent products (in at least ``min_support`` of the orders), every ordered pair of them
    in one order, and the pairs' order counts. These are exactly the rules of
    :func:`fpgrowth_rules` whose antecedent is one product. The work grows with the square of
    the frequent products in an order, never with the number of their subsets, so no basket
    can make it explode. Inputs and output as :func:`basket_rules`.
    """
    items = _order_items(bought)
    frequent = _frequent_products(items, min_support)
    in_baskets = items.join(frequent.select(C.PRODUCT_ID), C.PRODUCT_ID, "left_semi")
    antecedent = in_baskets.select(C.SOURCE, C.ORDER_ID, F.col(C.PRODUCT_ID).alias(C.ANTECEDENT))
    consequent = in_baskets.select(C.SOURCE, C.ORDER_ID, F.col(C.PRODUCT_ID).alias(C.CONSEQUENT))
    pairs = (
        antecedent.join(consequent, [C.SOURCE, C.ORDER_ID])
        .filter(F.col(C.ANTECEDENT) != F.col(C.CONSEQUENT))
        .groupBy(C.ANTECEDENT, C.CONSEQUENT)
        .agg(F.count("*").alias(C.PAIR_ORDERS))
    )
    of_antecedent = frequent.select(
        F.col(C.PRODUCT_ID).alias(C.ANTECEDENT), F.col(C.ITEM_ORDERS).alias(C.ANTECEDENT_ORDERS)
    )
    of_consequent = frequent.select(
        F.col(C.PRODUCT_ID).alias(C.CONSEQUENT), C.ITEM_ORDERS, C.ALL_ORDERS
    )
    confidence = F.col(C.PAIR_ORDERS) / F.col(C.ANTECEDENT_ORDERS)
    return (
        pairs.join(of_antecedent, C.ANTECEDENT)
        .join(of_consequent, C.CONSEQUENT)
        .filter(F.col(C.PAIR_ORDERS) >= F.col(C.ALL_ORDERS) * F.lit(min_support))
        .filter(confidence >= F.lit(min_confidence))
        .select(
            F.array(C.ANTECEDENT).alias(C.ANTECEDENT),
            C.CONSEQUENT,
            (F.col(C.PAIR_ORDERS) / F.col(C.ALL_ORDERS)).alias(C.SUPPORT),
            confidence.alias(C.CONFIDENCE),
            (confidence / (F.col(C.ITEM_ORDERS) / F.col(C.ALL_ORDERS))).alias(C.LIFT),
        )
    )


def fpgrowth_rules(bought: DataFrame, *, min_support: float, min_confidence: float) -> DataFrame:
    """
    Rules of any length by MLlib ``FPGrowth`` over the distinct products of each order. Its
    work grows with the subsets of the frequent products an order holds: check
    :func:`largest_frequent_basket` first. Inputs and output as :func:`basket_rules`.
    """
    model = FPGrowth(itemsCol=C.BASKET, minSupport=min_support, minConfidence=min_confidence).fit(
        _baskets(bought)
    )
    return model.associationRules.select(
        F.array_sort(C.ANTECEDENT).alias(C.ANTECEDENT),
        F.col(C.CONSEQUENT)[0].alias(C.CONSEQUENT),
        C.SUPPORT,
        C.CONFIDENCE,
        C.LIFT,
    )


def largest_frequent_basket(bought: DataFrame, *, min_support: float) -> DataFrame:
    """
    One row, ``_basket_size``: the most products in one order that are each in at least
    ``min_support`` of the orders of ``bought`` (0 when none is). FPGrowth enumerates the
    subsets of such products, so this bounds its work.
    """
    items = _order_items(bought)
    frequent = _frequent_products(items, min_support)
    per_order = (
        items.join(frequent.select(C.PRODUCT_ID), C.PRODUCT_ID, "left_semi")
        .groupBy(C.SOURCE, C.ORDER_ID)
        .agg(F.count("*").alias(C.BASKET_SIZE))
    )
    return per_order.agg(F.coalesce(F.max(C.BASKET_SIZE), F.lit(0)).alias(C.BASKET_SIZE))


def _order_items(bought: DataFrame) -> DataFrame:
    """Distinct ``source``, ``order_id``, ``product_id``."""
    return bought.select(C.SOURCE, C.ORDER_ID, C.PRODUCT_ID).distinct()


def _frequent_products(items: DataFrame, min_support: float) -> DataFrame:
    """
    The products of :func:`_order_items` ``items`` in at least ``min_support`` of its orders:
    ``product_id``, the orders holding it and all the orders (FPGrowth's rule: a count of at
    least ``min_support`` times the orders).
    """
    orders = items.agg(F.count_distinct(C.SOURCE, C.ORDER_ID).alias(C.ALL_ORDERS))
    return (
        items.groupBy(C.PRODUCT_ID)
        .agg(F.count("*").alias(C.ITEM_ORDERS))
        .crossJoin(orders)
        .filter(F.col(C.ITEM_ORDERS) >= F.col(C.ALL_ORDERS) * F.lit(min_support))
    )


def _baskets(bought: DataFrame) -> DataFrame:
    return bought.groupBy(C.SOURCE, C.ORDER_ID).agg(
        F.array_sort(F.collect_set(C.PRODUCT_ID)).alias(C.BASKET)
    )
