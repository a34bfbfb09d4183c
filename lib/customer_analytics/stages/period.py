"""
The period a run models: the last day observed (``as_of``), an optional lookback, and the
periods known to be incomplete (``source.exclude_periods``). One :class:`Period` is built per
run and every modelling input goes through it: the customer single view, the segments fitted
on it, the top lists, basket rules and customer lists, and the evaluation's training period.
A run as of a past date therefore sees exactly what a run on that day would have seen.

Examples
--------
>>> period = Period(date(2011, 6, 30), lookback_days=365)
>>> period.modelled(orders)  # the rows features and recommendations use
>>> period.recent(purchases, months=2)  # the top lists' window
>>> period.ending(date(2011, 5, 31))  # the same lookback and exclusions, an earlier day
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from customer_analytics.config.schema import Config, ExcludePeriod
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError


@dataclass(frozen=True)
class Period:
    """
    Parameters
    ----------
    as_of : date
        The last day observed, inclusive: nothing dated after it is ever read.
    lookback_days : int, optional
        Model only the last ``lookback_days`` days up to ``as_of`` (``as_of`` is day 1).
    exclude_periods : iterable of ExcludePeriod
        Date ranges (inclusive) left out of modelling.
    """

    as_of: date
    lookback_days: int | None = None
    exclude_periods: tuple[ExcludePeriod, ...] = ()

    def __post_init__(self) -> None:
        if self.lookback_days is not None and self.lookback_days < 1:
            raise ValueError(f"lookback_days must be >= 1, got {self.lookback_days}")
        object.__setattr__(self, "exclude_periods", tuple(self.exclude_periods))

    @classmethod
    def of(cls, config: Config, as_of: date) -> Period:
        """The period of a configuration (``features.lookback_days``, excluded periods)."""
        return cls(
            as_of,
            lookback_days=config.features.lookback_days,
            exclude_periods=config.source.exclude_periods,
        )

    def ending(self, as_of: date) -> Period:
        """The same lookback and exclusions, up to another day."""
        return replace(self, as_of=as_of)

    def observed(self, df: DataFrame) -> DataFrame:
        """Rows of ``df`` (needs ``order_date``) on or before ``as_of``: all that was known."""
        return df.filter(F.col(C.ORDER_DATE) <= F.lit(self.as_of))

    def modelled(self, df: DataFrame) -> DataFrame:
        """Observed rows inside the lookback and outside every excluded period."""
        return df.filter(self.modelled_rows())

    def recent(self, df: DataFrame, *, months: int) -> DataFrame:
        """
        Modelled rows of the ``months`` months up to ``as_of``: ``(as_of - months, as_of]``.
        Month arithmetic is Spark's ``add_months``: one month before 2024-03-31 is 2024-02-29.
        """
        if months < 1:
            raise ValueError(f"months must be >= 1, got {months}")
        start = F.add_months(F.lit(self.as_of), -months)
        return df.filter(self.modelled_rows() & (F.col(C.ORDER_DATE) > start))

    def modelled_rows(self) -> Column:
        """True for the rows :meth:`modelled` keeps (needs ``order_date``)."""
        day = F.col(C.ORDER_DATE)
        keep = day <= F.lit(self.as_of)
        if self.lookback_days is not None:
            keep &= day > F.date_sub(F.lit(self.as_of), self.lookback_days)
        for excluded in self.exclude_periods:
            keep &= ~day.between(F.lit(excluded.start), F.lit(excluded.end))
        return keep

    def describe(self) -> str:
        """One line for the logs, e.g. ``as of 2011-06-30, 2021-01-01..2021-12-31 excluded``."""
        parts = [f"as of {self.as_of}"]
        if self.lookback_days is not None:
            parts.append(f"last {self.lookback_days} days")
        parts += [f"{p.start}..{p.end} excluded" for p in self.exclude_periods]
        return ", ".join(parts)


def single_as_of(table: DataFrame, name: str, *, wanted: date | None = None) -> date:
    """
    The one ``as_of`` of a table an earlier stage wrote for one date (a tiny aggregation).

    Parameters
    ----------
    table : DataFrame
        Needs ``as_of``.
    name : str
        The table's name, for the messages.
    wanted : date, optional
        The date the run asks for (``--as-of``): the table's must equal it.

    Raises
    ------
    InputError
        The table has no ``as_of`` column, no row, rows of several dates, or not ``wanted``'s;
        the message names the table and what to run.
    """
    if C.AS_OF not in table.columns:
        raise InputError(
            f"table {name!r} has no {C.AS_OF} column (written by an older version): run the "
            "stages before this one again"
        )
    low, high = table.agg(F.min(C.AS_OF), F.max(C.AS_OF)).first()
    if low is None:
        raise InputError(f"table {name!r} is empty: run the stage that writes it first")
    if low != high:
        raise InputError(
            f"table {name!r} holds several dates ({low} .. {high}): run the stages before this "
            "one for a single --as-of"
        )
    if wanted is not None and wanted != low:
        raise InputError(
            f"table {name!r} is as of {low}, not {wanted}: run the stages before this one "
            f"with --as-of {wanted} first"
        )
    return low


def last_order_as_of(orders: DataFrame, wanted: date | None = None) -> date:
    """
    ``wanted`` (``--as-of`` or ``features.as_of``), else the date of the last order.

    Raises
    ------
    InputError
        ``wanted`` is None and ``orders`` has no row.
    """
    if wanted is not None:
        return wanted
    last = orders.agg(F.max(C.ORDER_DATE)).first()[0]
    if last is None:
        raise InputError("orders is empty: there is no last order date to use as as_of")
    return last
