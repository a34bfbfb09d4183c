"""
Generate seed-000-shaped ``product_json`` sales transactions at any size, with Spark only.

Usage::

    python scripts/generate_data.py --transactions N --output DIR [--seed S] [--master local[*]]

Writes

- ``DIR/transactions``: Parquet, one row per transaction (plus a few exact duplicate rows), with
  the columns of :data:`TRANSACTION_COLUMNS`;
- ``DIR/customer_truth``: Parquet, ``customer_id`` (long) and ``behaviour_type`` (string), the
  behaviour type planted for every member;
- ``DIR/generation_summary.json``: what was generated and injected, counted on the written data.

How it works
------------
Every row is a pure function of its row number ``id`` (from ``spark.range``) and the seed:
randomness comes from ``xxhash64(id, seed, salt)``, never from ``rand()``, so the data does not
depend on partitioning. The ``id`` range is cut into segments: non-members first, then one
segment per behaviour type. Within a type, customers follow a small driver-side visit pattern
(:data:`PATTERN_CUSTOMERS` customers with fixed visit counts, repeated), so each row maps to its
customer and to its visit number by arithmetic and a broadcast join with the pattern table.
A customer's purchase window (first and last purchase day) is drawn from the customer's hash and
the type's limits; visits are spread over the window. Days are counted on an "active" calendar
that skips the seed's gap (2021-06-01 .. 2021-12-31), so no transaction falls in it.

Baskets pick products from the catalogue with Zipf-like popularity (log-uniform popularity rank)
via a broadcast one-row catalogue array, and are serialised with ``to_json``. Faults are injected
by hash bands, and the summary counts them exactly on the written data with one aggregation.

Exact duplicate rows: ``round(N * 0.001)`` rows are repeated once, so ``N`` rows are written and
``N - duplicates`` transaction ids are distinct; transaction ids are otherwise unique, so
``exact_duplicate_rows = rows_written - distinct_transaction_ids``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

DEFAULT_TRANSACTIONS = 2_406_316
DEFAULT_SEED = 42
MIN_TRANSACTIONS = 1_000
MEMBERS_PER_TRANSACTION = 0.24
DUPLICATE_RATE = 0.001
ROWS_PER_PARTITION = 250_000
CUSTOMER_ID_BASE = 1_000_000
PATTERN_CUSTOMERS = 64

FIRST_DAY = date(2019, 1, 1)
LAST_DAY = date(2023, 12, 31)
GAP_FIRST_DAY = date(2021, 6, 1)
GAP_LAST_DAY = date(2021, 12, 31)
GAP_START = (GAP_FIRST_DAY - FIRST_DAY).days
GAP_DAYS = (GAP_LAST_DAY - GAP_FIRST_DAY).days + 1
ACTIVE_DAYS = (LAST_DAY - FIRST_DAY).days + 1 - GAP_DAYS
LAST = ACTIVE_DAYS - 1  # index of the last active day (2023-12-31)
OPEN_SECOND = 8 * 3600
OPEN_SECONDS = 14 * 3600  # shops open 08:00-22:00
MAX_PAYMENT_DELAY = 2 * 86_400

LOCATIONS: tuple[tuple[str, float], ...] = (
    ("SG-01", 0.35),
    ("MY-02", 0.25),
    ("TH-03", 0.18),
    ("VN-04", 0.12),
    ("ID-05", 0.10),
)
HOME_LOCATION_SHARE = 0.85

NULL_TOTAL_RATE = 0.01
NULL_JSON_RATE = 0.005
MALFORMED_JSON_RATE = 0.002
ALT_DATE_RATE = 0.02
BAD_DATE_RATE = 0.005
NULL_PAYMENT_RATE = 0.01
DISCOUNT_RATE = 0.05
SAME_TIME_PAYMENT_RATE = 0.75
GARBAGE_DATES = ("N/A", "2020-13-45 10:00:00", "2020-02-30 10:00:00", "")

ISO_FORMAT = "yyyy-MM-dd HH:mm:ss"
ALT_FORMAT = "dd/MM/yyyy HH:mm"

TRANSACTION_COLUMNS = (
    "transaction_id",
    "customer_id",
    "transaction_date",
    "payment_date",
    "location",
    "total_amt",
    "discount",
    "paid_amt",
    "product_json",
)
ITEM_SCHEMA = "array<struct<product_id:string,product_name:string,quantity:int,unit_price:double>>"
_MASK_53 = (1 << 53) - 1
_TWO_53 = float(1 << 53)


@dataclass(frozen=True)
class Behaviour:
    """
    A planted customer behaviour type.

    Parameters
    ----------
    name : str
        ``behaviour_type`` value written to ``customer_truth``.
    member_share : float
        Share of the members of this type (shares sum to 1).
    visits : tuple of int
        Visit counts to draw from (uniformly; repeat a value to weight it).
    last_day : tuple of int
        Inclusive range of the customer's last purchase, as active-day indices.
    span : tuple of int
        Inclusive range of days between the customer's first and last purchase.
    lines : tuple of int
        Inclusive range of product lines drawn per basket (duplicates are dropped).
    max_quantity : int
        Quantities per line are 1..max_quantity, skewed towards 1.
    """

    name: str
    member_share: float
    visits: tuple[int, ...]
    last_day: tuple[int, int]
    span: tuple[int, int]
    lines: tuple[int, int]
    max_quantity: int


BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour(
        "champions",
        member_share=0.05,
        visits=tuple(range(12, 21)),
        last_day=(LAST - 14, LAST),
        span=(400, 560),
        lines=(3, 7),
        max_quantity=3,
    ),
    Behaviour(
        "loyal_regulars",
        member_share=0.12,
        visits=tuple(range(5, 9)),
        last_day=(LAST - 45, LAST),
        span=(600, 1200),
        lines=(1, 3),
        max_quantity=2,
    ),
    Behaviour(
        "big_basket_occasionals",
        member_share=0.10,
        visits=(2, 2, 3),
        last_day=(LAST - 540, LAST - 30),
        span=(60, 200),
        lines=(8, 15),
        max_quantity=5,
    ),
    Behaviour(
        "new_customers",
        member_share=0.20,
        visits=(1, 1, 2, 3),
        last_day=(LAST - 30, LAST),
        span=(40, 58),
        lines=(1, 3),
        max_quantity=2,
    ),
    Behaviour(
        "at_risk",
        member_share=0.17,
        visits=tuple(range(3, 7)),
        last_day=(LAST - 365, LAST - 183),
        span=(110, 240),
        lines=(2, 5),
        max_quantity=2,
    ),
    Behaviour(
        "lapsed_low_value",
        member_share=0.36,
        visits=(1, 1, 1, 2, 2, 3),
        last_day=(90, 700),
        span=(40, 90),
        lines=(1, 2),
        max_quantity=1,
    ),
)
NON_MEMBER_LINES = (1, 3)
NON_MEMBER_MAX_QUANTITY = 2

_CATEGORIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[float, float]], ...] = (
    (
        "vitamins",
        (
            "Vitamin C",
            "Vitamin D3",
            "Vitamin B Complex",
            "Vitamin E",
            "Multivitamin",
            "Calcium + D3",
            "Zinc",
            "Magnesium",
            "Iron",
            "Folic Acid",
        ),
        ("500mg 30 tablets", "1000mg 60 tablets", "1000mg 120 tablets", "250mg 90 capsules"),
        (6.0, 45.0),
    ),
    (
        "supplements",
        (
            "Fish Oil",
            "Omega-3",
            "Glucosamine",
            "Probiotic",
            "Collagen",
            "CoQ10",
            "Evening Primrose Oil",
            "Lutein",
            "Ginkgo Biloba",
            "Spirulina",
        ),
        ("30 capsules", "60 capsules", "90 capsules", "120 capsules"),
        (12.0, 80.0),
    ),
    (
        "personal_care",
        (
            "Hand Sanitiser",
            "Sunscreen SPF50",
            "Moisturising Lotion",
            "Lip Balm",
            "Facial Cleanser",
            "Shampoo",
            "Body Wash",
            "Toothpaste",
        ),
        ("50ml", "100ml", "200ml", "500ml"),
        (3.0, 30.0),
    ),
    (
        "first_aid",
        (
            "Plasters",
            "Antiseptic Cream",
            "Bandage Roll",
            "Cotton Pads",
            "Face Masks",
            "Alcohol Swabs",
        ),
        ("10 pcs", "20 pcs", "50 pcs", "100 pcs"),
        (2.0, 20.0),
    ),
    (
        "medicine",
        (
            "Paracetamol",
            "Ibuprofen",
            "Antihistamine",
            "Cough Syrup",
            "Throat Lozenges",
            "Antacid",
            "Oral Rehydration Salts",
            "Eye Drops",
        ),
        ("12 pack", "24 pack", "100ml", "200ml"),
        (3.0, 20.0),
    ),
    (
        "baby_care",
        ("Baby Wipes", "Diaper Cream", "Infant Formula", "Baby Shampoo", "Baby Lotion"),
        ("small", "medium", "large", "value pack"),
        (5.0, 60.0),
    ),
)
_BRANDS = ("HealthPlus", "VitaLife", "NatureCare", "PureWell", "MediCo", "Everyday")
CATALOGUE_SIZE_RANGE = (350, 450)


# --------------------------------------------------------------------------------------------
# Layout: how many members, rows and pattern entries each segment gets (driver-side, tiny)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """
    One behaviour type's share of the members and of the row ids.

    Parameters
    ----------
    behaviour : Behaviour
        The planted type.
    members : int
        Members of this type.
    member_offset : int
        Global index of the type's first member (members are numbered type by type).
    rows : int
        Unique transactions of this type.
    row_offset : int
        First row id of the type's segment.
    visits : tuple of int
        Visit count of each of the :data:`PATTERN_CUSTOMERS` customers of the repeated pattern.
    """

    behaviour: Behaviour
    members: int
    member_offset: int
    rows: int
    row_offset: int
    visits: tuple[int, ...]

    @property
    def pattern_rows(self) -> int:
        """Rows in one full repetition of the visit pattern."""
        return sum(self.visits)


@dataclass(frozen=True)
class Layout:
    """
    Sizes of everything generated for ``n`` rows and a seed.

    Parameters
    ----------
    n : int
        Rows written (unique transactions plus exact duplicates).
    seed : int
        Generator seed.
    duplicates : int
        Exact duplicate rows, ``round(n * DUPLICATE_RATE)``.
    unique_rows : int
        Distinct transactions, ``n - duplicates``.
    members : int
        Distinct members, ``round(n * MEMBERS_PER_TRANSACTION)``.
    non_member_rows : int
        Unique transactions without a customer; they take row ids ``0 .. non_member_rows - 1``.
    segments : tuple of Segment
        Behaviour segments, in :data:`BEHAVIOURS` order, after the non-member rows.
    """

    n: int
    seed: int
    duplicates: int
    unique_rows: int
    members: int
    non_member_rows: int
    segments: tuple[Segment, ...]


def _visit_pattern(behaviour: Behaviour, seed: int) -> tuple[int, ...]:
    """Draw the repeated visit-count pattern of one type from the seed."""
    rng = random.Random(f"{seed}:visits:{behaviour.name}")
    return tuple(rng.choice(behaviour.visits) for _ in range(PATTERN_CUSTOMERS))


def _rows_for(members: int, visits: Sequence[int]) -> int:
    """Rows needed for ``members`` customers that follow the repeated ``visits`` pattern."""
    full, rest = divmod(members, len(visits))
    return full * sum(visits) + sum(visits[:rest])


def plan_layout(n: int, seed: int) -> Layout:
    """
    Decide member counts, row counts and segment boundaries for ``n`` rows.

    Parameters
    ----------
    n : int
        Rows to write, must be >= ``MIN_TRANSACTIONS``.
    seed : int
        Generator seed.

    Returns
    -------
    Layout
        Sizes; ``non_member_rows + sum(segment rows) + duplicates == n`` exactly.

    Examples
    --------
    >>> layout = plan_layout(10_000, 1)
    >>> layout.non_member_rows + sum(s.rows for s in layout.segments) + layout.duplicates
    10000
    """
    if n < MIN_TRANSACTIONS:
        raise ValueError(f"transactions must be >= {MIN_TRANSACTIONS}, got {n}")
    duplicates = round(n * DUPLICATE_RATE)
    unique_rows = n - duplicates
    members = round(n * MEMBERS_PER_TRANSACTION)
    counts = [math.floor(b.member_share * members) for b in BEHAVIOURS]
    counts[-1] += members - sum(counts)
    patterns = [_visit_pattern(b, seed) for b in BEHAVIOURS]
    member_rows = sum(_rows_for(c, p) for c, p in zip(counts, patterns, strict=True))
    non_member_rows = unique_rows - member_rows
    if non_member_rows < 0:
        raise ValueError(f"layout needs {member_rows} member rows for {unique_rows} rows")
    segments: list[Segment] = []
    member_offset, row_offset = 0, non_member_rows
    for behaviour, count, pattern in zip(BEHAVIOURS, counts, patterns, strict=True):
        rows = _rows_for(count, pattern)
        segments.append(Segment(behaviour, count, member_offset, rows, row_offset, pattern))
        member_offset += count
        row_offset += rows
    return Layout(n, seed, duplicates, unique_rows, members, non_member_rows, tuple(segments))


def _coprime_multiplier(modulus: int, seed: int, salt: str) -> tuple[int, int]:
    """Return ``(a, b)`` so that ``(x * a + b) % modulus`` permutes ``0 .. modulus - 1``."""
    if modulus <= 1:
        return 1, 0
    rng = random.Random(f"{seed}:perm:{salt}")
    a = rng.randrange(modulus // 3, modulus) | 1
    while math.gcd(a, modulus) != 1:
        a += 1
    return a, rng.randrange(modulus)


# --------------------------------------------------------------------------------------------
# Column helpers (Column -> Column, built-ins only)
# --------------------------------------------------------------------------------------------


def _uniform(seed: int, salt: str, *cols: Column) -> Column:
    """Uniform double in [0, 1) from ``xxhash64(cols, seed, salt)``: partition-independent."""
    hashed = F.xxhash64(*cols, F.lit(seed), F.lit(salt))
    return hashed.bitwiseAND(F.lit(_MASK_53)).cast("double") / F.lit(_TWO_53)


def _int_between(u: Column, low: Column | int, high: Column | int) -> Column:
    """Integer uniform in ``[low, high]`` from a uniform ``u`` in [0, 1)."""
    low_c = low if isinstance(low, Column) else F.lit(low)
    high_c = high if isinstance(high, Column) else F.lit(high)
    return (low_c + F.floor(u * (high_c - low_c + 1))).cast("long")


def _div(col: Column, divisor: int) -> Column:
    """Integer division of a non-negative long column."""
    return F.floor(col / F.lit(divisor)).cast("long")


def _by_segment(seg: Column, values: Sequence[object]) -> Column:
    """Pick ``values[seg]`` (segment 0 = non-members, 1.. = :data:`BEHAVIOURS`)."""
    return F.element_at(F.array(*[F.lit(v) for v in values]), seg + 1)


def _pick_weighted(u: Column, choices: Sequence[tuple[str, float]]) -> Column:
    """Pick a label by cumulative weights from a uniform ``u``."""
    expr: Column | None = None
    cumulative = 0.0
    for label, weight in choices[:-1]:
        cumulative += weight
        expr = F.when(u < cumulative, label) if expr is None else expr.when(u < cumulative, label)
    last = choices[-1][0]
    return F.lit(last) if expr is None else expr.otherwise(last)


def _real_day(active_day: Column) -> Column:
    """Map an active-day index to days since :data:`FIRST_DAY`, skipping the 2021 gap."""
    return F.when(active_day >= GAP_START, active_day + GAP_DAYS).otherwise(active_day)


def _iso_timestamp(day: Column, second: Column) -> Column:
    """``yyyy-MM-dd HH:mm:ss`` text for days since :data:`FIRST_DAY` and a second of the day."""
    as_date = F.date_add(F.lit(FIRST_DAY), day.cast("int"))
    return F.format_string(
        "%s %02d:%02d:%02d",
        as_date.cast("string"),
        _div(second, 3600),
        _div(second % 3600, 60),
        second % 60,
    )


def _alt_timestamp(day: Column, second: Column) -> Column:
    """``dd/MM/yyyy HH:mm`` text for days since :data:`FIRST_DAY` and a second of the day."""
    as_date = F.date_add(F.lit(FIRST_DAY), day.cast("int"))
    return F.format_string(
        "%s %02d:%02d",
        F.date_format(as_date, "dd/MM/yyyy"),
        _div(second, 3600),
        _div(second % 3600, 60),
    )


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------


def catalogue_rows(seed: int) -> list[tuple[str, str, str, float, int]]:
    """
    Generate the product catalogue deterministically from the seed (driver-side, ~400 rows).

    Parameters
    ----------
    seed : int
        Generator seed.

    Returns
    -------
    list of tuple
        ``(product_id, product_name, category, unit_price, popularity_rank)``; ids ``P0001..``,
        names unique, prices multiples of 0.05, ranks a permutation of ``1..size``.

    Examples
    --------
    >>> rows = catalogue_rows(3)
    >>> 350 <= len(rows) <= 450, rows[0][0], len({r[1] for r in rows}) == len(rows)
    (True, 'P0001', True)
    """
    rng = random.Random(f"{seed}:catalogue")
    candidates = [
        (f"{brand} {item} {variant}", category, bounds)
        for category, items, variants, bounds in _CATEGORIES
        for item in items
        for variant in variants
        for brand in _BRANDS
    ]
    rng.shuffle(candidates)
    size = rng.randint(*CATALOGUE_SIZE_RANGE)
    chosen = sorted(candidates[:size])
    ranks = list(range(1, size + 1))
    rng.shuffle(ranks)
    return [
        (f"P{i + 1:04d}", name, category, round(rng.uniform(*bounds) * 20) / 20, rank)
        for i, ((name, category, bounds), rank) in enumerate(zip(chosen, ranks, strict=True))
    ]


def build_catalogue(spark: SparkSession, seed: int) -> DataFrame:
    """
    Build the product catalogue as a small DataFrame.

    Parameters
    ----------
    spark : SparkSession
        Active session.
    seed : int
        Generator seed.

    Returns
    -------
    DataFrame
        ``product_id`` string, ``product_name`` string, ``category`` string, ``unit_price``
        double, ``popularity_rank`` int (1 = most popular), no nulls.
    """
    schema = T.StructType(
        [
            T.StructField("product_id", T.StringType(), False),
            T.StructField("product_name", T.StringType(), False),
            T.StructField("category", T.StringType(), False),
            T.StructField("unit_price", T.DoubleType(), False),
            T.StructField("popularity_rank", T.IntegerType(), False),
        ]
    )
    return spark.createDataFrame(catalogue_rows(seed), schema)


# --------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------


def _pattern_frame(spark: SparkSession, layout: Layout) -> DataFrame:
    """Visit pattern table: per segment and pattern row, the customer offset and visit number."""
    rows = [
        (seg_no, row, owner, visit, visits)
        for seg_no, segment in enumerate(layout.segments, start=1)
        for row, (owner, visit, visits) in enumerate(
            (owner, visit, visits)
            for owner, visits in enumerate(segment.visits)
            for visit in range(visits)
        )
    ]
    schema = "seg int, pattern_row long, owner long, visit long, visits long"
    return spark.createDataFrame(rows, schema)


def _segment_of(row_id: Column, layout: Layout) -> Column:
    """Segment number of a row id: 0 non-members, then 1.. per behaviour type."""
    expr = F.when(row_id < layout.non_member_rows, F.lit(0))
    for seg_no, segment in enumerate(layout.segments, start=1):
        expr = expr.when(row_id < segment.row_offset + segment.rows, F.lit(seg_no))
    return expr.otherwise(F.lit(len(layout.segments)))


def _with_customers(base: DataFrame, layout: Layout, pattern: DataFrame) -> DataFrame:
    """Add ``seg``, member index ``g`` (null for non-members), ``visit`` and ``visits``."""
    seg = F.col("seg")
    local = F.col("id") - _by_segment(seg, [0] + [s.row_offset for s in layout.segments])
    pattern_rows = _by_segment(seg, [1] + [s.pattern_rows for s in layout.segments])
    keyed = base.withColumn("seg", _segment_of(F.col("id"), layout).cast("int")).withColumn(
        "pattern_row", F.when(seg > 0, local % pattern_rows)
    )
    joined = keyed.join(F.broadcast(pattern), ["seg", "pattern_row"], "left")
    block = F.floor(local / pattern_rows).cast("long")
    member_offset = _by_segment(seg, [0] + [s.member_offset for s in layout.segments])
    g = member_offset + block * PATTERN_CUSTOMERS + F.col("owner")
    return joined.withColumn("g", F.when(seg > 0, g))


def _customer_id(g: Column, layout: Layout) -> Column:
    """Customer id of member index ``g``: a seeded permutation, offset by the id base."""
    a, b = _coprime_multiplier(layout.members, layout.seed, "customer")
    return (F.lit(CUSTOMER_ID_BASE) + (g * a + b) % layout.members).cast("long")


def _purchase_day(layout: Layout) -> Column:
    """Active-day index of each row's purchase, from the customer's window and visit number."""
    seed, seg, g = layout.seed, F.col("seg"), F.col("g")
    last_lo = _by_segment(seg, [0] + [s.behaviour.last_day[0] for s in layout.segments])
    last_hi = _by_segment(seg, [0] + [s.behaviour.last_day[1] for s in layout.segments])
    span_lo = _by_segment(seg, [0] + [s.behaviour.span[0] for s in layout.segments])
    span_hi = _by_segment(seg, [0] + [s.behaviour.span[1] for s in layout.segments])
    last = _int_between(_uniform(seed, "last", g), last_lo, last_hi)
    first = F.greatest(
        F.lit(0).cast("long"), last - _int_between(_uniform(seed, "span", g), span_lo, span_hi)
    )
    visit, visits = F.col("visit"), F.col("visits")
    jitter = (_uniform(seed, "jitter", F.col("id")) - 0.5) * 0.6
    fraction = F.least(
        F.greatest((visit + jitter) / F.greatest(visits - 1, F.lit(1)), F.lit(0.0)), F.lit(1.0)
    )
    middle = first + F.round((last - first) * fraction).cast("long")
    member_day = (
        F.when(visits == 1, last)
        .when(visit == 0, first)
        .when(visit == visits - 1, last)
        .otherwise(middle)
    )
    any_day = _int_between(_uniform(seed, "day", F.col("id")), 0, LAST)
    return F.when(seg == 0, any_day).otherwise(member_day)


def _location(layout: Layout) -> Column:
    """Store: members mostly shop at their home store; everybody follows the skewed shares."""
    seed, row_id = layout.seed, F.col("id")
    home = _uniform(seed, "home", F.col("g"))
    roam = _uniform(seed, "location", row_id)
    stays = (F.col("seg") > 0) & (_uniform(seed, "roam", row_id) < HOME_LOCATION_SHARE)
    return _pick_weighted(F.when(stays, home).otherwise(roam), LOCATIONS)


def _items(layout: Layout) -> Column:
    """Basket: array of ``struct(product_id, product_name, quantity, unit_price)``."""
    seed, seg, row_id = layout.seed, F.col("seg"), F.col("id")
    lines_lo = _by_segment(
        seg, [NON_MEMBER_LINES[0]] + [s.behaviour.lines[0] for s in layout.segments]
    )
    lines_hi = _by_segment(
        seg, [NON_MEMBER_LINES[1]] + [s.behaviour.lines[1] for s in layout.segments]
    )
    max_qty = _by_segment(
        seg, [NON_MEMBER_MAX_QUANTITY] + [s.behaviour.max_quantity for s in layout.segments]
    )
    n_lines = _int_between(_uniform(seed, "lines", row_id), lines_lo, lines_hi).cast("int")
    products = F.size(F.col("catalogue"))

    def rank(line: Column) -> Column:
        u = _uniform(seed, "product", row_id, line)
        zipf = F.floor(F.exp(u * F.log(products + 1))) - 1  # log-uniform rank: Zipf, s = 1
        return F.least(zipf, products - 1).cast("int")

    ranks = F.array_distinct(F.transform(F.sequence(F.lit(1), n_lines), rank))

    def item(product_rank: Column, line: Column) -> Column:
        product = F.element_at(F.col("catalogue"), product_rank + 1)
        u = _uniform(seed, "quantity", row_id, line)
        quantity = (1 + F.floor(max_qty * u * u)).cast("int")
        return F.struct(
            product["product_id"].alias("product_id"),
            product["product_name"].alias("product_name"),
            quantity.alias("quantity"),
            product["unit_price"].alias("unit_price"),
        )

    return F.transform(ranks, item)


def _catalogue_array(catalogue: DataFrame) -> DataFrame:
    """One row, column ``catalogue``: the products ordered by popularity rank."""
    entry = F.struct("popularity_rank", "product_id", "product_name", "unit_price")
    return catalogue.agg(F.array_sort(F.collect_list(entry)).alias("catalogue"))


def _product_json(layout: Layout) -> Column:
    """Column ``json`` (``to_json`` of the items), null or truncated on the fault bands."""
    full = F.col("json")
    cut = F.floor(F.length(full) * (0.2 + 0.6 * _uniform(layout.seed, "truncate", F.col("id"))))
    truncated = full.substr(F.lit(1), F.greatest(cut.cast("int"), F.lit(1)))
    fault = F.col("u_fault")
    null_band = NULL_TOTAL_RATE + NULL_JSON_RATE
    return (
        F.when((fault >= NULL_TOTAL_RATE) & (fault < null_band), F.lit(None).cast("string"))
        .when((fault >= null_band) & (fault < null_band + MALFORMED_JSON_RATE), truncated)
        .otherwise(full)
    )


def _dates(layout: Layout) -> tuple[Column, Column]:
    """``transaction_date`` and ``payment_date`` text, with the format and null faults."""
    seed, row_id = layout.seed, F.col("id")
    day, second = _real_day(F.col("day")), F.col("second")
    u_date = _uniform(seed, "date_fault", row_id)
    garbage = F.element_at(
        F.array(*[F.lit(g) for g in GARBAGE_DATES]),
        _int_between(_uniform(seed, "garbage", row_id), 1, len(GARBAGE_DATES)).cast("int"),
    )
    transaction = (
        F.when(u_date < ALT_DATE_RATE, _alt_timestamp(day, second))
        .when(u_date < ALT_DATE_RATE + BAD_DATE_RATE, garbage)
        .otherwise(_iso_timestamp(day, second))
    )
    later = _int_between(_uniform(seed, "delay", row_id), 60, MAX_PAYMENT_DELAY)
    delay = F.when(
        _uniform(seed, "same_time", row_id) < SAME_TIME_PAYMENT_RATE, F.lit(0)
    ).otherwise(later)
    paid_at = second + delay
    payment = F.when(
        _uniform(seed, "payment_fault", row_id) >= NULL_PAYMENT_RATE,
        _iso_timestamp(day + _div(paid_at, 86_400), paid_at % 86_400),
    )
    return transaction, payment


def _total() -> Column:
    """True basket total: ``round(sum(quantity * unit_price), 2)`` over column ``items``."""
    line_sum = F.aggregate(
        F.col("items"), F.lit(0.0), lambda acc, it: acc + it["quantity"] * it["unit_price"]
    )
    return F.round(line_sum, 2)


def _discount(layout: Layout) -> Column:
    """Discount amount: 5-10% of column ``total`` on ~5% of rows, else 0."""
    seed, row_id = layout.seed, F.col("id")
    rate = 0.05 + 0.05 * _uniform(seed, "discount_rate", row_id)
    discounted = _uniform(seed, "discount", row_id) < DISCOUNT_RATE
    return F.when(discounted, F.round(F.col("total") * rate, 2)).otherwise(F.lit(0.0))


def _transaction_id(layout: Layout) -> Column:
    """``T`` plus 9+ digits: a seeded permutation of the row id, so ids do not reveal types."""
    a, b = _coprime_multiplier(layout.unique_rows, layout.seed, "transaction")
    return F.format_string("T%09d", (F.col("id") * a + b) % layout.unique_rows + 1)


def build_transactions(spark: SparkSession, n: int, seed: int, catalogue: DataFrame) -> DataFrame:
    """
    Build ``n`` seed-000-shaped transaction rows (lazily; nothing is computed here).

    Parameters
    ----------
    spark : SparkSession
        Active session.
    n : int
        Rows, must be >= ``MIN_TRANSACTIONS``; includes ``round(n * 0.001)`` exact duplicates.
    seed : int
        Generator seed; the same ``n`` and seed give the same rows.
    catalogue : DataFrame
        From :func:`build_catalogue`.

    Returns
    -------
    DataFrame
        Columns :data:`TRANSACTION_COLUMNS`: ``transaction_id`` string, ``customer_id`` long
        (null for non-members), ``transaction_date`` string (mostly ``yyyy-MM-dd HH:mm:ss``),
        ``payment_date`` string (nullable), ``location`` string, ``total_amt`` double (nullable),
        ``discount`` double, ``paid_amt`` double, ``product_json`` string (nullable).
    """
    layout = plan_layout(n, seed)
    partitions = max(2, math.ceil(layout.unique_rows / ROWS_PER_PARTITION))
    base = spark.range(0, layout.unique_rows, 1, partitions)
    with_customers = _with_customers(base, layout, _pattern_frame(spark, layout))
    row_id = F.col("id")
    second = OPEN_SECOND + F.floor(_uniform(seed, "second", row_id) * OPEN_SECONDS)
    rows = (
        with_customers.crossJoin(F.broadcast(_catalogue_array(catalogue)))
        .withColumn("day", _purchase_day(layout))
        .withColumn("second", second.cast("long"))
        .withColumn("items", _items(layout))
        .withColumn("u_fault", _uniform(seed, "fault", row_id))
        .withColumn("total", _total())
        .withColumn("discount", _discount(layout))
        .withColumn("json", F.to_json(F.col("items")))
    )
    transaction_date, payment_date = _dates(layout)
    unique = rows.select(
        "id",
        _transaction_id(layout).alias("transaction_id"),
        F.when(F.col("seg") > 0, _customer_id(F.col("g"), layout)).alias("customer_id"),
        transaction_date.alias("transaction_date"),
        payment_date.alias("payment_date"),
        _location(layout).alias("location"),
        F.when(F.col("u_fault") >= NULL_TOTAL_RATE, F.col("total")).alias("total_amt"),
        "discount",
        F.round(F.col("total") - F.col("discount"), 2).alias("paid_amt"),
        _product_json(layout).alias("product_json"),
    )
    # exactly `duplicates` ids satisfy (id * d) % m < d for 0 <= id < m
    chosen = (F.col("id") * layout.duplicates) % layout.unique_rows < layout.duplicates
    copies = unique.filter(chosen).coalesce(1)
    return unique.unionByName(copies).select(*TRANSACTION_COLUMNS)


def build_truth(spark: SparkSession, n: int, seed: int) -> DataFrame:
    """
    Build the planted behaviour type of every member.

    Parameters
    ----------
    spark : SparkSession
        Active session.
    n : int
        Rows of the matching :func:`build_transactions` call.
    seed : int
        Generator seed.

    Returns
    -------
    DataFrame
        ``customer_id`` long (unique, not null), ``behaviour_type`` string (not null); one row
        per member of the transactions built with the same ``n`` and seed.
    """
    layout = plan_layout(n, seed)
    g = F.col("id")
    expr = F.when(F.lit(False), F.lit(None).cast("string"))
    for segment in layout.segments:
        expr = expr.when(g < segment.member_offset + segment.members, segment.behaviour.name)
    partitions = max(1, math.ceil(layout.members / ROWS_PER_PARTITION))
    return spark.range(0, layout.members, 1, partitions).select(
        _customer_id(g, layout).alias("customer_id"), expr.alias("behaviour_type")
    )


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


def _count_if(condition: Column) -> Column:
    """Rows where ``condition`` is true (null counts as false)."""
    return F.sum(F.when(condition, 1).otherwise(0)).cast("long")


def summarize(df: DataFrame) -> dict[str, object]:
    """
    Count what the written transactions contain, in one aggregation.

    Parameters
    ----------
    df : DataFrame
        Transactions as written (columns :data:`TRANSACTION_COLUMNS`).

    Returns
    -------
    dict
        ``rows_written``, ``distinct_transaction_ids``, ``distinct_members``,
        ``non_member_rows``, ``product_lines`` (items in parseable ``product_json``),
        ``discounted_rows``, ``first_transaction_date`` / ``last_transaction_date`` (parseable
        dates, ``yyyy-MM-dd``), ``faults`` (a dict of exact counts: ``null_total_amt``,
        ``null_product_json``, ``malformed_product_json``, ``alt_format_transaction_date``,
        ``unparseable_transaction_date``, ``null_payment_date``), ``quarantinable_rows`` (null
        total, null or malformed JSON, or unparseable date) and ``exact_duplicate_rows``
        (rows minus distinct ids; ids are unique except on exact copies).
    """
    parsed_df = df.select(
        "*",
        F.from_json(F.col("product_json"), ITEM_SCHEMA).alias("_items"),
        F.try_to_timestamp(F.col("transaction_date"), F.lit(ISO_FORMAT)).alias("_iso"),
        F.try_to_timestamp(F.col("transaction_date"), F.lit(ALT_FORMAT)).alias("_alt"),
    )
    items, iso, alt = F.col("_items"), F.col("_iso"), F.col("_alt")
    parsed = F.coalesce(iso, alt)
    malformed = F.col("product_json").isNotNull() & items.isNull()
    unparseable = parsed.isNull()
    quarantinable = F.col("total_amt").isNull() | items.isNull() | unparseable
    row = parsed_df.agg(
        F.count(F.lit(1)).alias("rows_written"),
        F.count_distinct("transaction_id").alias("distinct_transaction_ids"),
        F.count_distinct("customer_id").alias("distinct_members"),
        _count_if(F.col("customer_id").isNull()).alias("non_member_rows"),
        F.coalesce(F.sum(F.when(items.isNotNull(), F.size(items))), F.lit(0)).alias(
            "product_lines"
        ),
        _count_if(F.col("discount") > 0).alias("discounted_rows"),
        F.date_format(F.min(parsed), "yyyy-MM-dd").alias("first_transaction_date"),
        F.date_format(F.max(parsed), "yyyy-MM-dd").alias("last_transaction_date"),
        _count_if(F.col("total_amt").isNull()).alias("null_total_amt"),
        _count_if(F.col("product_json").isNull()).alias("null_product_json"),
        _count_if(malformed).alias("malformed_product_json"),
        _count_if(iso.isNull() & alt.isNotNull()).alias("alt_format_transaction_date"),
        _count_if(unparseable).alias("unparseable_transaction_date"),
        _count_if(F.col("payment_date").isNull()).alias("null_payment_date"),
        _count_if(quarantinable).alias("quarantinable_rows"),
    ).first()
    values = row.asDict()
    fault_keys = (
        "null_total_amt",
        "null_product_json",
        "malformed_product_json",
        "alt_format_transaction_date",
        "unparseable_transaction_date",
        "null_payment_date",
    )
    summary: dict[str, object] = {k: v for k, v in values.items() if k not in fault_keys}
    summary["product_lines"] = int(values["product_lines"])
    summary["faults"] = {k: values[k] for k in fault_keys}
    summary["exact_duplicate_rows"] = values["rows_written"] - values["distinct_transaction_ids"]
    return summary


def summarize_truth(truth: DataFrame) -> dict[str, int]:
    """
    Members per planted behaviour type.

    Parameters
    ----------
    truth : DataFrame
        From :func:`build_truth` (``behaviour_type``).

    Returns
    -------
    dict
        ``behaviour_type -> members``, in :data:`BEHAVIOURS` order.
    """
    counts = {
        r["behaviour_type"]: r["members"]
        for r in truth.groupBy("behaviour_type").agg(F.count(F.lit(1)).alias("members")).collect()
    }
    return {b.name: int(counts.get(b.name, 0)) for b in BEHAVIOURS}


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def build_spark(master: str) -> SparkSession:
    """
    Get (or reuse) the generator's Spark session.

    Parameters
    ----------
    master : str
        Spark master, e.g. ``local[*]``.

    Returns
    -------
    SparkSession
        UTC session time zone, 8 shuffle partitions, UI and console progress off, log level
        WARN.
    """
    spark = (
        SparkSession.builder.master(master)
        .appName("generate-data")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _step(name: str, started: float, detail: str = "") -> float:
    """Print one progress line and return the step's seconds."""
    seconds = time.perf_counter() - started
    suffix = f": {detail}" if detail else ""
    print(f"[generate-data] {name}{suffix} ({seconds:.1f} s)", flush=True)
    return round(seconds, 2)


def generate(spark: SparkSession, n: int, seed: int, output: str | Path) -> dict[str, object]:
    """
    Generate, write and count the data set.

    Parameters
    ----------
    spark : SparkSession
        Active session.
    n : int
        Transaction rows to write, must be >= ``MIN_TRANSACTIONS``.
    seed : int
        Generator seed.
    output : str or Path
        Local folder; ``transactions``, ``customer_truth`` and ``generation_summary.json`` are
        (over)written inside it.

    Returns
    -------
    dict
        The summary also written to ``generation_summary.json``.
    """
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    started = t0 = time.perf_counter()

    catalogue = build_catalogue(spark, seed)
    products = len(catalogue_rows(seed))
    seconds["catalogue"] = _step("catalogue", t0, f"{products} products")

    t0 = time.perf_counter()
    transactions = build_transactions(spark, n, seed, catalogue)
    truth = build_truth(spark, n, seed)
    seconds["transactions"] = _step("transactions", t0, f"planned {n:,} rows")

    t0 = time.perf_counter()
    transactions.write.mode("overwrite").parquet(str(out / "transactions"))
    truth.write.mode("overwrite").parquet(str(out / "customer_truth"))
    seconds["write"] = _step("write", t0, str(out))

    t0 = time.perf_counter()
    summary: dict[str, object] = {"seed": seed, "requested_transactions": n}
    summary.update(summarize(spark.read.parquet(str(out / "transactions"))))
    summary["catalogue_products"] = products
    summary["behaviour_type_members"] = summarize_truth(
        spark.read.parquet(str(out / "customer_truth"))
    )
    seconds["summary"] = _step("summary", t0)
    seconds["total"] = round(time.perf_counter() - started, 2)
    summary["seconds"] = seconds
    summary["output"] = {
        "transactions": str(out / "transactions"),
        "customer_truth": str(out / "customer_truth"),
    }
    (out / "generation_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary: dict[str, object]) -> str:
    """
    Render a summary as aligned text lines.

    Parameters
    ----------
    summary : dict
        From :func:`generate`.

    Returns
    -------
    str
        Multi-line text, one count per line, nested dicts indented.
    """
    lines = ["[generate-data] summary"]
    for key, value in summary.items():
        if isinstance(value, dict):
            lines.append(f"  {key}:")
            lines.extend(f"    {k:<30} {_fmt(v)}" for k, v in value.items())
        else:
            lines.append(f"  {key:<32} {_fmt(value)}")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    """Thousands separators for ints, plain text otherwise."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    Parse the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    argparse.Namespace
        ``transactions`` (int), ``output`` (str), ``seed`` (int), ``master`` (str).
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--transactions", type=int, default=DEFAULT_TRANSACTIONS, help="rows to write"
    )
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed")
    parser.add_argument("--master", default="local[*]", help="Spark master")
    args = parser.parse_args(argv)
    if args.transactions < MIN_TRANSACTIONS:
        parser.error(f"--transactions must be >= {MIN_TRANSACTIONS}, got {args.transactions}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """
    Command-line entry point.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name.

    Returns
    -------
    int
        Exit code, 0 on success. A session this call creates is stopped at the end; an existing
        one (tests) is reused and left running.
    """
    args = parse_args(argv)
    existing = SparkSession.getActiveSession()
    spark = build_spark(args.master)
    try:
        summary = generate(spark, args.transactions, args.seed, args.output)
        print(format_summary(summary), flush=True)
    finally:
        if existing is None:
            spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
