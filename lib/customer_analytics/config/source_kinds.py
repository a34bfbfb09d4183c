"""
The four source kinds and their defaults: the columns each expects, the date formats tried and
which cleaning rules start switched on (SPEC sections 2 and 10).

Plain data, no Spark: :mod:`customer_analytics.config.schema` validates ``source`` against these
before any session starts, and :mod:`customer_analytics.stages.ingest` reads them to map and check a
file. ``source.columns``, ``source.date_formats`` and ``source.rules`` override them per run.
"""

from __future__ import annotations

from typing import Literal

SourceKind = Literal["product_json", "invoice_lines", "basket_lines", "transactions"]

#: Canonical column -> column in the source file, per source kind (SPEC section 2 and 10).
DEFAULT_COLUMNS: dict[str, dict[str, str]] = {
    "product_json": {
        "order_id": "transaction_id",
        "customer_id": "customer_id",
        "order_ts": "transaction_date",
        "store_id": "location",
        "order_amount": "total_amt",
        "discount": "discount",
        "paid_amount": "paid_amt",
        "product_json": "product_json",
    },
    "invoice_lines": {
        "order_id": "InvoiceNo",
        "product_id": "StockCode",
        "product_name": "Description",
        "quantity": "Quantity",
        "order_ts": "InvoiceDate",
        "unit_price": "UnitPrice",
        "customer_id": "CustomerID",
        "country": "Country",
    },
    "basket_lines": {
        "order_id": "BASKET_ID",
        "customer_id": "CUST_CODE",
        "order_ts": "SHOP_DATE",
        "product_id": "PROD_CODE",
        "quantity": "QUANTITY",
        "line_amount": "SPEND",
        "store_id": "STORE_CODE",
        "price_sensitivity": "CUST_PRICE_SENSITIVITY",
        "lifestage": "CUST_LIFESTAGE",
    },
    "transactions": {
        "customer_id": "customer_id",
        "order_ts": "date",
        "order_amount": "amount",
        "order_id": "order_id",
        "quantity": "quantity",
        "product_id": "product_id",
    },
}

#: Canonical columns that must be present in the file, per kind; the others are optional.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "product_json": ("order_id", "customer_id", "order_ts", "order_amount", "product_json"),
    "invoice_lines": (
        "order_id",
        "product_id",
        "quantity",
        "order_ts",
        "unit_price",
        "customer_id",
    ),
    "basket_lines": (
        "order_id",
        "customer_id",
        "order_ts",
        "product_id",
        "quantity",
        "line_amount",
    ),
    "transactions": ("customer_id", "order_ts", "order_amount"),
}

#: Canonical columns a kind accepts but does not require ("order_date" may replace "order_ts").
OPTIONAL_EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "product_json": ("country",),
    "invoice_lines": ("store_id",),
    "basket_lines": ("order_date", "country"),
    "transactions": ("order_date", "store_id", "country"),
}

#: Date formats tried in order (Spark datetime patterns); the first that parses wins. ISO
#: 8601 text with a ``T`` (fractions and offsets too) is read besides these. Dates written with
#: slashes take the formats of their order (:data:`SLASH_DATE_FORMATS`), which ingest finds
#: from the values.
DEFAULT_DATE_FORMATS: dict[str, list[str]] = {
    "product_json": ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd", "yyyyMMdd"],
    "invoice_lines": ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd", "yyyyMMdd"],
    "basket_lines": ["yyyyMMdd", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd"],
    "transactions": ["yyyy-MM-dd", "yyyy-MM-dd HH:mm:ss", "yyyyMMdd"],
}

#: ``d/M/yyyy`` or ``M/d/yyyy`` dates, with or without a time (one or two digits each).
SlashOrder = Literal["day_first", "month_first"]
SLASH_DATE_FORMATS: dict[str, list[str]] = {
    "day_first": ["d/M/yyyy H:mm:ss", "d/M/yyyy H:mm", "d/M/yyyy"],
    "month_first": ["M/d/yyyy H:mm:ss", "M/d/yyyy H:mm", "M/d/yyyy"],
}

#: The slash order of each kind's reference data (the seed writes day first, UCI Online Retail
#: and CDNOW month first): used where the values were not looked at (``ingest.prepare`` on
#: its own). The ingest job decides from the values, and refuses a file that cannot tell.
DEFAULT_SLASH_ORDER: dict[str, SlashOrder] = {
    "product_json": "day_first",
    "invoice_lines": "month_first",
    "basket_lines": "day_first",
    "transactions": "month_first",
}

#: Whether rule ``exact_duplicate`` (identical input rows kept once) is on when
#: ``source.rules.exact_duplicate`` is not set. A row of the other kinds carries an order or
#: basket id, so an identical copy is a double export. A ``transactions`` row is customer, date
#: and amount, often without an order id: two identical rows are two purchases of the same
#: amount on the same day (CDNOW has 255 such rows, and ``lifetimes`` counts every one).
EXACT_DUPLICATE_RULE: dict[str, bool] = {
    "product_json": True,
    "invoice_lines": True,
    "basket_lines": True,
    "transactions": False,
}
