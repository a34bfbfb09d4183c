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
DATE_TEXT = "_date_text"
#: The file a row of a file source was read from (Spark's hidden metadata column).
SOURCE_FILE = "_metadata.file_path"

# Customer single view (table ``customer_features``, SPEC section 3)
AS_OF = "as_of"
TOTAL_VISITS = "total_visits"
TOTAL_SPEND = "total_spend"
TOTAL_ITEMS = "total_items"
FIRST_ORDER_DATE = "first_order_date"
LAST_ORDER_DATE = "last_order_date"
TENURE_WEEKS = "tenure_weeks"
ACTIVE_WEEKS = "active_weeks"
AVG_WEEKLY_VISITS = "avg_weekly_visits"
AVG_WEEKLY_SPEND = "avg_weekly_spend"
VISITS_PER_TENURE_WEEK = "visits_per_tenure_week"
AVG_BASKET_SPEND = "avg_basket_spend"
ARPU = "arpu"
AVG_UNIT_PRICE = "avg_unit_price"
AVG_BASKET_ITEMS = "avg_basket_items"
LAST_BASKET_SPEND = "last_basket_spend"
PREV1_BASKET_SPEND = "prev1_basket_spend"
PREV2_BASKET_SPEND = "prev2_basket_spend"
VISIT_SPAN_DAYS = "visit_span_days"
MTBP_DAYS = "mtbp_days"
RECENCY_DAYS = "recency_days"
ACTIVE_MONTHS = "active_months"
AVG_MONTHLY_SPEND = "avg_monthly_spend"
SPEND_TREND = "spend_trend"
RETURN_ORDERS = "return_orders"
RETURN_RATE = "return_rate"
RETURNED_AMOUNT = "returned_amount"
LTV_HISTORIC = "ltv_historic"
LTV_SIMPLE = "ltv_simple"
FREQUENCY = "frequency"
RECENCY = "recency"
T = "T"
MONETARY_VALUE = "monetary_value"
R_SCORE = "r_score"
F_SCORE = "f_score"
M_SCORE = "m_score"
RFM_SCORE = "rfm_score"
RFM_SEGMENT = "rfm_segment"

#: The columns of ``customer_features``, in table order (``features.customer_features``).
CUSTOMER_FEATURE_COLUMNS = [
    CUSTOMER_ID,
    AS_OF,
    TOTAL_VISITS,
    TOTAL_SPEND,
    TOTAL_ITEMS,
    DISTINCT_PRODUCTS,
    FIRST_ORDER_DATE,
    LAST_ORDER_DATE,
    TENURE_WEEKS,
    ACTIVE_WEEKS,
    AVG_WEEKLY_VISITS,
    AVG_WEEKLY_SPEND,
    VISITS_PER_TENURE_WEEK,
    AVG_BASKET_SPEND,
    ARPU,
    AVG_UNIT_PRICE,
    AVG_BASKET_ITEMS,
    LAST_BASKET_SPEND,
    PREV1_BASKET_SPEND,
    PREV2_BASKET_SPEND,
    VISIT_SPAN_DAYS,
    MTBP_DAYS,
    RECENCY_DAYS,
    ACTIVE_MONTHS,
    AVG_MONTHLY_SPEND,
    SPEND_TREND,
    RETURN_ORDERS,
    RETURN_RATE,
    RETURNED_AMOUNT,
    LTV_HISTORIC,
    LTV_SIMPLE,
    FREQUENCY,
    RECENCY,
    T,
    MONETARY_VALUE,
    R_SCORE,
    F_SCORE,
    M_SCORE,
    RFM_SCORE,
    RFM_SEGMENT,
    STORE_ID,
    COUNTRY,
    PRICE_SENSITIVITY,
    LIFESTAGE,
]

#: The columns of ``customer_features`` that are not numbers: ids, dates and labels.
NON_NUMERIC_CUSTOMER_FEATURES = frozenset(
    {
        CUSTOMER_ID,
        AS_OF,
        FIRST_ORDER_DATE,
        LAST_ORDER_DATE,
        RFM_SEGMENT,
        STORE_ID,
        COUNTRY,
        PRICE_SENSITIVITY,
        LIFESTAGE,
    }
)

#: The numeric columns of ``customer_features``, in table order: the names
#: ``segmentation.features``, ``segmentation.feature_weights`` and the naming rules may use.
NUMERIC_CUSTOMER_FEATURES = [
    c for c in CUSTOMER_FEATURE_COLUMNS if c not in NON_NUMERIC_CUSTOMER_FEATURES
]

# Customer lifetime value (tables ``customer_clv``, ``clv_models``, SPEC section 5)
P_ALIVE = "p_alive"
EXPECTED_SPEND = "expected_spend"
LTV_PREDICTED = "ltv_predicted"
MODEL = "model"
PARAMETER = "parameter"
PARAMETER_VALUE = "value"
SAMPLE_SIZE = "sample_size"
PERIOD_UNIT = "period"
LOG_LIKELIHOOD = "log_likelihood"
CONVERGED = "converged"

#: The per-customer values of ``customer_clv`` that ``segment`` joins onto the features it
#: profiles; the naming rules may test them.
CUSTOMER_VALUE_COLUMNS = [P_ALIVE, EXPECTED_SPEND, LTV_PREDICTED]


def expected_visits_column(horizon_days: int) -> str:
    """``expected_visits_<H>d``: the expected visits in the next ``horizon_days`` days."""
    return f"expected_visits_{horizon_days}d"


# Monthly sales (table ``monthly_sales``, SPEC section 7)
MONTH = "month"
ORDERS = "orders"
CUSTOMERS = "customers"
REVENUE = "revenue"
#: Columns that hold an amount of money: exported to the cent.
MONEY_COLUMNS = frozenset(
    {
        UNIT_PRICE,
        LINE_AMOUNT,
        ORDER_AMOUNT,
        PAID_AMOUNT,
        TOTAL_SPEND,
        AVG_WEEKLY_SPEND,
        AVG_BASKET_SPEND,
        ARPU,
        AVG_UNIT_PRICE,
        LAST_BASKET_SPEND,
        PREV1_BASKET_SPEND,
        PREV2_BASKET_SPEND,
        AVG_MONTHLY_SPEND,
        RETURNED_AMOUNT,
        LTV_HISTORIC,
        LTV_SIMPLE,
        MONETARY_VALUE,
        EXPECTED_SPEND,
        LTV_PREDICTED,
        REVENUE,
    }
)
AVG_ORDER_VALUE = "avg_order_value"
NEW_CUSTOMERS = "new_customers"
RETURNING_CUSTOMERS = "returning_customers"
RETURNS = "returns"
GROUPING = "grouping"

# Segmentation (tables ``kmeans_selection``, ``customer_segments``, ``segment_profiles``,
# ``feature_importance``, SPEC section 4)
K = "k"
SILHOUETTE = "silhouette"
TRAINING_COST = "training_cost"
SECONDS = "seconds"
CLUSTER = "cluster"
SEGMENT_NAME = "segment_name"
ACTION = "action"
DISTANCE = "distance"
SIZE = "size"
SHARE = "share"
FEATURE = "feature"
MEAN = "mean"
MEDIAN = "median"
INDEX = "index"
OVERALL_MEAN = "overall_mean"
IMPORTANCE = "importance"
RANK = "rank"

# Working columns of segmentation, never written
NUMERIC_PREFIX = "_num_"
IMPUTED_PREFIX = "_imp_"
TRANSFORMED_PREFIX = "_x_"
ASSEMBLED = "_assembled"
STANDARDIZED = "_standardized"
SCALED = "_scaled"
VALUE = "_value"
POSITION = "_pos"
CLUSTER_SIZE = "_cluster_size"
CLUSTER_MEAN = "_cluster_mean"
PREVIOUS_CLUSTER = "_previous_cluster"
TOTAL_VARIANCE = "_total_variance"
TOTAL_COUNT = "_total_count"

# Recommendations (tables ``segment_top_products``, ``customer_recommendations``,
# ``basket_rules``, ``recommendation_eval``, SPEC section 6)
BUYERS = "buyers"
PENETRATION = "penetration"
SCORE = "score"
ANTECEDENT = "antecedent"
CONSEQUENT = "consequent"
SUPPORT = "support"
CONFIDENCE = "confidence"
LIFT = "lift"
RECOMMENDER = "recommender"
TARGET = "target"
USERS = "users"
PRECISION_AT_K = "precision_at_k"
RECALL_AT_K = "recall_at_k"
MAP_AT_K = "map_at_k"
COVERAGE = "coverage"
CUTOFF_DATE = "cutoff_date"
TEST_END_DATE = "test_end_date"

# Working columns of recommend, never written
POPULATION = "_population"
PRIORITY = "_priority"
LIST_RANK = "_list_rank"
BASKET = "_basket"
BASKET_SIZE = "_basket_size"
ALL_ORDERS = "_all_orders"
ITEM_ORDERS = "_item_orders"
PAIR_ORDERS = "_pair_orders"
ANTECEDENT_ORDERS = "_antecedent_orders"
RULE_SIZE = "_rule_size"
MATCHED = "_matched"
SKIPPED_RANKS = "_skipped_ranks"
LIST_LENGTH = "_list_length"
HIT = "_hit"
HITS_SO_FAR = "_hits_so_far"
WANTED = "_wanted"
RELEVANT_COUNT = "_relevant_count"
NAME_COUNT = "_name_count"

# Segment migration (table ``segment_migration``, SPEC section 4); counts and shares are
# ``customers`` and ``share`` above
FROM_AS_OF = "from_as_of"
TO_AS_OF = "to_as_of"
FROM_SEGMENT = "from_segment"
TO_SEGMENT = "to_segment"

# Working columns of migration, never written
IN_FROM = "_in_from"
IN_TO = "_in_to"
