"""
Helpers several test modules share: DataFrame equality as the tests compare frames, typed
frames from text rows, and the small Online Retail-shaped source the end-to-end tests run on.
"""

from __future__ import annotations

import csv

from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType, StructField, StructType, TimestampType


def assert_equal(actual: DataFrame, expected: DataFrame) -> None:
    """Equal rows in any order; nullability ignored."""
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def assert_close(actual: DataFrame, expected: DataFrame) -> None:
    """As :func:`assert_equal`, doubles within 1e-9."""
    assert_approx_df_equality(actual, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def frame(spark: SparkSession, rows: list[tuple], ddl: str) -> DataFrame:
    """Rows as a frame of schema ``ddl``; timestamp and date values are given as text."""
    schema = spark.createDataFrame([], ddl).schema
    as_text = StructType(
        [
            StructField(f.name, StringType(), True)
            if isinstance(f.dataType, TimestampType | DateType)
            else f
            for f in schema
        ]
    )
    df = spark.createDataFrame(rows, as_text)
    return df.select(*[F.col(f.name).cast(f.dataType) for f in schema])


RETAIL_HEADER = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


def invoice_lines() -> list[list]:
    """
    Fourteen customers buying six products once or twice a month, January to August 2011;
    customers 13 and 14 start in May. Customer 1 moves from the United Kingdom to France in
    July: after the backfill tests' date (2011-06-30).
    """
    rows = []
    for customer in range(1, 15):
        for month in range(1, 9):
            if (customer + month) % (1 + customer % 3) or (customer > 12 and month < 5):
                continue
            for visit in range(1 + customer % 2):
                day = (customer * 2 + visit * 11) % 27 + 1
                invoice = f"{month:02d}{customer:02d}{visit}"
                country = "France" if customer == 1 and month >= 7 else "United Kingdom"
                for product in sorted({(customer + month) % 6 + 1, (customer * month) % 6 + 1}):
                    quantity = 1 + (customer + month + product) % 3
                    rows.append(
                        [
                            invoice,
                            f"P{product}",
                            f"Product {product}",
                            quantity,
                            f"2011-{month:02d}-{day:02d} 10:{visit:02d}:00",
                            1.5 * product,
                            1000 + customer,
                            country,
                        ]
                    )
    return rows


def write_csv(path, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RETAIL_HEADER)
        writer.writerows(rows)
    return str(path)


#: Point in time does not depend on how tables are committed, and the delta-rs commits take a
#: quarter of the time of native Delta's on these small tables (CI time); test_cli, test_kill
#: and test_object_storage run the pipeline with native Delta.
BACKEND = "deltalake"


def settings(source: str, warehouse) -> list[str]:
    """The ``--set`` arguments of a run over :func:`invoice_lines` at ``source``: K fixed at 2."""
    return [
        "--set",
        f"warehouse.delta={BACKEND}",
        "--set",
        f"source.path={source}",
        "--set",
        "source.kind=invoice_lines",
        "--set",
        f"warehouse.path={warehouse}",
        "--set",
        "segmentation.k=2",
        "--set",
        "segmentation.features=[total_visits, total_spend, recency_days]",
        "--set",
        "segmentation.n_init=1",
    ]
