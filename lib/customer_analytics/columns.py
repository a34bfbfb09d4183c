"""Every column name the package writes or reads, defined once.

Source-specific names never appear here: they are mapped to these canonical names at ingest from
the YAML configuration (``source.columns``).
"""

# Canonical order model (SPEC section 2)
SOURCE = "source"
ORDER_ID = "order_id"
CUSTOMER_ID = "customer_id"
ORDER_TS = "order_ts"
ORDER_DATE = "order_date"
ORDER_MONTH = "order_month"
STORE_ID = "store_id"
COUNTRY = "country"
PRODUCT_ID = "product_id"
PRODUCT_NAME = "product_name"
QUANTITY = "quantity"
UNIT_PRICE = "unit_price"
LINE_AMOUNT = "line_amount"
IS_RETURN = "is_return"
ORDER_AMOUNT = "order_amount"
DISCOUNT = "discount"
PAID_AMOUNT = "paid_amount"
ITEM_COUNT = "item_count"
DISTINCT_PRODUCTS = "distinct_products"
PRODUCT_JSON = "product_json"
PRICE_SENSITIVITY = "price_sensitivity"
LIFESTAGE = "lifestage"
FIRST_SEEN = "first_seen"
LAST_SEEN = "last_seen"

# Quarantine and reconciliation
REASON = "reason"
DETAIL = "detail"
RAW_RECORD = "raw_record"
RUN_ID = "run_id"
INGESTED_AT = "ingested_at"
CATEGORY = "category"
ROWS = "rows"

# Run records (table ``runs``)
JOB = "job"
ARGUMENTS = "arguments"
STARTED_AT = "started_at"
ENDED_AT = "ended_at"
STATUS = "status"
ROWS_IN = "rows_in"
ROWS_OUT = "rows_out"
STAGES = "stages"
ERROR = "error"

# Working columns of ingest, never written to a table
ITEMS = "_items"
COPIES = "_copies"
LINE_COUNT = "_line_count"
ORDER_IS_RETURN = "_order_is_return"
LINES = "lines"
COPIES_OUT = "copies"
SOURCE_PREFIX = "_src_"
RULE_FLAG_PREFIX = "_fails_"
