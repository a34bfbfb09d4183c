"""The period a run models: as_of, lookback and excluded periods, on a few dated rows."""

from __future__ import annotations

from datetime import date

import pytest

from customer_analytics.config.schema import ExcludePeriod
from customer_analytics.core import columns as C
from customer_analytics.stages.period import Period

DAYS = {
    "jan31": date(2024, 1, 31),
    "feb29": date(2024, 2, 29),
    "mar01": date(2024, 3, 1),
    "mar15": date(2024, 3, 15),
    "mar31": date(2024, 3, 31),
    "apr01": date(2024, 4, 1),
}
MID_MARCH = ExcludePeriod(start=date(2024, 3, 10), end=date(2024, 3, 20))


@pytest.fixture(scope="module")
def rows(spark):
    return spark.createDataFrame(
        [(name, day) for name, day in DAYS.items()], f"name string, {C.ORDER_DATE} date"
    )


def names(df) -> list[str]:
    return sorted(r["name"] for r in df.collect())


def test_observed_rows_end_at_as_of_whatever_the_exclusions(rows):
    period = Period(date(2024, 3, 31), lookback_days=2, exclude_periods=[MID_MARCH])
    assert names(period.observed(rows)) == ["feb29", "jan31", "mar01", "mar15", "mar31"]


def test_modelled_rows_skip_excluded_periods(rows):
    period = Period(date(2024, 3, 31), exclude_periods=[MID_MARCH])
    assert names(period.modelled(rows)) == ["feb29", "jan31", "mar01", "mar31"]


def test_a_lookback_counts_as_of_as_its_first_day(rows):
    # 31 days back from 31 March: 1 March .. 31 March
    assert names(Period(date(2024, 3, 31), lookback_days=31).modelled(rows)) == [
        "mar01",
        "mar15",
        "mar31",
    ]


def test_recent_months_follow_add_months(rows):
    # one month before 31 March is 29 February (leap year): the window starts after it
    period = Period(date(2024, 3, 31), exclude_periods=[MID_MARCH])
    assert names(period.recent(rows, months=1)) == ["mar01", "mar31"]


def test_ending_keeps_the_lookback_and_exclusions(rows):
    period = Period(date(2024, 4, 1), lookback_days=40, exclude_periods=[MID_MARCH])
    earlier = period.ending(date(2024, 3, 1))
    assert (earlier.lookback_days, earlier.exclude_periods) == (40, (MID_MARCH,))
    # 40 days back from 1 March: 22 January .. 1 March
    assert names(earlier.modelled(rows)) == ["feb29", "jan31", "mar01"]


def test_bad_lookback_and_months_are_refused(rows):
    with pytest.raises(ValueError, match="lookback_days must be >= 1, got 0"):
        Period(date(2024, 3, 31), lookback_days=0)
    with pytest.raises(ValueError, match="months must be >= 1, got 0"):
        Period(date(2024, 3, 31)).recent(rows, months=0)


def test_describe_names_every_restriction():
    period = Period(date(2024, 3, 31), lookback_days=90, exclude_periods=[MID_MARCH])
    assert period.describe() == "as of 2024-03-31, last 90 days, 2024-03-10..2024-03-20 excluded"
