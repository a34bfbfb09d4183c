"""
The evaluation's policy (``recommend.evaluation``): where the time split falls, which days are
tested, and which segmentation is refitted on the training period. The metrics themselves are
in :mod:`customer_analytics.stages.recommend`.

The test days are ``cutoff`` .. ``cutoff + test_weeks - 1 day``, never past the run's
``as_of``: an evaluation as of a past date reads nothing after it, whatever the cutoff. The
training period is the run's period ending the day before the cutoff (same lookback and
excluded periods); excluded periods are left out of the test days too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame

from customer_analytics.config.schema import EvaluationConfig, SegmentationConfig
from customer_analytics.core.errors import InputError
from customer_analytics.stages.period import Period


@dataclass(frozen=True)
class EvaluationPlan:
    """
    Attributes
    ----------
    cutoff : date
        The first test day.
    test_end : date
        The last test day: ``cutoff + test_weeks`` weeks - 1 day, or ``as_of`` when earlier.
    training : Period
        The run's period ending the day before ``cutoff``.
    testing : Period
        The test days, with the run's excluded periods.
    """

    cutoff: date
    test_end: date
    training: Period
    testing: Period

    @classmethod
    def of(cls, period: Period, settings: EvaluationConfig) -> EvaluationPlan:
        """
        The plan of a run: ``settings.cutoff``, else ``test_weeks`` before the day after
        ``period.as_of``.

        Raises
        ------
        InputError
            When the cutoff is after ``as_of``: there would be nothing to test on.
        """
        as_of = period.as_of
        cutoff = settings.cutoff or as_of + timedelta(days=1) - timedelta(weeks=settings.test_weeks)
        if cutoff > as_of:
            raise InputError(
                f"recommend.evaluation.cutoff {cutoff} is after the last day observed ({as_of}): "
                "there is nothing to test on"
            )
        test_end = min(cutoff + timedelta(weeks=settings.test_weeks, days=-1), as_of)
        testing = Period(
            test_end,
            lookback_days=(test_end - cutoff).days + 1,
            exclude_periods=period.exclude_periods,
        )
        return cls(cutoff, test_end, period.ending(cutoff - timedelta(days=1)), testing)

    def tested(self, df: DataFrame) -> DataFrame:
        """Rows of ``df`` (needs ``order_date``) on the test days."""
        return self.testing.modelled(df)

    def describe(self, settings: EvaluationConfig) -> str:
        line = f"train up to {self.training.as_of}, test {self.cutoff}..{self.test_end}"
        full_end = self.cutoff + timedelta(weeks=settings.test_weeks, days=-1)
        if self.test_end < full_end:
            line += f" (cut at as_of; {settings.test_weeks} weeks would end {full_end})"
        return line


def refit_settings(seg_cfg: SegmentationConfig, saved_k: int | None) -> SegmentationConfig:
    """
    The segmentation the evaluation refits on the training period: ``segmentation.k`` if set,
    else ``saved_k`` (the K of the latest saved model, so that it measures the recommenders,
    not a new choice of K), else the configured sweep.
    """
    if seg_cfg.k is not None or saved_k is None:
        return seg_cfg
    return seg_cfg.model_copy(update={"k": int(saved_k)})
