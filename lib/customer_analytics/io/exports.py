"""
CSV exports of the gold tables for BI tools (Tableau, as seed 001 used, or Power BI).

:func:`for_csv` makes a table safe to open in a spreadsheet: a text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read as a formula (CSV
injection), so it gets a leading apostrophe, which spreadsheets show as text. Columns that CSV
cannot hold (arrays, maps, structs) become JSON text first. Numbers are left as numbers: a
negative amount is not a formula.

:class:`CsvExport` writes one DataFrame as one UTF-8 file with a header, quoted the way
spreadsheets read it (RFC 4180: a quote inside a field is doubled). Spark writes the rows, in
one task, into a folder beside the target; the single part file is then moved to the target,
through the Hadoop file system, so a report on object storage works too. No row reaches the
driver.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StringType, StructType

from customer_analytics.core.paths import join
from customer_analytics.io.filesystem import FileSystem

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: What a neutralised cell starts with.
TEXT_MARK = "'"


def neutralised(text: Column) -> Column:
    """``text`` with :data:`TEXT_MARK` before a value that starts like a formula."""
    starts_like_formula = text.substr(1, 1).isin(*FORMULA_PREFIXES)
    return F.when(starts_like_formula, F.concat(F.lit(TEXT_MARK), text)).otherwise(text)


def for_csv(df: DataFrame) -> DataFrame:
    """``df`` with nested columns as JSON text and every text cell neutralised; same order."""
    columns = []
    for field in df.schema.fields:
        if isinstance(field.dataType, ArrayType | MapType | StructType):
            columns.append(neutralised(F.to_json(F.col(field.name))).alias(field.name))
        elif isinstance(field.dataType, StringType):
            columns.append(neutralised(F.col(field.name)).alias(field.name))
        else:
            columns.append(F.col(field.name))
    return df.select(*columns)


class CsvExport:
    """Write DataFrames as single CSV files under one folder (local or object storage)."""

    def __init__(self, fs: FileSystem, folder: str) -> None:
        self._fs = fs
        self._folder = folder

    def write(self, name: str, df: DataFrame) -> str:
        """
        Write ``df`` (neutralised by :func:`for_csv`) to ``<folder>/<name>.csv``, replacing
        it; return the file's path.
        """
        target = join(self._folder, f"{name}.csv")
        staging = join(self._folder, f"_staging-{name}")
        self._fs.delete(staging)
        (
            for_csv(df)
            .coalesce(1)
            .write.mode("overwrite")
            .option("header", "true")
            .option("encoding", "UTF-8")
            .option("quote", '"')
            .option("escape", '"')
            .option("lineSep", "\n")
            .csv(staging)
        )
        parts = [f for f in self._fs.list_files(staging) if f.startswith("part-")]
        if len(parts) != 1:
            raise RuntimeError(f"expected one CSV part file in {staging}, found {len(parts)}")
        self._fs.move(join(staging, parts[0]), target)
        self._fs.delete(staging)
        return target
