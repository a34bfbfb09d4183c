"""customer_analytics: customer single view, segmentation and recommendations on Spark.

Each module is one stage or one concept: ``config`` (validated YAML), ``session`` (SparkSession
builder), ``tables`` (Delta tables with or without the Delta Spark extension), ``ingest``
(sources to canonical order lines), and ``cli`` (the ``customer-analytics`` command).
"""

__version__ = "0.1.0"
