"""
Values as source files write them, each read by a ``Column -> Column`` expression that never
raises: text trimmed, ids as text, numbers with thousands separators or a decimal comma, and
dates in the configured formats, ISO 8601 with a ``T``, or nanoseconds since the epoch.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    LongType,
    StringType,
    TimestampNTZType,
    TimestampType,
)


def trimmed_text(column: Column) -> Column:
    """Trimmed string, empty -> null."""
    trimmed = F.trim(column.cast("string"))
    return F.when(trimmed != "", trimmed)


#: A number with thousands separators, per decimal mark: ``1,296`` and ``1,050.15`` for ``.``;
#: ``1.296``, ``1 296`` and ``1.050,15`` for ``,``. Groups of exactly three digits, so that
#: ``2,55`` is never read as 255.
GROUPED_NUMBER = {
    ".": r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?$",
    ",": r"^[+-]?[0-9]{1,3}([. ][0-9]{3})+(,[0-9]*)?$",
}


def as_double(column: Column, data_type, decimal: str = ".") -> Column:
    """
    A double, or null where the value is not a number (never an error). Text may carry
    thousands separators, and with ``decimal`` ``,`` a decimal comma (:data:`GROUPED_NUMBER`).
    """
    if not isinstance(data_type, StringType):
        return column.try_cast("double")
    text = trimmed_text(column)
    separators = "," if decimal == "." else "[. ]"
    plain = F.when(
        text.rlike(GROUPED_NUMBER[decimal]), F.regexp_replace(text, separators, "")
    ).otherwise(text)
    if decimal == ",":
        plain = F.when(~plain.contains("."), F.regexp_replace(plain, ",", "."))
    return plain.try_cast("double")


def number_problem(column: Column, data_type, decimal: str, otherwise: str) -> Column:
    """
    The detail of a rule on a number read by :func:`as_double`: ``not a number: '<text>'``
    where the source holds text that is not one, else ``otherwise``.
    """
    if not isinstance(data_type, StringType):
        return F.lit(otherwise)
    text = trimmed_text(column)
    unreadable = text.isNotNull() & as_double(column, data_type, decimal).isNull()
    return F.when(
        unreadable, F.concat(F.lit("not a number: '"), F.substring(text, 1, 40), F.lit("'"))
    ).otherwise(F.lit(otherwise))


def identifier(column: Column, data_type) -> Column:
    """An id as a string; integral floats (pandas' ``17850.0``) lose their ``.0``."""
    if isinstance(data_type, DoubleType | FloatType | DecimalType):
        return F.when(column == F.floor(column), column.cast("long").cast("string")).otherwise(
            trimmed_text(column)
        )
    return trimmed_text(column)


#: The smallest nanoseconds since the epoch taken for a timestamp (1973-03-03): below it an
#: integer is a number (``20110630``, epoch seconds), parsed as text with the date formats.
EPOCH_NANOS_FROM = 10**17


#: ISO 8601 with a ``T``: ``2011-12-09T12:50:00``, with fractions and an offset or ``Z``.
ISO_WITH_T = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)
#: A date written with slashes: two numbers of one or two digits, then the year.
SLASH_DATE = r"^([0-9]{1,2})/([0-9]{1,2})/[0-9]{4}"


def timestamp(column: Column, data_type, formats: list[str]) -> Column:
    """
    A timestamp: timestamps and dates are cast, ISO 8601 text with a ``T`` is cast, other text
    is parsed with the first of ``formats`` that matches the whole value (null where none
    does). An integer of at least
    :data:`EPOCH_NANOS_FROM` is nanoseconds since the epoch: a pandas or pyarrow Parquet
    timestamp, which the session reads as a long (``spark.sql.legacy.parquet.nanosAsLong``).
    """
    if isinstance(data_type, TimestampType | TimestampNTZType | DateType):
        return column.cast("timestamp")
    value = trimmed_text(column)
    iso = F.when(value.rlike(ISO_WITH_T), value.try_cast("timestamp"))
    parsed = F.coalesce(iso, *[F.try_to_timestamp(value, F.lit(fmt)) for fmt in formats])
    if isinstance(data_type, LongType):
        nanos = F.timestamp_micros(F.floor(column / 1000).cast("long"))
        return F.when(column >= EPOCH_NANOS_FROM, nanos).otherwise(parsed)
    return parsed
