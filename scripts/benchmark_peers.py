"""
The three peers that ``scripts/benchmark.py`` runs beside ``ingest`` + ``features``: the seed
notebooks' pandas way, DuckDB SQL and plain PySpark, each computing part of
``customer_features`` from the same ``product_json`` Parquet files the project reads.

Usage (the benchmark starts each peer in its own process, to measure its time and memory)::

    python scripts/benchmark_peers.py pandas --source DIR/transactions --output OUT.parquet \
        [--date-format '%Y-%m-%d %H:%M:%S' ...] [--exclude 2021-01-01:2021-12-31 ...]
    python scripts/benchmark_peers.py duckdb --source DIR/transactions --output OUT.parquet ...
    python scripts/benchmark_peers.py spark --source DIR/transactions --output OUT_FOLDER \
        [--date-format 'yyyy-MM-dd HH:mm:ss' ...] [--exclude ...]

``spark`` runs two commands as a user runs two jobs, each its own JVM (``conf/local.yaml``'s
Spark settings, no Delta JARs): ``spark-orders`` writes the accepted orders to
``OUT_FOLDER.orders`` (Parquet) and ``spark-features`` the features from them. It does only
the compared work, the way a plain script would (``dropDuplicates``, ``from_json``, one
aggregation), with no quarantine, no Delta and no other table: what Spark itself costs on the
machine for this work, a floor for the project's two commands.

Each prints one line as the project's jobs do (``[pandas] rows in N, rows out M, S s``) and
writes one row per member to ``--output`` with the columns of :data:`FEATURE_COLUMNS`.

What the peers compute, and why these columns
---------------------------------------------
:data:`FEATURE_COLUMNS` are the ``customer_features`` columns the peers reproduce exactly:
``customer_id``, ``as_of``, ``total_visits``, ``total_spend``, ``total_items``,
``distinct_products``, ``first_order_date``, ``last_order_date`` and ``recency_days``. Together
they need everything ingest does to decide which rows count (deduplication, the nine cleaning
rules, parsing the product JSON and the dates, returns) and the features stage's window (``as_of``,
excluded periods), with plain aggregations per customer. The other columns are left out: the
weekly and monthly figures, the last three baskets, BTYD and MTBP are more of the same
aggregations over the same rows, RFM scores rest on Spark's ``percentile_approx`` (not exactly
reproducible elsewhere), and ``store_id`` is a mode with tie-breaking.

The rules follow ``customer_analytics.stages.ingest`` and ``features``:

- exact duplicate input rows count once;
- a row is rejected (quarantined) when the transaction id is empty, ``total_amt`` is null, the
  product JSON is empty, does not parse or parses to no products, a product has no id, a missing
  or zero quantity or a negative unit price, or the date matches none of the formats (tried in
  order; text is trimmed of spaces first, as Spark's ``trim`` does);
- a JSON object where an array is expected is read as a one-product array (Spark's ``from_json``
  does so); a quantity or price that is not a number is missing;
- an order is a return when ``total_amt`` is negative or every product line has a negative
  quantity; a visit is a member's (``customer_id`` not null) non-return order;
- ``as_of`` is the date of the last accepted order (guests and returns included); visits after it
  or inside an excluded period (``--exclude``, inclusive) are left out;
- ``total_visits`` counts distinct transaction ids, ``total_spend`` sums ``total_amt``,
  ``total_items`` sums the quantities of every line, ``distinct_products`` counts the products of
  lines with a positive quantity, and ``recency_days`` is ``as_of - last_order_date``.

Both peers take each accepted input row as one order: the generator writes unique transaction
ids apart from its exact duplicates, as the seed export has them. Customer ids are read as
integers (the generator's ``long`` column) and written as text, as ingest does.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from customer_analytics.core import columns as C

PEERS = ("pandas", "duckdb", "spark")
#: The two commands of the ``spark`` peer, run by it (not by the benchmark).
SPARK_COMMANDS = ("spark-orders", "spark-features")
REPO = Path(__file__).resolve().parent.parent

#: The export's columns the peers read (seed 000's names; ``product_json`` in config.py).
TRANSACTION_ID, CUSTOMER_ID, TRANSACTION_DATE = "transaction_id", "customer_id", "transaction_date"
TOTAL_AMT, PRODUCT_JSON = "total_amt", "product_json"

#: The ``customer_features`` columns every peer writes, in this order.
FEATURE_COLUMNS = (
    C.CUSTOMER_ID,
    C.AS_OF,
    C.TOTAL_VISITS,
    C.TOTAL_SPEND,
    C.TOTAL_ITEMS,
    C.DISTINCT_PRODUCTS,
    C.FIRST_ORDER_DATE,
    C.LAST_ORDER_DATE,
    C.RECENCY_DAYS,
)
#: Compared exactly.
EXACT_COLUMNS = (
    C.AS_OF,
    C.TOTAL_VISITS,
    C.DISTINCT_PRODUCTS,
    C.FIRST_ORDER_DATE,
    C.LAST_ORDER_DATE,
    C.RECENCY_DAYS,
)
#: Compared with a relative tolerance (sums of doubles, added in a different order).
APPROX_COLUMNS = (C.TOTAL_SPEND, C.TOTAL_ITEMS)
RELATIVE_TOLERANCE = 1e-6

#: Spark datetime pattern letters -> strptime directives, longest first.
_SPARK_TO_STRPTIME = (
    ("yyyy", "%Y"),
    ("MM", "%m"),
    ("M", "%m"),
    ("dd", "%d"),
    ("d", "%d"),
    ("HH", "%H"),
    ("H", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
)
_SPARK_TOKEN = re.compile("|".join(re.escape(token) for token, _ in _SPARK_TO_STRPTIME))


@dataclass(frozen=True)
class Period:
    """An excluded date range, inclusive at both ends."""

    start: date
    end: date

    @classmethod
    def parse(cls, text: str) -> Period:
        """``YYYY-MM-DD:YYYY-MM-DD`` -> Period; raises ValueError naming the text."""
        start, sep, end = text.partition(":")
        try:
            period = cls(date.fromisoformat(start), date.fromisoformat(end))
        except ValueError:
            raise ValueError(f"expected START:END as YYYY-MM-DD:YYYY-MM-DD, got {text!r}") from None
        if not sep or period.start > period.end:
            raise ValueError(f"expected START:END with START <= END, got {text!r}")
        return period


def strptime_format(spark_pattern: str) -> str:
    """
    The strptime format of a Spark datetime pattern made of ``y M d H m s`` and separators.

    Examples
    --------
    >>> strptime_format("dd/MM/yyyy HH:mm")
    '%d/%m/%Y %H:%M'

    Raises
    ------
    ValueError
        When the pattern has another letter (e.g. ``a``, ``S``, quoted text).
    """
    converted = _SPARK_TOKEN.sub(
        lambda m: dict(_SPARK_TO_STRPTIME)[m.group(0)], spark_pattern.replace("%", "%%")
    )
    letters = re.sub(r"%[%YmdHMS]", "", converted)
    if re.search(r"[A-Za-z']", letters):
        raise ValueError(f"date format {spark_pattern!r}: only y, M, d, H, m, s are supported")
    return converted


# ---------------------------------------------------------------------------------------------
# pandas: the notebook way


def _json_text(value: object) -> str | None:
    """A JSON field as Spark reads it into a string: text as is, other values as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _json_number(value: object) -> float | None:
    """A JSON field as a double: numbers only (not booleans), anything else missing."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_products(text: str) -> list[tuple[str | None, float | None, float | None]] | None:
    """
    One row's product JSON as ``(product_id, quantity, unit_price)`` tuples, with ``json.loads``.

    Parameters
    ----------
    text : str
        The ``product_json`` value, not null.

    Returns
    -------
    list of tuple, or None
        One tuple per product (``product_id`` trimmed of spaces, empty -> None); None when the
        text is not a JSON array (or object) of objects.

    Examples
    --------
    >>> parse_products('[{"product_id": " P1 ", "quantity": 2, "unit_price": 1.5}]')
    [('P1', 2.0, 1.5)]
    >>> parse_products('[{"product_id": "P1"') is None
    True
    """
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, dict | None) for item in value):
        return None
    products = []
    for item in value:
        item = item or {}
        product_id = _json_text(item.get(C.PRODUCT_ID))
        product_id = product_id.strip(" ") if product_id is not None else None
        products.append(
            (
                product_id or None,
                _json_number(item.get(C.QUANTITY)),
                _json_number(item.get(C.UNIT_PRICE)),
            )
        )
    return products


def products_are_valid(products: list[tuple[str | None, float | None, float | None]]) -> bool:
    """No product without an id, with a missing or zero quantity, or with a negative price."""
    return all(
        product_id is not None and quantity and not (price is not None and price < 0)
        for product_id, quantity, price in products
    )


def pandas_features(source: str, *, date_formats: Sequence[str], exclude: Sequence[Period] = ()):
    """
    Per-customer features the way the seed notebooks compute them: pandas, ``json.loads`` per
    row, ``pd.to_datetime``, ``groupby``.

    Parameters
    ----------
    source : str
        A Parquet file or folder of ``product_json`` transactions (``transaction_id``,
        ``customer_id`` integer, ``transaction_date`` text, ``total_amt``, ``product_json``).
    date_formats : sequence of str
        strptime formats tried in order on ``transaction_date``.
    exclude : sequence of Period
        Date ranges left out of the features.

    Returns
    -------
    tuple of (int, pandas.DataFrame)
        The input rows read, and one row per member with a visit, columns
        :data:`FEATURE_COLUMNS` (``customer_id`` text, dates as ``datetime.date``).
    """
    import pandas as pd

    raw = pd.read_parquet(source)
    rows_in = len(raw)
    df = raw.drop_duplicates()
    del raw
    order_id = df[TRANSACTION_ID].str.strip(" ").replace("", None)
    amount = pd.to_numeric(df[TOTAL_AMT], errors="coerce")
    json_text = df[PRODUCT_JSON].str.strip(" ").replace("", None)
    products = json_text.map(parse_products, na_action="ignore")
    valid_products = products.map(
        lambda p: isinstance(p, list) and len(p) > 0 and products_are_valid(p)
    )
    date_text = df[TRANSACTION_DATE].str.strip(" ")
    parsed = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    for fmt in date_formats:
        parsed = parsed.fillna(pd.to_datetime(date_text, format=fmt, errors="coerce"))
    accepted = order_id.notna() & amount.notna() & valid_products & parsed.notna()

    orders = pd.DataFrame(
        {
            C.ORDER_ID: order_id[accepted],
            C.CUSTOMER_ID: df.loc[accepted, CUSTOMER_ID],
            C.ORDER_DATE: parsed[accepted].dt.normalize(),
            C.ORDER_AMOUNT: amount[accepted],
            "products": products[accepted],
        }
    )
    del df, products, json_text, date_text, parsed
    orders[C.ITEM_COUNT] = orders["products"].map(lambda p: sum(q for _, q, _ in p))
    all_negative = orders["products"].map(lambda p: all(q < 0 for _, q, _ in p))
    orders[C.IS_RETURN] = (orders[C.ORDER_AMOUNT] < 0) | all_negative
    as_of = orders[C.ORDER_DATE].max()

    in_window = orders[C.ORDER_DATE] <= as_of
    for period in exclude:
        in_window &= ~orders[C.ORDER_DATE].between(
            pd.Timestamp(period.start), pd.Timestamp(period.end)
        )
    visits = orders[in_window & orders[C.CUSTOMER_ID].notna() & ~orders[C.IS_RETURN]].copy()
    visits[C.CUSTOMER_ID] = visits[C.CUSTOMER_ID].astype("int64").astype(str)
    features = visits.groupby(C.CUSTOMER_ID).agg(
        **{
            C.TOTAL_VISITS: (C.ORDER_ID, "nunique"),
            C.TOTAL_SPEND: (C.ORDER_AMOUNT, "sum"),
            C.TOTAL_ITEMS: (C.ITEM_COUNT, "sum"),
            C.FIRST_ORDER_DATE: (C.ORDER_DATE, "min"),
            C.LAST_ORDER_DATE: (C.ORDER_DATE, "max"),
        }
    )
    lines = visits[[C.CUSTOMER_ID, "products"]].explode("products")
    lines[C.PRODUCT_ID] = lines["products"].map(lambda p: p[0])
    lines[C.QUANTITY] = lines["products"].map(lambda p: p[1])
    bought = lines[lines[C.QUANTITY] > 0]
    features[C.DISTINCT_PRODUCTS] = bought.groupby(C.CUSTOMER_ID)[C.PRODUCT_ID].nunique()
    features[C.DISTINCT_PRODUCTS] = features[C.DISTINCT_PRODUCTS].fillna(0).astype("int64")
    features[C.RECENCY_DAYS] = (as_of - features[C.LAST_ORDER_DATE]).dt.days.astype("int64")
    features[C.AS_OF] = as_of.date()
    for name in (C.FIRST_ORDER_DATE, C.LAST_ORDER_DATE):
        features[name] = features[name].dt.date
    return rows_in, features.reset_index()[list(FEATURE_COLUMNS)]


# ---------------------------------------------------------------------------------------------
# DuckDB SQL


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def duckdb_features_sql(
    source: str, *, date_formats: Sequence[str], exclude: Sequence[Period] = ()
) -> str:
    """
    The DuckDB query of the per-customer features (arguments as :func:`pandas_features`).

    Returns
    -------
    str
        One ``SELECT`` giving :data:`FEATURE_COLUMNS`; it reads ``source`` with
        ``read_parquet`` (a folder means every ``*.parquet`` file under it).
    """
    if not date_formats:
        raise ValueError("date_formats must not be empty")
    path = str(Path(source) / "**" / "*.parquet") if Path(source).is_dir() else str(source)
    parse_date = ", ".join(f"try_strptime(date_text, {_sql_text(f)})" for f in date_formats)
    excluded = "".join(
        f" AND NOT (order_date BETWEEN DATE {_sql_text(p.start.isoformat())}"
        f" AND DATE {_sql_text(p.end.isoformat())})"
        for p in exclude
    )
    product = '{"product_id": "VARCHAR", "quantity": "DOUBLE", "unit_price": "DOUBLE"}'
    return f"""
WITH rows AS (
    SELECT DISTINCT * FROM read_parquet({_sql_text(path)})
),
prepared AS (
    SELECT nullif(trim({TRANSACTION_ID}), '') AS order_id,
           CAST({CUSTOMER_ID} AS BIGINT) AS customer_id,
           TRY_CAST({TOTAL_AMT} AS DOUBLE) AS amount,
           nullif(trim({PRODUCT_JSON}), '') AS json_text,
           trim({TRANSACTION_DATE}) AS date_text
    FROM rows
),
parsed AS (
    SELECT *,
           CASE WHEN json_text IS NULL OR NOT json_valid(json_text) THEN NULL
                WHEN json_type(json_text) = 'ARRAY'
                    THEN from_json(json_text, {_sql_text("[" + product + "]")})
                WHEN json_type(json_text) = 'OBJECT'
                    THEN [from_json(json_text, {_sql_text(product)})]
           END AS products,
           coalesce({parse_date}) AS order_ts
    FROM prepared
),
orders AS (
    SELECT order_id, customer_id, CAST(order_ts AS DATE) AS order_date, amount,
           list_sum(list_transform(products, lambda p: p.quantity)) AS item_count,
           amount < 0 OR list_bool_and(list_transform(products, lambda p: p.quantity < 0))
               AS is_return,
           products
    FROM parsed
    WHERE order_id IS NOT NULL AND amount IS NOT NULL AND products IS NOT NULL
      AND len(products) > 0
      AND len(list_filter(products, lambda p: p IS NULL OR p.product_id IS NULL
              OR trim(p.product_id) = '' OR p.quantity IS NULL OR p.quantity = 0
              OR coalesce(p.unit_price < 0, false))) = 0
      AND order_ts IS NOT NULL
),
as_of AS (SELECT max(order_date) AS as_of FROM orders),
visits AS (
    SELECT orders.* FROM orders, as_of
    WHERE customer_id IS NOT NULL AND NOT is_return AND order_date <= as_of.as_of{excluded}
),
per_customer AS (
    SELECT customer_id,
           count(DISTINCT order_id) AS total_visits,
           sum(amount) AS total_spend,
           sum(item_count) AS total_items,
           min(order_date) AS first_order_date,
           max(order_date) AS last_order_date
    FROM visits GROUP BY customer_id
),
products_bought AS (
    SELECT customer_id, count(DISTINCT trim(line.product_id)) AS distinct_products
    FROM (SELECT customer_id, unnest(products) AS line FROM visits)
    WHERE line.quantity > 0
    GROUP BY customer_id
)
SELECT CAST(c.customer_id AS VARCHAR) AS {C.CUSTOMER_ID},
       as_of.as_of AS {C.AS_OF},
       c.total_visits AS {C.TOTAL_VISITS},
       c.total_spend AS {C.TOTAL_SPEND},
       c.total_items AS {C.TOTAL_ITEMS},
       coalesce(p.distinct_products, 0) AS {C.DISTINCT_PRODUCTS},
       c.first_order_date AS {C.FIRST_ORDER_DATE},
       c.last_order_date AS {C.LAST_ORDER_DATE},
       date_diff('day', c.last_order_date, as_of.as_of) AS {C.RECENCY_DAYS}
FROM per_customer c CROSS JOIN as_of LEFT JOIN products_bought p USING (customer_id)
"""


def duckdb_features(
    source: str,
    *,
    date_formats: Sequence[str],
    exclude: Sequence[Period] = (),
    output: str | None = None,
):
    """
    Per-customer features with DuckDB SQL (arguments as :func:`pandas_features`).

    Parameters
    ----------
    output : str, optional
        Write the result to this Parquet file with ``COPY`` instead of returning it.

    Returns
    -------
    tuple of (int, pandas.DataFrame or None)
        The input rows read, and the features (None when written to ``output``).
    """
    import duckdb

    query = duckdb_features_sql(source, date_formats=date_formats, exclude=exclude)
    with duckdb.connect() as con:
        path = str(Path(source) / "**" / "*.parquet") if Path(source).is_dir() else str(source)
        rows_in = con.execute(f"SELECT count(*) FROM read_parquet({_sql_text(path)})").fetchone()[0]
        if output is None:
            return rows_in, con.execute(query).df()
        con.execute(f"COPY ({query}) TO {_sql_text(output)} (FORMAT parquet)")
    return rows_in, None


# ---------------------------------------------------------------------------------------------
# Plain PySpark in two commands: Spark's floor on this machine


def spark_orders(spark, source: str, *, date_formats: Sequence[str]):
    """
    The first command of the plain PySpark peer: the accepted orders of ``source``.

    Parameters
    ----------
    spark : SparkSession
    source : str
        A Parquet file or folder of ``product_json`` transactions (as :func:`pandas_features`).
    date_formats : sequence of str
        Spark datetime patterns tried in order on ``transaction_date`` (not strptime formats).

    Returns
    -------
    DataFrame
        One row per distinct accepted input row: ``order_id``, ``customer_id`` (text),
        ``order_ts``, ``order_amount``, ``item_count`` (the sum of the quantities),
        ``is_return`` and ``products`` (the ids of the lines with a positive quantity).
    """
    from pyspark.sql import functions as F

    def text(value):
        trimmed = F.trim(value)
        return F.when(trimmed != "", trimmed)

    schema = "array<struct<product_id:string,quantity:double,unit_price:double>>"
    rows = spark.read.parquet(source).dropDuplicates()
    parsed = rows.select(
        text(F.col(TRANSACTION_ID)).alias(C.ORDER_ID),
        F.trim(F.col(CUSTOMER_ID).cast("string")).alias(C.CUSTOMER_ID),
        F.coalesce(
            *[F.try_to_timestamp(text(F.col(TRANSACTION_DATE)), F.lit(f)) for f in date_formats]
        ).alias(C.ORDER_TS),
        F.col(TOTAL_AMT).try_cast("double").alias(C.ORDER_AMOUNT),
        F.from_json(text(F.col(PRODUCT_JSON)), schema).alias("items"),
    )
    items = F.col("items")
    product_ids = F.transform(items, lambda p: text(p[C.PRODUCT_ID]))
    lines = F.size(items)
    accepted = parsed.filter(
        F.col(C.ORDER_ID).isNotNull()
        & F.col(C.ORDER_AMOUNT).isNotNull()
        & (lines > 0)
        & (F.size(F.array_compact(product_ids)) == lines)
        & (F.size(F.array_compact(items[C.QUANTITY])) == lines)
        & ~F.array_contains(items[C.QUANTITY], F.lit(0.0))
        & ~F.coalesce(F.array_min(items[C.UNIT_PRICE]) < 0, F.lit(False))
        & F.col(C.ORDER_TS).isNotNull()
    )
    return accepted.select(
        C.ORDER_ID,
        C.CUSTOMER_ID,
        C.ORDER_TS,
        C.ORDER_AMOUNT,
        F.aggregate(items[C.QUANTITY], F.lit(0.0), lambda total, q: total + q).alias(C.ITEM_COUNT),
        ((F.col(C.ORDER_AMOUNT) < 0) | F.forall(items, lambda p: p[C.QUANTITY] < 0)).alias(
            C.IS_RETURN
        ),
        F.array_compact(
            F.transform(items, lambda p: F.when(p[C.QUANTITY] > 0, F.trim(p[C.PRODUCT_ID])))
        ).alias("products"),
    )


def spark_features(orders, *, exclude: Sequence[Period] = ()):
    """
    The second command of the plain PySpark peer: :data:`FEATURE_COLUMNS` from
    :func:`spark_orders`' table (``as_of`` the last accepted order's date, one small job).
    """
    from pyspark.sql import functions as F

    day = F.to_date(C.ORDER_TS)
    as_of = orders.agg(F.max(day)).first()[0]
    in_window = day <= F.lit(as_of)
    for period in exclude:
        in_window &= ~day.between(F.lit(period.start), F.lit(period.end))
    visits = orders.filter(F.col(C.CUSTOMER_ID).isNotNull() & ~F.col(C.IS_RETURN) & in_window)
    per_customer = visits.groupBy(C.CUSTOMER_ID).agg(
        F.count_distinct(C.ORDER_ID).alias(C.TOTAL_VISITS),
        F.sum(C.ORDER_AMOUNT).alias(C.TOTAL_SPEND),
        F.sum(C.ITEM_COUNT).alias(C.TOTAL_ITEMS),
        F.size(F.array_distinct(F.flatten(F.collect_list("products"))))
        .cast("long")
        .alias(C.DISTINCT_PRODUCTS),
        F.min(day).alias(C.FIRST_ORDER_DATE),
        F.max(day).alias(C.LAST_ORDER_DATE),
    )
    computed = {
        C.AS_OF: F.lit(as_of),
        C.RECENCY_DAYS: F.datediff(F.lit(as_of), F.col(C.LAST_ORDER_DATE)),
    }
    return per_customer.select(
        *[computed.get(name, F.col(name)).alias(name) for name in FEATURE_COLUMNS]
    )


def spark_session():
    """A local session with ``conf/local.yaml``'s Spark settings and JVM options, no Delta."""
    from pyspark.sql import SparkSession

    from customer_analytics.config.schema import load
    from customer_analytics.runtime.classic import configure

    settings = load(REPO / "conf" / "local.yaml").spark
    return configure(SparkSession.builder, settings, delta="deltalake").getOrCreate()


def parquet_rows(path: str | Path) -> int:
    """Rows of a Parquet file or of the ``part-*`` files of a folder, from their footers."""
    import pyarrow.parquet as pq

    path = Path(path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    return sum(
        pq.ParquetFile(f).metadata.num_rows for f in files if not f.name.startswith((".", "_"))
    )


def spark_orders_path(output: str | Path) -> str:
    """Where the ``spark`` peer's first command writes the accepted orders, beside ``output``."""
    return f"{output}.orders"


def run_spark_peer(source: str, output: str, *, spark_formats: Sequence[str], exclude) -> None:
    """
    The plain PySpark peer as a user runs two jobs: two commands, each its own JVM, the first
    writing the accepted orders (``<output>.orders``, Parquet), the second the features.
    """
    orders = spark_orders_path(output)
    common = [sys.executable, str(Path(__file__).resolve())]
    first = [*common, "spark-orders", "--source", source, "--output", orders]
    first += [arg for f in spark_formats for arg in ("--date-format", f)]
    second = [*common, "spark-features", "--source", orders, "--output", output]
    second += [arg for p in exclude for arg in ("--exclude", f"{p.start}:{p.end}")]
    for command in (first, second):
        subprocess.run(command, check=True)


# ---------------------------------------------------------------------------------------------
# Comparing with the project's customer_features


@dataclass(frozen=True)
class Comparison:
    """How a peer's features compare with the project's on :data:`FEATURE_COLUMNS`."""

    project_rows: int
    peer_rows: int
    missing: int
    extra: int
    mismatches: dict[str, int]
    examples: list[str]

    @property
    def equal(self) -> bool:
        return self.missing == 0 and self.extra == 0 and not any(self.mismatches.values())

    def describe(self) -> str:
        """One line: ``equal (N customers)`` or what differs."""
        if self.equal:
            return f"equal ({self.project_rows:,} customers)"
        parts = []
        if self.missing:
            parts.append(f"{self.missing:,} customers missing")
        if self.extra:
            parts.append(f"{self.extra:,} customers extra")
        parts += [f"{name} differs for {n:,}" for name, n in self.mismatches.items() if n]
        return "DIFFERENT: " + "; ".join(parts)


def _normalized(frame):
    """Columns :data:`FEATURE_COLUMNS`; id as text, dates as days, counts as int, sums as float."""
    import pandas as pd

    out = pd.DataFrame({C.CUSTOMER_ID: frame[C.CUSTOMER_ID].astype(str)})
    for name in (C.AS_OF, C.FIRST_ORDER_DATE, C.LAST_ORDER_DATE):
        out[name] = pd.to_datetime(frame[name]).values.astype("datetime64[D]")
    for name in (C.TOTAL_VISITS, C.DISTINCT_PRODUCTS, C.RECENCY_DAYS):
        out[name] = frame[name].astype("int64")
    for name in APPROX_COLUMNS:
        out[name] = frame[name].astype("float64")
    return out.set_index(C.CUSTOMER_ID)


def compare_features(project, peer, *, examples: int = 3) -> Comparison:
    """
    Compare two feature tables on :data:`FEATURE_COLUMNS`, customer by customer.

    Parameters
    ----------
    project, peer : pandas.DataFrame
        With the columns :data:`FEATURE_COLUMNS` (others are ignored).
    examples : int
        How many differing values to describe.

    Returns
    -------
    Comparison
        Customers in one table only, and per column the customers whose values differ:
        :data:`EXACT_COLUMNS` must be equal, :data:`APPROX_COLUMNS` within
        :data:`RELATIVE_TOLERANCE` of the project's value.
    """
    import numpy as np

    ours, theirs = _normalized(project), _normalized(peer)
    common = ours.index.intersection(theirs.index)
    a, b = ours.loc[common], theirs.loc[common]
    mismatches: dict[str, int] = {}
    described: list[str] = []
    for name in EXACT_COLUMNS + APPROX_COLUMNS:
        if name in APPROX_COLUMNS:
            close = np.isclose(b[name], a[name], rtol=RELATIVE_TOLERANCE, atol=1e-9)
        else:
            close = (a[name] == b[name]).to_numpy()
        differing = common[~close]
        mismatches[name] = len(differing)
        described += [
            f"{name} of {cid}: project {a.at[cid, name]}, peer {b.at[cid, name]}"
            for cid in differing[: max(0, examples - len(described))]
        ]
    return Comparison(
        project_rows=len(ours),
        peer_rows=len(theirs),
        missing=len(ours.index.difference(theirs.index)),
        extra=len(theirs.index.difference(ours.index)),
        mismatches=mismatches,
        examples=described,
    )


# ---------------------------------------------------------------------------------------------
# Command line: one peer per process


def main(argv: Sequence[str] | None = None) -> int:
    """Run one peer on ``--source``, write ``--output``, print its summary line; return 0."""
    parser = argparse.ArgumentParser(description="Run one benchmark peer.")
    parser.add_argument("peer", choices=PEERS + SPARK_COMMANDS)
    parser.add_argument("--source", required=True, help="Parquet file or folder")
    parser.add_argument(
        "--output", required=True, help="Parquet file to write (a folder for spark)"
    )
    parser.add_argument(
        "--date-format",
        action="append",
        default=None,
        help="tried in order (repeatable): a strptime format for pandas and duckdb (default "
        "'%%Y-%%m-%%d %%H:%%M:%%S'), a Spark pattern for spark (default 'yyyy-MM-dd HH:mm:ss')",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        type=Period.parse,
        metavar="START:END",
        help="excluded period, e.g. 2021-01-01:2021-12-31 (repeatable)",
    )
    args = parser.parse_args(argv)
    spark_peer = args.peer.startswith("spark")
    formats = args.date_format or ["yyyy-MM-dd HH:mm:ss" if spark_peer else "%Y-%m-%d %H:%M:%S"]
    started = time.perf_counter()
    if args.peer in SPARK_COMMANDS:
        spark = spark_session()
        spark.sparkContext.setLogLevel("ERROR")
        if args.peer == "spark-orders":
            table = spark_orders(spark, args.source, date_formats=formats)
        else:
            table = spark_features(spark.read.parquet(args.source), exclude=args.exclude)
        table.write.mode("overwrite").parquet(args.output)
        print(f"[{args.peer}] {time.perf_counter() - started:.1f} s", flush=True)
        return 0
    if args.peer == "spark":
        run_spark_peer(args.source, args.output, spark_formats=formats, exclude=args.exclude)
        rows_in, rows_out = parquet_rows(args.source), parquet_rows(args.output)
    elif args.peer == "pandas":
        rows_in, features = pandas_features(args.source, date_formats=formats, exclude=args.exclude)
        features.to_parquet(args.output, index=False)
        rows_out = len(features)
    else:
        rows_in, _ = duckdb_features(
            args.source, date_formats=formats, exclude=args.exclude, output=args.output
        )
        rows_out = parquet_rows(args.output)
    seconds = time.perf_counter() - started
    print(f"[{args.peer}] rows in {rows_in:,}, rows out {rows_out:,}, {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
