"""The evaluation's split: cutoff, test days capped at as_of, and the refit's K."""

from __future__ import annotations

from datetime import date

import pytest

from customer_analytics.config.schema import EvaluationConfig, ExcludePeriod, SegmentationConfig
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.stages.evaluation import EvaluationPlan, refit_settings
from customer_analytics.stages.period import Period


def test_the_default_cutoff_leaves_test_weeks_up_to_as_of():
    plan = EvaluationPlan.of(Period(date(2024, 3, 31)), EvaluationConfig(test_weeks=2))
    # two weeks ending 31 March: 18 .. 31 March
    assert (plan.cutoff, plan.test_end, plan.training.as_of) == (
        date(2024, 3, 18),
        date(2024, 3, 31),
        date(2024, 3, 17),
    )


def test_an_explicit_cutoff_never_tests_past_as_of():
    settings = EvaluationConfig(cutoff=date(2024, 3, 25), test_weeks=4)
    plan = EvaluationPlan.of(Period(date(2024, 3, 31)), settings)
    assert (plan.cutoff, plan.test_end) == (date(2024, 3, 25), date(2024, 3, 31))
    assert "cut at as_of; 4 weeks would end 2024-04-21" in plan.describe(settings)


def test_a_cutoff_after_as_of_is_an_input_error():
    settings = EvaluationConfig(cutoff=date(2024, 4, 1))
    with pytest.raises(InputError, match="cutoff 2024-04-01 is after the last day observed"):
        EvaluationPlan.of(Period(date(2024, 3, 31)), settings)


def test_test_days_are_the_window_without_excluded_periods(spark):
    excluded = ExcludePeriod(start=date(2024, 3, 20), end=date(2024, 3, 22))
    period = Period(date(2024, 3, 31), exclude_periods=[excluded])
    settings = EvaluationConfig(cutoff=date(2024, 3, 18), test_weeks=1)
    days = [date(2024, 3, d) for d in (17, 18, 21, 24, 25)]
    rows = spark.createDataFrame([(d,) for d in days], f"{C.ORDER_DATE} date")

    plan = EvaluationPlan.of(period, settings)

    tested = sorted(r[0] for r in plan.tested(rows).collect())
    assert tested == [date(2024, 3, 18), date(2024, 3, 24)]
    assert plan.training.exclude_periods == (excluded,)


def test_the_refit_takes_the_configured_k_then_the_saved_one():
    assert refit_settings(SegmentationConfig(k=4), saved_k=6).k == 4
    assert refit_settings(SegmentationConfig(), saved_k=6).k == 6
    assert refit_settings(SegmentationConfig(), saved_k=None).k is None
