"""
Customer lifetime value (SPEC section 5): BG/NBD and Gamma-Gamma fitted on the BTYD summary of
``customer_features``, then every customer scored in Spark.

Method
------
1. :meth:`ClvModel.fit` takes the four summary columns (``frequency``, ``recency``, ``T``,
   ``monetary_value``, in the period unit of ``clv.period``) of every customer, or of a seeded
   sample of about ``clv.sample_size``, to the driver as Arrow: four numbers a customer, never
   order-level data. There :mod:`customer_analytics.stages.btyd` fits BG/NBD (``r``, ``alpha``,
   ``a``, ``b``) on all of them and Gamma-Gamma (``p``, ``q``, ``gamma``) on those with
   ``frequency > 0`` and ``monetary_value > 0``, as the model requires.
2. :meth:`ClvModel.score` applies the fitted parameters to every customer with
   ``mapInPandas`` (numpy on Arrow batches, :mod:`customer_analytics.stages.btyd`'s closed forms).

Customers the models do not describe
------------------------------------
- No repeat visit (``frequency`` 0): ``p_alive`` is 1 (BG/NBD: a customer can only drop out
  right after a repeat purchase) and ``expected_spend`` is the population mean spend per visit,
  ``p * gamma / (q - 1)``.
- Repeat visits without positive spend (``monetary_value <= 0``, e.g. free orders): not in the
  Gamma-Gamma fit; ``expected_spend`` is the population mean, as for a customer without repeat
  visits. Their visits are still counted by BG/NBD.
- No summary (a customer with returns only has no visits): every value is null.

Outputs
-------
- ``customer_clv``: ``customer_id``, ``as_of``, ``p_alive``, ``expected_visits_<H>d`` for each
  of ``clv.horizons_days``, ``expected_spend`` (the Gamma-Gamma conditional mean spend per
  visit) and ``ltv_predicted`` (expected spend over ``clv.ltv_horizon_days``, discounted by
  ``clv.discount_rate`` per 30-day step).
- ``clv_models``: the parameters in long form, one row per (``model``, ``parameter``), with
  ``run_id``, ``as_of``, ``period``, ``sample_size``, ``log_likelihood`` and ``converged``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from customer_analytics.config.schema import ClvConfig
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.stages import btyd
from customer_analytics.stages.features import PERIOD_DAYS

#: The BTYD summary columns of ``customer_features`` the models read.
SUMMARY = [C.FREQUENCY, C.RECENCY, C.T, C.MONETARY_VALUE]

#: Days in one discounting step of ``ltv_predicted``.
STEP_DAYS = 30
#: Runtime settings the caller sets around :meth:`ClvModel.fit`: the summary reaches the driver
#: through Arrow (a few numbers per customer, but millions of customers).
FIT_SETTINGS = {"spark.sql.execution.arrow.pyspark.enabled": "true"}

MODELS_SCHEMA = T.StructType(
    [
        T.StructField(C.RUN_ID, T.StringType(), False),
        T.StructField(C.MODEL, T.StringType(), False),
        T.StructField(C.PARAMETER, T.StringType(), False),
        T.StructField(C.PARAMETER_VALUE, T.DoubleType(), False),
        T.StructField(C.AS_OF, T.DateType(), False),
        T.StructField(C.PERIOD_UNIT, T.StringType(), False),
        T.StructField(C.SAMPLE_SIZE, T.LongType(), False),
        T.StructField(C.LOG_LIKELIHOOD, T.DoubleType(), False),
        T.StructField(C.CONVERGED, T.BooleanType(), False),
    ]
)


def clv_schema(horizons_days: list[int]) -> T.StructType:
    """The schema of ``customer_clv`` for the given horizons."""
    values = [C.P_ALIVE, *map(C.expected_visits_column, horizons_days)]
    return T.StructType(
        [
            T.StructField(C.CUSTOMER_ID, T.StringType(), False),
            T.StructField(C.AS_OF, T.DateType(), False),
            *[T.StructField(name, T.DoubleType(), True) for name in values],
            T.StructField(C.EXPECTED_SPEND, T.DoubleType(), True),
            T.StructField(C.LTV_PREDICTED, T.DoubleType(), True),
        ]
    )


@dataclass(frozen=True)
class ClvModel:
    """
    Fitted BG/NBD and Gamma-Gamma models of one ``as_of``, and how to score with them.

    Attributes
    ----------
    bgnbd, gamma_gamma : btyd.FitResult
        The fits (parameters, log-likelihood, convergence, customers used).
    as_of : date
        The ``as_of`` of the summary they were fitted on.
    period : {"day", "week"}
        The time unit of ``recency``, ``T`` and the BG/NBD ``alpha``.
    seconds : float
        Wall-clock seconds of collecting the summary and fitting.
    """

    bgnbd: btyd.FitResult
    gamma_gamma: btyd.FitResult
    as_of: date
    period: str
    seconds: float

    @classmethod
    def fit(cls, customer_features: DataFrame, settings: ClvConfig) -> ClvModel:
        """
        Fit both models on the summary of ``customer_features`` (one ``as_of``).

        Parameters
        ----------
        customer_features : DataFrame
            ``as_of``, ``first_order_date`` and the :data:`SUMMARY` columns in
            ``settings.period`` units (as ``features`` wrote them with the same ``clv.period``;
            ``T`` is checked against the dates).
        settings : ClvConfig
            ``penalizer`` (BG/NBD), ``spend_penalizer`` (Gamma-Gamma), ``sample_size``,
            ``seed``.

        Returns
        -------
        ClvModel
            Possibly not converged: see :meth:`require_converged`.

        Raises
        ------
        InputError
            One line: a summary column is missing, the table holds several ``as_of``, its ``T``
            is in another period unit, or the summary is too small or too degenerate to fit
            (what to change is in the message).
        """
        needed = [C.AS_OF, C.FIRST_ORDER_DATE, *SUMMARY]
        missing = [c for c in needed if c not in customer_features.columns]
        if missing:
            raise InputError(f"customer_features lacks {', '.join(missing)}: run features first")
        started = time.perf_counter()
        summary, as_of = _fitting_summary(customer_features, settings)
        arrays = [summary[c].to_numpy(dtype=float) for c in SUMMARY]
        frequency, recency, T_, monetary = arrays
        try:
            bgnbd = btyd.fit_bgnbd(frequency, recency, T_, penalizer=settings.penalizer)
            spend = btyd.fit_gamma_gamma(frequency, monetary, penalizer=settings.spend_penalizer)
        except btyd.FitError as exc:
            raise InputError(f"clv: {exc}; or leave the stage out (pipeline --skip clv)") from exc
        return cls(bgnbd, spend, as_of, settings.period, time.perf_counter() - started)

    @property
    def converged(self) -> bool:
        """Whether both fits converged."""
        return self.bgnbd.converged and self.gamma_gamma.converged

    def require_converged(self) -> ClvModel:
        """
        Return this model if both fits converged.

        Raises
        ------
        InputError
            One line naming the fit that did not converge and the setting to change.
        """
        try:
            self.bgnbd.require_converged()
            self.gamma_gamma.require_converged()
        except btyd.FitError as exc:
            raise InputError(f"clv: {exc}") from exc
        return self

    def parameter_rows(self, run_id: str) -> list[tuple]:
        """The ``clv_models`` rows (:data:`MODELS_SCHEMA`): one per model and parameter."""
        return [
            (
                run_id,
                fit.params.model,
                name,
                value,
                self.as_of,
                self.period,
                fit.sample_size,
                fit.log_likelihood,
                fit.converged,
            )
            for fit in (self.bgnbd, self.gamma_gamma)
            for name, value in fit.params.as_dict().items()
        ]

    def describe(self) -> list[str]:
        """Lines for the job's output: each model's parameters, customers and log-likelihood."""
        lines = []
        for fit in (self.bgnbd, self.gamma_gamma):
            values = ", ".join(f"{k} {v:.4g}" for k, v in fit.params.as_dict().items())
            state = "converged" if fit.converged else f"NOT converged ({fit.message})"
            lines.append(
                f"{fit.params.model}: {values} on {fit.sample_size:,} customers, "
                f"log-likelihood {fit.log_likelihood:,.1f}, {state}"
            )
        return lines

    def score(
        self,
        customer_features: DataFrame,
        *,
        horizons_days: list[int],
        ltv_horizon_days: int,
        discount_rate: float,
    ) -> DataFrame:
        """
        Score every customer of ``customer_features``: the ``customer_clv`` table.

        Parameters
        ----------
        customer_features : DataFrame
            ``customer_id``, ``as_of`` and the :data:`SUMMARY` columns, in this model's period.
        horizons_days : list of int, keyword-only
            One ``expected_visits_<H>d`` column per horizon (days, >= 1).
        ltv_horizon_days : int, keyword-only
            Horizon of ``ltv_predicted`` in days, >= 1.
        discount_rate : float, keyword-only
            Discount rate per 30-day step, >= 0.

        Returns
        -------
        DataFrame
            :func:`clv_schema`: one row per input row, values null where the summary is.
        """
        days = PERIOD_DAYS[self.period]
        bgnbd = self.bgnbd.params
        spend = self.gamma_gamma.params
        population_spend = spend.p * spend.gamma / (spend.q - 1)
        horizons = [(C.expected_visits_column(h), h / days) for h in horizons_days]
        ltv = {
            "horizon_periods": ltv_horizon_days / days,
            "periods_per_step": STEP_DAYS / days,
            "discount_rate": discount_rate,
        }
        schema = clv_schema(horizons_days)

        def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                out = pd.DataFrame({C.CUSTOMER_ID: batch[C.CUSTOMER_ID], C.AS_OF: batch[C.AS_OF]})
                known = batch[SUMMARY].notna().all(axis=1).to_numpy()
                x, t_x, t, m = (batch[c].to_numpy(dtype=float)[known] for c in SUMMARY)
                # Outside the Gamma-Gamma domain the conditional mean is the population mean,
                # which is what the formula gives for a monetary value equal to that mean.
                m = np.where((x > 0) & (m <= 0), population_spend, m)
                values = {C.P_ALIVE: btyd.p_alive(bgnbd, x, t_x, t)}
                for name, periods in horizons:
                    values[name] = btyd.expected_visits(bgnbd, periods, x, t_x, t)
                values[C.EXPECTED_SPEND] = btyd.expected_spend(spend, x, m)
                values[C.LTV_PREDICTED] = btyd.lifetime_value(bgnbd, spend, x, t_x, t, m, **ltv)
                for name, value in values.items():
                    column = np.full(len(batch), np.nan)
                    column[known] = value
                    out[name] = column
                yield out

        return customer_features.select(C.CUSTOMER_ID, C.AS_OF, *SUMMARY).mapInPandas(
            score_batches, schema
        )


def with_customer_value(customer_features: DataFrame, customer_clv: DataFrame) -> DataFrame:
    """
    ``customer_features`` with ``p_alive``, ``expected_spend`` and ``ltv_predicted`` of
    ``customer_clv`` joined on by customer (null for a customer without a score). Both frames
    must be of the same ``as_of``: the caller checks it.
    """
    values = customer_clv.select(C.CUSTOMER_ID, *C.CUSTOMER_VALUE_COLUMNS)
    return customer_features.join(values, C.CUSTOMER_ID, "left")


def _fitting_summary(
    customer_features: DataFrame, settings: ClvConfig
) -> tuple[pd.DataFrame, date]:
    """
    The summary rows the models are fitted on, on the driver, and their one ``as_of``: every
    customer with a summary, or a seeded sample of about ``settings.sample_size``.
    """
    known = customer_features.dropna(subset=SUMMARY)
    days_to_as_of = F.datediff(C.AS_OF, C.FIRST_ORDER_DATE)
    stats = known.agg(
        F.count(F.lit(1)).alias(C.ROWS),
        F.min(C.AS_OF).alias("first"),
        F.max(C.AS_OF).alias("last"),
        F.max(F.abs(F.col(C.T) * PERIOD_DAYS[settings.period] - days_to_as_of)).alias("off"),
    ).first()
    rows, as_of = int(stats[C.ROWS]), stats["last"]
    if stats["first"] != stats["last"]:
        raise InputError(
            f"customer_features holds several as_of ({stats['first']} to {stats['last']}): "
            "run features for one date"
        )
    if as_of is None:
        raise InputError("customer_features has no customer with a visit: nothing to fit")
    if stats["off"] > 1e-6:
        raise InputError(
            f"customer_features' T is not in {settings.period}s: it was written with another "
            f"clv.period; run features again with clv.period {settings.period}"
        )
    selected = known.select(*SUMMARY)
    if settings.sample_size is not None and rows > settings.sample_size:
        selected = selected.sample(fraction=settings.sample_size / rows, seed=settings.seed)
    summary = selected.toPandas()  # four numbers per customer
    # In a fixed order, so that the fit does not depend on the partitioning of the input.
    return summary.sort_values(SUMMARY, kind="mergesort", ignore_index=True), as_of


def holdout_visits(
    customer_clv: DataFrame, orders: DataFrame, *, start: date, end: date, horizon_days: int
) -> DataFrame:
    """
    Predicted, naive and actual visits per customer over a holdout window after ``as_of``.

    Parameters
    ----------
    customer_clv : DataFrame
        ``customer_id``, ``as_of``, ``expected_visits_<horizon_days>d``, joined with
        ``frequency`` and ``first_order_date`` of ``customer_features``.
    orders : DataFrame
        ``customer_id``, ``order_date``, ``is_return``: the orders, holdout days included.
    start, end : date, keyword-only
        The holdout window, both days included; ``(end - start).days + 1`` must be
        ``horizon_days``.
    horizon_days : int, keyword-only
        The horizon whose expected visits are compared.

    Returns
    -------
    DataFrame
        ``customer_id``, ``predicted`` (the model), ``naive`` (the customer's past rate of
        repeat visits, ``frequency`` per day since the first visit, kept over the window; 0
        for a first visit on ``as_of``) and
        ``actual`` (distinct days with a non-return order in the window): one row per customer
        of ``customer_clv``, visits as BG/NBD counts them (one per day).
    """
    if (end - start).days + 1 != horizon_days:
        raise ValueError(f"{start}..{end} is {(end - start).days + 1} days, not {horizon_days}")
    actual = (
        orders.filter(F.col(C.ORDER_DATE).between(F.lit(start), F.lit(end)))
        .filter(~F.col(C.IS_RETURN) & F.col(C.CUSTOMER_ID).isNotNull())
        .groupBy(C.CUSTOMER_ID)
        .agg(F.countDistinct(C.ORDER_DATE).alias("actual"))
    )
    days = F.datediff(C.AS_OF, C.FIRST_ORDER_DATE)
    rate_per_day = F.when(days > 0, F.col(C.FREQUENCY) / days).otherwise(F.lit(0.0))
    return customer_clv.join(actual, C.CUSTOMER_ID, "left").select(
        C.CUSTOMER_ID,
        F.col(C.expected_visits_column(horizon_days)).alias("predicted"),
        (rate_per_day * horizon_days).alias("naive"),
        F.coalesce(F.col("actual"), F.lit(0)).cast("double").alias("actual"),
    )


def holdout_summary(visits: DataFrame) -> dict[str, float]:
    """
    One aggregation of :func:`holdout_visits`: ``customers``, the mean absolute error of the
    model and of the naive forecast, and the totals of predicted, naive and actual visits.
    """
    row = visits.agg(
        F.count(F.lit(1)).alias("customers"),
        F.avg(F.abs(F.col("predicted") - F.col("actual"))).alias("mae_model"),
        F.avg(F.abs(F.col("naive") - F.col("actual"))).alias("mae_naive"),
        F.sum("predicted").alias("total_predicted"),
        F.sum("naive").alias("total_naive"),
        F.sum("actual").alias("total_actual"),
    ).first()
    return row.asDict()
