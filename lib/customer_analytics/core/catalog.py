"""
The names of every table and folder the jobs write under ``warehouse.path``, in one place:
the jobs, the scripts and the tests import them from here.

Each table ``T`` lives at ``<warehouse.path>/T`` (SPEC section 2); the folders beside them start
with ``_`` so that no table name can take theirs.
"""

ORDER_LINES = "order_lines"
ORDERS = "orders"
CUSTOMERS = "customers"
QUARANTINE = "quarantine"
INGEST_RECONCILIATION = "ingest_reconciliation"
CUSTOMER_FEATURES = "customer_features"
MONTHLY_SALES = "monthly_sales"
CUSTOMER_CLV = "customer_clv"
CLV_MODELS = "clv_models"
KMEANS_SELECTION = "kmeans_selection"
CUSTOMER_SEGMENTS = "customer_segments"
SEGMENT_PROFILES = "segment_profiles"
SEGMENT_HISTORY = "segment_history"
SEGMENT_MIGRATION = "segment_migration"
FEATURE_IMPORTANCE = "feature_importance"
SEGMENT_TOP_PRODUCTS = "segment_top_products"
CUSTOMER_RECOMMENDATIONS = "customer_recommendations"
BASKET_RULES = "basket_rules"
RECOMMENDATION_EVAL = "recommendation_eval"
RUNS = "runs"

#: Every table a ``pipeline`` run writes, in the order of its stages.
PIPELINE_TABLES = (
    ORDER_LINES,
    ORDERS,
    CUSTOMERS,
    QUARANTINE,
    INGEST_RECONCILIATION,
    CUSTOMER_FEATURES,
    MONTHLY_SALES,
    CUSTOMER_CLV,
    CLV_MODELS,
    KMEANS_SELECTION,
    CUSTOMER_SEGMENTS,
    SEGMENT_PROFILES,
    SEGMENT_HISTORY,
    SEGMENT_MIGRATION,
    FEATURE_IMPORTANCE,
    SEGMENT_TOP_PRODUCTS,
    BASKET_RULES,
    CUSTOMER_RECOMMENDATIONS,
    RECOMMENDATION_EVAL,
    RUNS,
)

#: The saved segmentation models, one folder per fitting run.
MODELS_FOLDER = "_models/segmentation"
#: A cluster run's checkpoints, one folder per run, removed when the run ends.
CHECKPOINTS_FOLDER = "_checkpoints"
#: The report when ``report.path`` is not set.
REPORT_FOLDER = "_report"
#: The scratch tables of ``spark.materialize: table``, one folder per run (by path), dropped
#: when the run ends.
SCRATCH_FOLDER = "_scratch"
#: The prefix of a scratch table's name (tables by name): ``scratch_<run id>_<n>``.
SCRATCH_PREFIX = "scratch_"
