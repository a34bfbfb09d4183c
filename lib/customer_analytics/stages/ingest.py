"""
Ingest: four source shapes into one canonical order model (SPEC section 2).

The flow is one pass over the input:

1. :func:`prepare` maps the source's columns to canonical names, counts exact duplicate rows
   once (rule ``exact_duplicate``; off by default for ``transactions``, whose identical rows
   are repeat purchases: see :meth:`SourceConfig.exact_duplicate_rule`), parses dates with the
   configured formats and, for ``product_json``, parses the JSON array with ``from_json``; it
   tags each input row with the first cleaning rule it fails (``reason``), or none. Every kind
   ends up with the same frame: order-level columns plus ``_items``, an array of its product
   lines (one element for the line sources), so everything after it is kind-independent.
2. :func:`order_lines`, :func:`orders`, :func:`customers`, :func:`quarantine` and
   :mod:`~customer_analytics.stages.reconciliation` derive the tables and the counts from
   that frame (persist it once in the job).

Rules and their reason codes, in the order they are tried (the first that fails is the
reason; ``detail`` says what was wrong):

========================  ==================================================================
``missing_order_id``      order id null or empty (line sources, ``product_json``)
``missing_amount``        order amount (``product_json``, ``transactions``), unit price
                          (``invoice_lines``) or line amount (``basket_lines``) null
``missing_product_json``  ``product_json`` null or empty
``malformed_product_json``  ``product_json`` does not parse as a JSON array of products
``empty_product_json``    it parses to no products
``missing_product``       a product line without a product id
``bad_quantity``          a product line whose quantity is missing or zero
``negative_price``        a product line with a unit price below zero
``bad_date``              the order date matches none of ``source.date_formats``
========================  ==================================================================

Negative quantities are returns or corrections, not errors: such lines are kept and flagged
``is_return`` (as are ``C`` invoices and orders with a negative amount), so the SPEC's
"non-positive quantity" rule quarantines a zero or missing quantity only.
Non-members (null customer id) stay in ``order_lines`` and ``orders``; ``customers`` holds
members only. Excluded periods (``source.exclude_periods``) are applied by the modelling
stages, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from customer_analytics.config.schema import SourceConfig
from customer_analytics.config.source_kinds import DEFAULT_COLUMNS, REQUIRED_COLUMNS, SlashOrder
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.stages.source_values import (
    SLASH_DATE,
    as_double,
    identifier,
    number_problem,
    timestamp,
    trimmed_text,
)

#: Every reason code a quarantined row can carry, in the order the rules are tried.
QUARANTINE_REASONS = (
    "missing_order_id",
    "missing_amount",
    "missing_product_json",
    "malformed_product_json",
    "empty_product_json",
    "missing_product",
    "bad_quantity",
    "negative_price",
    "bad_date",
)
EXCLUSION_RULES = ("exact_duplicate",)

#: The JSON items of ``product_json`` as ``from_json`` reads them.
PRODUCT_JSON_SCHEMA = (
    "array<struct<product_id:string,product_name:string,quantity:double,unit_price:double>>"
)

ORDER_LINES_SCHEMA = StructType(
    [
        StructField(C.SOURCE, StringType(), False),
        StructField(C.ORDER_ID, StringType(), True),
        StructField(C.CUSTOMER_ID, StringType(), True),
        StructField(C.ORDER_TS, TimestampType(), True),
        StructField(C.ORDER_DATE, DateType(), True),
        StructField(C.STORE_ID, StringType(), True),
        StructField(C.COUNTRY, StringType(), True),
        StructField(C.PRODUCT_ID, StringType(), True),
        StructField(C.PRODUCT_NAME, StringType(), True),
        StructField(C.QUANTITY, DoubleType(), True),
        StructField(C.UNIT_PRICE, DoubleType(), True),
        StructField(C.LINE_AMOUNT, DoubleType(), True),
        StructField(C.IS_RETURN, BooleanType(), True),
    ]
)

#: Columns :func:`orders` keeps only ``with_attributes``, for :func:`customers`.
CUSTOMER_ATTRIBUTES = (C.PRICE_SENSITIVITY, C.LIFESTAGE)

#: Working column of :func:`split_repeated`: a hash of a row's keys.
_KEY_HASH = "_key_hash"
#: Working columns of :func:`orders`: one input row's lines summed up.
_ROW_QUANTITY, _ROW_LINE_AMOUNT = "_row_quantity", "_row_line_amount"
_ROW_PRODUCTS, _ROW_ALL_RETURNS = "_row_products", "_row_all_returns"

_ORDER_LEVEL = (
    C.SOURCE,
    C.ORDER_ID,
    C.CUSTOMER_ID,
    C.ORDER_TS,
    C.STORE_ID,
    C.COUNTRY,
    C.ORDER_AMOUNT,
    C.DISCOUNT,
    C.PAID_AMOUNT,
    C.PRICE_SENSITIVITY,
    C.LIFESTAGE,
    C.ORDER_IS_RETURN,
)


@dataclass(frozen=True)
class _Rule:
    code: str
    fails: Column
    detail: Column


# ---------------------------------------------------------------------------------------------
# Preparing the input


#: What a run lacks without each optional column of a kind.
WITHOUT_COLUMN = {
    C.ORDER_ID: "each row is an order",
    C.PRODUCT_NAME: "products are shown by id",
    C.QUANTITY: "quantities are unknown",
    C.PRODUCT_ID: "there are no product lists or basket rules",
    C.COUNTRY: "customers have no country",
    C.STORE_ID: "orders have no store",
    C.DISCOUNT: "orders have no discount",
    C.PAID_AMOUNT: "orders have no paid amount",
    C.PRICE_SENSITIVITY: "customers have no price sensitivity",
    C.LIFESTAGE: "customers have no life stage",
}


def unmapped_columns(raw: DataFrame, source: SourceConfig) -> list[str]:
    """
    One line per optional column the kind reads by default that the input lacks (and the
    configuration does not map): what is lost, and the key that maps it. Columns the
    configuration maps are checked by :func:`check_columns`.
    """
    present = set(raw.columns)
    lines = []
    for canonical, name in DEFAULT_COLUMNS[source.kind].items():
        optional = canonical not in REQUIRED_COLUMNS[source.kind]
        if optional and canonical not in source.columns and name not in present:
            lines.append(
                f"no {name!r} column ({canonical}): {WITHOUT_COLUMN[canonical]}; map it with "
                f"source.columns.{canonical}"
            )
    return lines


def slash_date_figures(
    raw: DataFrame, source: SourceConfig, *, file: Column | None = None
) -> DataFrame | None:
    """
    One row per input file (per ``file``, e.g. ``_metadata.file_path`` of a file source; one
    row for the whole input without it) over its dates written with slashes
    (``05/03/2011 10:00``): ``file``, ``dates`` (how many), ``first`` and ``second`` (the
    largest first and second number), ``low`` and ``high`` (the least and greatest text, as
    samples). Files without such a date have no row. None when the date column is not text.
    """
    mapping = check_columns(raw, source)
    name = mapping.get(C.ORDER_TS) or mapping.get(C.ORDER_DATE)
    if name is None or not isinstance(raw.schema[name].dataType, StringType):
        return None
    text = trimmed_text(F.col(f"`{name}`"))
    slashed = raw.select(
        (F.lit(source.path) if file is None else file).alias("file"), text.alias(C.DATE_TEXT)
    ).filter(F.col(C.DATE_TEXT).rlike(SLASH_DATE))

    def number(position: int) -> Column:
        return F.regexp_extract(C.DATE_TEXT, SLASH_DATE, position).cast("int")

    return slashed.groupBy("file").agg(
        F.count("*").alias("dates"),
        F.max(number(1)).alias("first"),
        F.max(number(2)).alias("second"),
        F.min(C.DATE_TEXT).alias("low"),
        F.max(C.DATE_TEXT).alias("high"),
    )


def slash_date_order(files: list) -> SlashOrder | None:
    """
    How the input's slash dates read, from the collected rows of :func:`slash_date_figures`:
    in each file, a first number above 12 makes them day first, a second one above 12 month
    first. None when there are none.

    Raises
    ------
    InputError
        When a file cannot tell (no number above 12: every date reads both ways), mixes the
        two (both are), or two files disagree: naming the file, two sample values and
        ``source.date_formats``.
    """
    orders: dict[str, str] = {}
    for figures in sorted(files, key=lambda row: row["file"]):
        day_first, month_first = figures["first"] > 12, figures["second"] > 12
        if day_first == month_first:
            why = (
                "read both day first and month first (no number above 12)"
                if not day_first
                else "are written day first in some rows and month first in others"
            )
            raise InputError(_date_problem(figures, why))
        orders.setdefault("day_first" if day_first else "month_first", figures)
    if len(orders) > 1:
        day, month = orders["day_first"], orders["month_first"]
        raise InputError(
            _date_problem(day, f"are day first, and those of {month['file']!r} month first")
        )
    return next(iter(orders), None)


def _date_problem(figures, why: str) -> str:
    return (
        f"source.path: {figures['file']!r}: its {figures['dates']:,} dates with slashes, such "
        f"as {figures['low']!r} and {figures['high']!r}, {why}; set source.date_formats, e.g. "
        '["dd/MM/yyyy HH:mm"] or ["MM/dd/yyyy HH:mm"]'
    )


def check_columns(raw: DataFrame, source: SourceConfig) -> dict[str, str]:
    """
    The canonical -> source column mapping restricted to columns the file has.

    Raises
    ------
    InputError
        When a required column, or a column the configuration maps explicitly, is missing;
        the message names the file's column and the ``source.columns`` key.
    """
    if not raw.columns:
        raise InputError(
            f"source.path: {source.kind} input {source.path!r} has no columns: the file is "
            "empty (not even a header row)"
        )
    mapping = source.column_mapping()
    present = set(raw.columns)
    required = set(REQUIRED_COLUMNS[source.kind]) | set(source.columns)
    if C.ORDER_DATE in source.columns:  # a date column instead of a time (kinds that allow it)
        required.discard(C.ORDER_TS)
        mapping.pop(C.ORDER_TS, None)
    missing = sorted(
        f"{mapping[name]!r} (source.columns.{name})"
        for name in required
        if name in mapping and mapping[name] not in present
    )
    if missing:
        raise InputError(
            f"source.path: {source.kind} input {source.path!r} has no column "
            f"{', '.join(missing)}; its columns are {', '.join(raw.columns)}"
        )
    return {name: col for name, col in mapping.items() if col in present}


def prepare(
    raw: DataFrame, source: SourceConfig, *, slash_order: SlashOrder | None = None
) -> DataFrame:
    """
    Map, deduplicate, parse and tag the input rows.

    Parameters
    ----------
    raw : DataFrame
        The source file as read, with the kind's columns (see ``source_kinds.DEFAULT_COLUMNS``).
    source : SourceConfig
        Kind, column mapping, date formats and rule switches.
    slash_order : {"day_first", "month_first"}, optional
        How dates written with slashes read (:func:`slash_date_order` finds it from the
        values); by default the kind's reference data's. Unused when ``source.date_formats``
        is set.

    Returns
    -------
    DataFrame
        One row per distinct input row (per input row when ``exact_duplicate`` is off): the
        order-level canonical columns (``source``, ``order_id``, ``customer_id``, ``order_ts``,
        ``store_id``, ``country``, ``order_amount``, ``discount``, ``paid_amount``,
        ``price_sensitivity``, ``lifestage``), ``_items`` (array of struct ``product_id``,
        ``product_name``, ``quantity``, ``unit_price``, ``line_amount``), ``reason`` and
        ``detail`` (null when accepted), ``raw_record`` (the input row as JSON, only where
        quarantined), ``_copies`` (how many identical input rows it stands for) and
        ``_line_count``.

    Raises
    ------
    InputError
        A required or explicitly mapped column is missing.
    """
    checked = check_columns(raw, source)
    if slash_order is not None:
        formats = source.effective_date_formats(slash_order)
        source = source.model_copy(update={"date_formats": formats})
    originals = raw.columns
    # Source names may equal canonical ones (customer_id, discount): work on positional names.
    positional = {name: f"{C.SOURCE_PREFIX}{i}" for i, name in enumerate(originals)}
    mapping = {canonical: positional[name] for canonical, name in checked.items()}
    renamed = raw.select(*[F.col(f"`{name}`").alias(positional[name]) for name in originals])
    source_columns = [F.col(positional[name]) for name in originals]
    if source.exact_duplicate_rule():
        # Rows alike but for their product_json text are rare: leaving it out of the key that
        # singles rows out spares reading the largest column twice.
        json_column = mapping.get(C.PRODUCT_JSON)
        rows = count_copies(renamed, [c for c in renamed.columns if c != json_column])
    else:
        rows = renamed.withColumn(C.COPIES, F.lit(1))

    builder = _BUILDERS[source.kind]
    canonical_columns, items, rules = builder(rows, mapping, source)
    tagged = rows.select(
        *source_columns,
        F.col(C.COPIES),
        *[expr.alias(name) for name, expr in canonical_columns.items()],
        items.alias(C.ITEMS),
    )
    enabled = [r for r in rules if getattr(source.rules, r.code)]
    # Each rule is evaluated once into a flag column; reason and detail pick the first flag.
    flagged = tagged.select(
        "*", *[rule.fails.alias(f"{C.RULE_FLAG_PREFIX}{rule.code}") for rule in enabled]
    )
    reason = F.lit(None).cast("string")
    detail = F.lit(None).cast("string")
    for rule in reversed(enabled):
        fails = F.coalesce(F.col(f"{C.RULE_FLAG_PREFIX}{rule.code}"), F.lit(False))
        reason = F.when(fails, F.lit(rule.code)).otherwise(reason)
        detail = F.when(fails, rule.detail).otherwise(detail)
    tagged_reason = flagged.select("*", reason.alias(C.REASON), detail.alias(C.DETAIL))
    raw_json = F.to_json(
        F.struct(*[F.col(positional[name]).alias(name) for name in originals]),
        {"ignoreNullFields": "false"},  # the whole row: a null field is part of the record
    )
    return tagged_reason.select(
        F.lit(source.source_name()).alias(C.SOURCE),
        *[F.col(name) for name in _ORDER_LEVEL if name != C.SOURCE],
        F.col(C.ITEMS),
        F.col(C.REASON),
        F.col(C.DETAIL),
        F.when(F.col(C.REASON).isNotNull(), raw_json).alias(C.RAW_RECORD),
        F.col(C.COPIES),
        F.coalesce(F.size(C.ITEMS), F.lit(0)).cast("long").alias(C.LINE_COUNT),
    )


def count_copies(rows: DataFrame, candidate_keys: list[str] | None = None) -> DataFrame:
    """
    The distinct rows of ``rows`` with ``_copies``, how many identical rows each stands for.

    Grouping every row by all its columns would shuffle whole rows (the JSON text included)
    to find the few that repeat: only the rows that :func:`split_repeated` finds sharing their
    ``candidate_keys`` (default, and when empty: every column) are grouped, by every column,
    so the count is exact whichever columns the candidates are found by.
    """
    once, repeated = split_repeated(rows, candidate_keys or rows.columns)
    grouped = repeated.groupBy(*rows.columns).agg(F.count(F.lit(1)).cast("int").alias(C.COPIES))
    return once.withColumn(C.COPIES, F.lit(1)).unionByName(grouped)


def split_repeated(rows: DataFrame, keys: list[str]) -> tuple[DataFrame, DataFrame]:
    """
    ``rows`` in two: those whose ``keys`` no other row has, and the others.

    One pass counts a 64-bit hash of each row's keys, and the hashes seen more than once are
    broadcast (8 bytes each). A row whose hash is seen once has keys of its own; the second
    frame holds the rows that share their keys and any whose hashes merely collide, so that
    grouping it by the keys themselves is exact.
    """
    hashed = rows.withColumn(_KEY_HASH, F.xxhash64(*[F.col(k) for k in keys]))
    repeats = F.broadcast(hashed.groupBy(_KEY_HASH).count().filter(F.col("count") > 1))
    # An anti and a semi join: the same broadcast for both, which Spark computes once.
    once = hashed.join(repeats.select(_KEY_HASH), _KEY_HASH, "left_anti").select(*rows.columns)
    repeated = hashed.join(repeats.select(_KEY_HASH), _KEY_HASH, "left_semi").select(*rows.columns)
    return once, repeated


def _source_column(rows: DataFrame, mapping: dict[str, str], name: str) -> tuple[Column, object]:
    if name not in mapping:
        return F.lit(None), StringType()
    source_name = mapping[name]
    return F.col(source_name), rows.schema[source_name].dataType


@dataclass(frozen=True)
class _Fields:
    """Source values as typed expressions over the input row (not columns of the frame)."""

    date_text: Column
    product_json: Column
    product_id: Column
    product_name: Column
    quantity: Column
    unit_price: Column
    line_amount: Column
    #: Rule details: what is wrong with each number of the row.
    quantity_problem: Column
    unit_price_problem: Column
    line_amount_problem: Column
    amount_problem: Column


def _order_fields(
    rows: DataFrame, mapping: dict[str, str], source: SourceConfig
) -> tuple[dict[str, Column], _Fields]:
    def text_of(name: str) -> Column:
        return trimmed_text(_source_column(rows, mapping, name)[0]).cast("string")

    def number_of(name: str) -> Column:
        return as_double(*_source_column(rows, mapping, name), source.decimal)

    def problem_of(name: str, otherwise: str) -> Column:
        return number_problem(*_source_column(rows, mapping, name), source.decimal, otherwise)

    ts_name = C.ORDER_DATE if C.ORDER_DATE in mapping and C.ORDER_TS not in mapping else C.ORDER_TS
    ts_column, ts_type = _source_column(rows, mapping, ts_name)
    canonical = {
        C.ORDER_ID: text_of(C.ORDER_ID),
        C.CUSTOMER_ID: identifier(*_source_column(rows, mapping, C.CUSTOMER_ID)).cast("string"),
        C.ORDER_TS: timestamp(ts_column, ts_type, source.effective_date_formats()),
        C.STORE_ID: text_of(C.STORE_ID),
        C.COUNTRY: text_of(C.COUNTRY),
        C.ORDER_AMOUNT: number_of(C.ORDER_AMOUNT),
        C.DISCOUNT: number_of(C.DISCOUNT),
        C.PAID_AMOUNT: number_of(C.PAID_AMOUNT),
        C.PRICE_SENSITIVITY: text_of(C.PRICE_SENSITIVITY),
        C.LIFESTAGE: text_of(C.LIFESTAGE),
    }
    fields = _Fields(
        date_text=ts_column.cast("string"),
        product_json=text_of(C.PRODUCT_JSON),
        product_id=identifier(*_source_column(rows, mapping, C.PRODUCT_ID)).cast("string"),
        product_name=text_of(C.PRODUCT_NAME),
        quantity=number_of(C.QUANTITY),
        unit_price=number_of(C.UNIT_PRICE),
        line_amount=number_of(C.LINE_AMOUNT),
        quantity_problem=problem_of(C.QUANTITY, BAD_QUANTITY),
        unit_price_problem=problem_of(C.UNIT_PRICE, "unit price is null"),
        line_amount_problem=problem_of(C.LINE_AMOUNT, "line amount is null"),
        amount_problem=problem_of(C.ORDER_AMOUNT, "total amount is null"),
    )
    return canonical, fields


def _line_item(product_id: Column, name: Column, quantity: Column, price: Column, amount: Column):
    return F.struct(
        product_id.alias(C.PRODUCT_ID),
        name.alias(C.PRODUCT_NAME),
        quantity.alias(C.QUANTITY),
        price.alias(C.UNIT_PRICE),
        amount.alias(C.LINE_AMOUNT),
    )


def _order_id_rule() -> _Rule:
    return _Rule("missing_order_id", F.col(C.ORDER_ID).isNull(), F.lit("order id is empty"))


BAD_QUANTITY = "a product line has a missing or zero quantity"


def _item_rules(quantity_problem: Column | None = None) -> list[_Rule]:
    """The rules on product lines; ``quantity_problem`` details a one-line row's quantity."""
    # Array functions, not F.exists: a lambda is interpreted once for every product line.
    items = F.col(C.ITEMS)
    lines = F.size(items)

    def some_missing(field: str) -> Column:
        return F.size(F.array_compact(items[field])) < lines

    quantities = items[C.QUANTITY]
    return [
        _Rule(
            "missing_product",  # product ids are trimmed text: empty is null
            some_missing(C.PRODUCT_ID),
            F.lit("a product line has no product id"),
        ),
        _Rule(
            "bad_quantity",
            some_missing(C.QUANTITY) | F.array_contains(quantities, F.lit(0.0)),
            F.lit(BAD_QUANTITY) if quantity_problem is None else quantity_problem,
        ),
        _Rule(
            "negative_price",
            F.array_min(items[C.UNIT_PRICE]) < 0,
            F.lit("a product line has a negative unit price"),
        ),
    ]


def _date_rule(fields: _Fields) -> _Rule:
    return _Rule(
        "bad_date",
        F.col(C.ORDER_TS).isNull(),
        F.concat(F.lit("unparseable date: "), F.coalesce(fields.date_text, F.lit("null"))),
    )


def _product_json(rows: DataFrame, mapping: dict[str, str], source: SourceConfig):
    cols, fields = _order_fields(rows, mapping, source)
    cols[C.ORDER_IS_RETURN] = F.coalesce(cols[C.ORDER_AMOUNT] < 0, F.lit(False))
    parsed = F.from_json(fields.product_json, PRODUCT_JSON_SCHEMA)
    items = F.transform(
        parsed,
        lambda x: _line_item(
            trimmed_text(x[C.PRODUCT_ID]),
            trimmed_text(x[C.PRODUCT_NAME]),
            x[C.QUANTITY],
            x[C.UNIT_PRICE],
            x[C.QUANTITY] * x[C.UNIT_PRICE],
        ),
    )
    rules = [
        _order_id_rule(),
        _Rule("missing_amount", F.col(C.ORDER_AMOUNT).isNull(), fields.amount_problem),
        _Rule("missing_product_json", fields.product_json.isNull(), F.lit("product_json is empty")),
        _Rule(
            "malformed_product_json",
            # A null text is missing, not malformed: switching that rule off lets it through.
            fields.product_json.isNotNull() & F.col(C.ITEMS).isNull(),
            F.concat(F.lit("does not parse: "), F.substring(fields.product_json, 1, 80)),
        ),
        _Rule("empty_product_json", F.size(C.ITEMS) == 0, F.lit("parses to no products")),
        *_item_rules(),
        _date_rule(fields),
    ]
    return cols, items, rules


def _invoice_lines(rows: DataFrame, mapping: dict[str, str], source: SourceConfig):
    cols, f = _order_fields(rows, mapping, source)
    cols[C.ORDER_IS_RETURN] = F.coalesce(F.upper(cols[C.ORDER_ID]).startswith("C"), F.lit(False))
    items = F.array(
        _line_item(
            f.product_id, f.product_name, f.quantity, f.unit_price, f.quantity * f.unit_price
        )
    )
    rules = [
        _order_id_rule(),
        _Rule("missing_amount", f.unit_price.isNull(), f.unit_price_problem),
        *_item_rules(f.quantity_problem),
        _date_rule(f),
    ]
    return cols, items, rules


def _basket_lines(rows: DataFrame, mapping: dict[str, str], source: SourceConfig):
    cols, f = _order_fields(rows, mapping, source)
    cols[C.ORDER_IS_RETURN] = F.lit(False)
    items = F.array(
        _line_item(f.product_id, f.product_name, f.quantity, f.unit_price, f.line_amount)
    )
    rules = [
        _order_id_rule(),
        _Rule("missing_amount", f.line_amount.isNull(), f.line_amount_problem),
        *_item_rules(f.quantity_problem),
        _date_rule(f),
    ]
    return cols, items, rules


def _transactions(rows: DataFrame, mapping: dict[str, str], source: SourceConfig):
    cols, f = _order_fields(rows, mapping, source)
    # Without an order id each input row is an order: a stable id from its content.
    content = [F.col(c) for c in rows.columns if c != C.COPIES]
    content_id = F.concat_ws(
        "-",
        F.coalesce(cols[C.CUSTOMER_ID], F.lit("guest")),
        F.date_format(cols[C.ORDER_TS], "yyyyMMdd"),
        F.hex(F.xxhash64(*content)),
    )
    if not source.exact_duplicate_rule():
        # Identical rows are kept as repeat purchases: the n-th copy's id ends in "-n" (n >= 2),
        # so they stay apart as orders. The copies are identical, so which is numbered first
        # cannot change the result.
        copy = F.row_number().over(Window.partitionBy(*content).orderBy(*content))
        content_id = F.when(copy > 1, F.concat_ws("-", content_id, copy)).otherwise(content_id)
    cols[C.ORDER_ID] = F.coalesce(cols[C.ORDER_ID], content_id)
    cols[C.ORDER_IS_RETURN] = F.coalesce(cols[C.ORDER_AMOUNT] < 0, F.lit(False))
    amount = cols[C.ORDER_AMOUNT]
    items = F.array(
        _line_item(
            f.product_id,
            f.product_name,
            f.quantity,
            F.when(f.quantity != 0, amount / f.quantity),
            amount,
        )
    )
    rules = [
        _Rule("missing_amount", F.col(C.ORDER_AMOUNT).isNull(), f.amount_problem),
        _date_rule(f),
    ]
    return cols, items, rules


_BUILDERS = {
    "product_json": _product_json,
    "invoice_lines": _invoice_lines,
    "basket_lines": _basket_lines,
    "transactions": _transactions,
}


# ---------------------------------------------------------------------------------------------
# Tables derived from the prepared frame


def accepted(prepared: DataFrame) -> DataFrame:
    """The prepared rows that passed every enabled rule."""
    return prepared.filter(F.col(C.REASON).isNull())


def line_is_return() -> Column:
    """A line of a return order, or with a negative quantity or amount (never null)."""
    return (
        F.col(C.ORDER_IS_RETURN)
        | F.coalesce(F.col(C.QUANTITY) < 0, F.lit(False))
        | F.coalesce(F.col(C.LINE_AMOUNT) < 0, F.lit(False))
    )


def order_lines(prepared: DataFrame) -> DataFrame:
    """
    One row per product line of the accepted rows (``ORDER_LINES_SCHEMA``).

    ``is_return`` is true for the lines of a return order (``C`` invoice, negative order
    amount) and for any line with a negative quantity or amount.
    """
    lines = accepted(prepared).select(*_ORDER_LEVEL, F.inline(C.ITEMS))
    return lines.select(
        F.col(C.SOURCE),
        F.col(C.ORDER_ID),
        F.col(C.CUSTOMER_ID),
        F.col(C.ORDER_TS),
        F.to_date(C.ORDER_TS).alias(C.ORDER_DATE),
        F.col(C.STORE_ID),
        F.col(C.COUNTRY),
        F.col(C.PRODUCT_ID),
        F.col(C.PRODUCT_NAME),
        F.col(C.QUANTITY).cast("double"),
        F.col(C.UNIT_PRICE).cast("double"),
        F.col(C.LINE_AMOUNT).cast("double"),
        line_is_return().alias(C.IS_RETURN),
    )


def orders(prepared: DataFrame, *, with_attributes: bool = False) -> DataFrame:
    """
    One row per order of the accepted rows.

    ``order_amount`` is the sum of the source's order total over the order's input rows where
    it has one (``product_json``'s ``total_amt``, one row per order; ``transactions``' amount,
    one row per purchase, several rows when they share an order id), else the sum of the line
    amounts; ``order_ts`` is the earliest timestamp among the order's rows; ``is_return`` is
    true when every line is a return. With ``with_attributes`` the customer attributes
    ``price_sensitivity`` and ``lifestage`` are kept, for :func:`customers`.
    """
    # Most orders are one input row (product_json, transactions): only the rows whose order
    # id repeats (every row of a line source) are grouped; the others are orders as they are.
    # Either way each input row's lines are summed up in the row first, so a grouping shuffles
    # one row per input row, not one per product line.
    keys = [C.SOURCE, C.ORDER_ID]
    alone, shared = split_repeated(accepted(prepared).select(*_ORDER_LEVEL, C.ITEMS), keys)
    alone = _row_totals(alone).select(
        *[name for name in _ORDER_LEVEL if name != C.ORDER_AMOUNT and name != C.ORDER_IS_RETURN],
        F.coalesce(F.col(C.ORDER_AMOUNT), F.col(_ROW_LINE_AMOUNT)).alias(C.ORDER_AMOUNT),
        F.col(_ROW_QUANTITY).alias(C.ITEM_COUNT),
        F.size(_ROW_PRODUCTS).cast("long").alias(C.DISTINCT_PRODUCTS),
        F.col(_ROW_ALL_RETURNS).alias(C.IS_RETURN),
    )
    grouped = (
        _row_totals(shared)
        .groupBy(*keys)
        .agg(
            F.max(C.CUSTOMER_ID).alias(C.CUSTOMER_ID),
            F.min(C.ORDER_TS).alias(C.ORDER_TS),
            F.max(C.STORE_ID).alias(C.STORE_ID),
            F.max(C.COUNTRY).alias(C.COUNTRY),
            F.coalesce(F.sum(C.ORDER_AMOUNT), F.sum(_ROW_LINE_AMOUNT)).alias(C.ORDER_AMOUNT),
            F.max(C.DISCOUNT).alias(C.DISCOUNT),
            F.max(C.PAID_AMOUNT).alias(C.PAID_AMOUNT),
            F.sum(_ROW_QUANTITY).alias(C.ITEM_COUNT),
            F.size(F.array_distinct(F.flatten(F.collect_list(_ROW_PRODUCTS))))
            .cast("long")
            .alias(C.DISTINCT_PRODUCTS),
            F.bool_and(_ROW_ALL_RETURNS).alias(C.IS_RETURN),
            F.max(C.PRICE_SENSITIVITY).alias(C.PRICE_SENSITIVITY),
            F.max(C.LIFESTAGE).alias(C.LIFESTAGE),
        )
    )
    grouped = alone.unionByName(grouped)
    selected = [
        C.SOURCE,
        C.ORDER_ID,
        C.CUSTOMER_ID,
        C.ORDER_TS,
        F.to_date(C.ORDER_TS).alias(C.ORDER_DATE),
        C.STORE_ID,
        C.COUNTRY,
        C.ORDER_AMOUNT,
        C.DISCOUNT,
        C.PAID_AMOUNT,
        C.ITEM_COUNT,
        C.DISTINCT_PRODUCTS,
        C.IS_RETURN,
    ]
    if with_attributes:
        selected += [C.PRICE_SENSITIVITY, C.LIFESTAGE]
    return grouped.select(*selected)


def _row_totals(rows: DataFrame) -> DataFrame:
    """``rows`` with its lines' quantities, amounts, distinct products and all-returns."""
    items = F.col(C.ITEMS)

    def line_is_returned(line: Column) -> Column:
        negative = F.coalesce(line[C.QUANTITY] < 0, F.lit(False))
        return negative | F.coalesce(line[C.LINE_AMOUNT] < 0, F.lit(False))

    return rows.select(
        "*",
        _array_sum(items[C.QUANTITY]).alias(_ROW_QUANTITY),
        _array_sum(items[C.LINE_AMOUNT]).alias(_ROW_LINE_AMOUNT),
        F.array_distinct(F.array_compact(items[C.PRODUCT_ID])).alias(_ROW_PRODUCTS),
        (F.col(C.ORDER_IS_RETURN) | F.forall(items, line_is_returned)).alias(_ROW_ALL_RETURNS),
    )


def _array_sum(values: Column) -> Column:
    """The sum of an array's non-null values; null when it has none (as ``F.sum``)."""
    return F.aggregate(
        values, F.lit(None).cast("double"), lambda acc, value: F.coalesce(acc + value, acc, value)
    )


def customers(orders_with_attributes: DataFrame) -> DataFrame:
    """
    One row per member (non-null ``customer_id``) from :func:`orders` with attributes.

    Columns: ``customer_id``, ``first_seen``, ``last_seen`` (dates of the first and last
    order, returns included), ``store_id`` and ``country`` (those of most orders, ties to the
    smallest value), ``price_sensitivity`` and ``lifestage`` (the source's attribute; the
    largest value if it ever changed), ``source``.
    """
    members = orders_with_attributes.filter(F.col(C.CUSTOMER_ID).isNotNull())
    return members.groupBy(C.CUSTOMER_ID).agg(
        F.max(C.SOURCE).alias(C.SOURCE),
        F.min(C.ORDER_DATE).alias(C.FIRST_SEEN),
        F.max(C.ORDER_DATE).alias(C.LAST_SEEN),
        _most_frequent(C.STORE_ID).alias(C.STORE_ID),
        _most_frequent(C.COUNTRY).alias(C.COUNTRY),
        F.max(C.PRICE_SENSITIVITY).alias(C.PRICE_SENSITIVITY),
        F.max(C.LIFESTAGE).alias(C.LIFESTAGE),
    )


def _most_frequent(name: str) -> Column:
    # Spark's mode breaks ties by the smallest value when deterministic is set.
    return F.mode(F.col(name), deterministic=True)


def quarantine(prepared: DataFrame, run_id: str, ingested_at: datetime) -> DataFrame:
    """
    Every rejected input row: ``source``, ``reason``, ``detail``, ``raw_record`` (the input row
    as JSON), ``copies`` (identical input rows it stands for), ``run_id``, ``ingested_at``.
    """
    return prepared.filter(F.col(C.REASON).isNotNull()).select(
        C.SOURCE,
        C.REASON,
        C.DETAIL,
        C.RAW_RECORD,
        F.col(C.COPIES).cast("long").alias(C.COPIES_OUT),
        F.lit(run_id).alias(C.RUN_ID),
        F.lit(ingested_at).cast("timestamp").alias(C.INGESTED_AT),
    )
