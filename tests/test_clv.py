"""
The clv stage (customer_analytics.stages.clv and the ``clv`` job): from raw CDNOW transactions to
the published parameters, per-customer scores equal to ``lifetimes``', and the cases a reader
can work out by hand on a few rows.
"""

from __future__ import annotations

import warnings
from datetime import date

import pandas as pd
import pytest
from chispa import assert_approx_df_equality

from customer_analytics.config.schema import ClvConfig
from customer_analytics.core import columns as C
from customer_analytics.core.errors import InputError
from customer_analytics.stages.btyd import BgNbdParams, FitResult, GammaGammaParams
from customer_analytics.stages.clv import ClvModel, holdout_summary, holdout_visits
from tests.conftest import FIXTURES, run_cli, table_rows

CDNOW_AS_OF = date(1997, 9, 30)  # the end of the 39-week calibration period
# Fader, Hardie and Lee (2005); Fader and Hardie's Gamma-Gamma note: CDNOW, weeks
PUBLISHED = {
    ("bgnbd", "r"): 0.243,
    ("bgnbd", "alpha"): 4.414,
    ("bgnbd", "a"): 0.793,
    ("bgnbd", "b"): 2.426,
    ("gamma_gamma", "p"): 6.25,
    ("gamma_gamma", "q"): 3.74,
    ("gamma_gamma", "gamma"): 15.44,
}


@pytest.fixture(scope="module")
def cdnow_warehouse(spark, tmp_path_factory):
    """The CDNOW sample ingested as kind ``transactions``, features (weeks) and clv as of
    1997-09-30: (warehouse path, clv job output)."""
    warehouse = tmp_path_factory.mktemp("cdnow") / "wh"
    common = [
        "--set",
        f"source.path={FIXTURES / 'cdnow_sample.csv'}",
        "--set",
        "source.kind=transactions",
        "--set",
        "source.exclude_periods=[]",
        "--set",
        f"warehouse.path={warehouse}",
        "--set",
        "clv.period=week",
        "--as-of",
        CDNOW_AS_OF.isoformat(),
    ]
    outputs = {}
    for job in ("ingest", "features", "clv"):
        code, outputs[job] = run_cli(job, *common)
        assert code == 0, outputs[job]
    return warehouse, outputs["clv"]


def test_cdnow_from_raw_transactions_gives_the_published_parameters(cdnow_warehouse):
    warehouse, _ = cdnow_warehouse

    models = table_rows(warehouse, "clv_models")

    fitted = {(r["model"], r["parameter"]): r["value"] for r in models}
    assert fitted.keys() == PUBLISHED.keys()
    for key, published in PUBLISHED.items():
        assert fitted[key] == pytest.approx(published, rel=0.01), key
    sizes = {(r["model"], r["sample_size"]) for r in models}
    assert sizes == {("bgnbd", 2357), ("gamma_gamma", 946)}
    assert {(r["as_of"], r["period"], r["converged"]) for r in models} == {
        (CDNOW_AS_OF, "week", True)
    }
    bgnbd_ll = {r["log_likelihood"] for r in models if r["model"] == "bgnbd"}
    assert len(bgnbd_ll) == 1
    assert bgnbd_ll.pop() == pytest.approx(-9582.4, abs=0.1)  # the paper's log-likelihood


def test_the_job_prints_each_model_and_the_customers_it_fitted(cdnow_warehouse):
    _, out = cdnow_warehouse

    assert "[clv] bgnbd: r 0.2426, alpha 4.414, a 0.7929, b 2.426 on 2,357 customers" in out
    assert "[clv] gamma_gamma: p 6.25, q 3.744, gamma 15.44 on 946 customers" in out


def test_cdnow_scores_equal_lifetimes_per_customer(spark, cdnow_warehouse):
    lifetimes = pytest.importorskip("lifetimes")
    warehouse, _ = cdnow_warehouse
    fitted = {(r["model"], r["parameter"]): r["value"] for r in table_rows(warehouse, "clv_models")}
    features = spark.read.format("delta").load(str(warehouse / "customer_features"))
    scores = spark.read.format("delta").load(str(warehouse / "customer_clv"))
    both = features.join(scores, C.CUSTOMER_ID).toPandas()  # 2,357 rows

    bgf = lifetimes.BetaGeoFitter()
    bgf.params_ = {k: fitted[("bgnbd", k)] for k in ("r", "alpha", "a", "b")}
    ggf = lifetimes.GammaGammaFitter()
    ggf.params_ = {k: fitted[("gamma_gamma", k)] for k in ("p", "q")}
    ggf.params_["v"] = fitted[("gamma_gamma", "gamma")]
    summary = (both[C.FREQUENCY], both[C.RECENCY], both[C.T])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alive = bgf.conditional_probability_alive(*summary)
        visits_90 = bgf.conditional_expected_number_of_purchases_up_to_time(90 / 7, *summary)
        visits_365 = bgf.conditional_expected_number_of_purchases_up_to_time(365 / 7, *summary)
        repeat = both[C.FREQUENCY] > 0
        spend = ggf.conditional_expected_average_profit(
            both[C.FREQUENCY][repeat], both[C.MONETARY_VALUE][repeat]
        )

    assert len(both) == 2357
    assert abs(both[C.P_ALIVE] - alive).max() < 1e-6
    assert abs(both["expected_visits_90d"] - visits_90).max() < 1e-6
    assert abs(both["expected_visits_365d"] - visits_365).max() < 1e-6
    assert abs(both[C.EXPECTED_SPEND][repeat] - spend).max() < 1e-6


# --------------------------------------------------------------------------------------------
# Scoring by hand: p=6, q=4, gamma=15 give a population mean spend of 6 * 15 / 3 = 30.

HAND_BGNBD = BgNbdParams(r=1.0, alpha=1.0, a=2.0, b=3.0)
HAND_SPEND = GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
SUMMARY_DDL = (
    "customer_id string, as_of date, first_order_date date, frequency double, recency double, "
    "T double, monetary_value double"
)
DAY = date(2024, 1, 31)


def hand_model() -> ClvModel:
    fits = [FitResult(p, -1.0, True, 100, "given") for p in (HAND_BGNBD, HAND_SPEND)]
    return ClvModel(*fits, as_of=DAY, period="day", seconds=0.0)


def scored(spark, data, **options):
    frame = spark.createDataFrame(data, SUMMARY_DDL)
    options = {"horizons_days": [30], "ltv_horizon_days": 30, "discount_rate": 0.0, **options}
    return hand_model().score(frame, **options)


def test_a_customer_without_repeat_visits_is_alive_and_spends_the_population_mean(spark):
    result = scored(spark, [("c1", DAY, date(2024, 1, 1), 0.0, 0.0, 30.0, 0.0)])

    expected = spark.createDataFrame(
        [("c1", DAY, 1.0, 30.0)],
        "customer_id string, as_of date, p_alive double, expected_spend double",
    )
    assert_approx_df_equality(
        result.select(C.CUSTOMER_ID, C.AS_OF, C.P_ALIVE, C.EXPECTED_SPEND),
        expected,
        1e-12,
        ignore_nullable=True,
    )


def test_p_alive_by_hand_and_larger_with_a_later_last_visit(spark):
    # p_alive = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    # x=1, T=9, t_x=4: 1 / (1 + 2/3 * (10/5) ** 2) = 3/11;  t_x=9: 1 / (1 + 2/3 * 1) = 3/5
    data = [
        ("early", DAY, date(2024, 1, 22), 1.0, 4.0, 9.0, 10.0),
        ("late", DAY, date(2024, 1, 22), 1.0, 9.0, 9.0, 10.0),
    ]

    result = scored(spark, data).select(C.CUSTOMER_ID, C.P_ALIVE)

    expected = spark.createDataFrame([("early", 3 / 11), ("late", 3 / 5)], result.schema)
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_repeat_visits_without_spend_are_valued_at_the_population_mean(spark):
    # Gamma-Gamma weight of the own mean: p x / (p x + q - 1) = 12 / 15 = 0.8;
    # 40 spent a repeat visit: 0.2 * 30 + 0.8 * 40 = 38; nothing spent: the mean, 30
    data = [
        ("spends", DAY, date(2024, 1, 1), 2.0, 20.0, 30.0, 40.0),
        ("free", DAY, date(2024, 1, 1), 2.0, 20.0, 30.0, 0.0),
    ]

    result = scored(spark, data).select(C.CUSTOMER_ID, C.EXPECTED_SPEND)

    expected = spark.createDataFrame([("spends", 38.0), ("free", 30.0)], result.schema)
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_without_discount_the_lifetime_value_is_expected_visits_times_spend(spark):
    # expected visits in 45 days from lifetimes 0.11, the reference implementation; expected
    # spend 38 by hand as in the test above
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lifetimes = pytest.importorskip("lifetimes")
        reference = lifetimes.BetaGeoFitter()
        reference.params_ = pd.Series(HAND_BGNBD.as_dict())
        visits = float(
            reference.conditional_expected_number_of_purchases_up_to_time(45, 2.0, 20.0, 30.0)
        )
    data = [("c1", DAY, date(2024, 1, 1), 2.0, 20.0, 30.0, 40.0)]

    row = scored(spark, data, horizons_days=[45], ltv_horizon_days=45).first()

    assert row["expected_visits_45d"] == pytest.approx(visits, rel=1e-9)
    assert row[C.LTV_PREDICTED] == pytest.approx(visits * 38.0, rel=1e-9)


def test_a_customer_without_a_summary_gets_nulls(spark):
    data = [("none", DAY, None, None, None, None, None)]

    row = scored(spark, data).first()

    values = [C.P_ALIVE, "expected_visits_30d", C.EXPECTED_SPEND, C.LTV_PREDICTED]
    assert [row[c] for c in values] == [None] * 4


def test_the_schema_has_a_visits_column_per_horizon(spark):
    data = [("c1", DAY, date(2024, 1, 1), 0.0, 0.0, 30.0, 0.0)]

    result = scored(spark, data, horizons_days=[90, 365])

    assert result.columns == [
        C.CUSTOMER_ID,
        C.AS_OF,
        C.P_ALIVE,
        "expected_visits_90d",
        "expected_visits_365d",
        C.EXPECTED_SPEND,
        C.LTV_PREDICTED,
    ]


# --------------------------------------------------------------------------------------------
# Errors


def test_too_few_customers_is_one_line_that_says_what_to_change(spark):
    data = [(f"c{i}", DAY, date(2024, 1, 1), 1.0, 5.0, 30.0, 10.0) for i in range(5)]
    frame = spark.createDataFrame(data, SUMMARY_DDL)

    with pytest.raises(InputError) as error:
        ClvModel.fit(frame, ClvConfig())

    message = str(error.value)
    assert message.startswith("clv: ")
    assert "at least 10 customers, got 5" in message
    assert message.endswith("or leave the stage out (pipeline --skip clv)")
    assert "\n" not in message


def test_a_summary_in_days_is_refused_when_the_period_is_weeks(spark):
    # first order 2024-01-01, as of 2024-01-31: T is 30 days, which is not 30 weeks
    data = [(f"c{i}", DAY, date(2024, 1, 1), 1.0, 5.0, 30.0, 10.0) for i in range(20)]
    frame = spark.createDataFrame(data, SUMMARY_DDL)

    with pytest.raises(InputError, match="run features again with clv.period week"):
        ClvModel.fit(frame, ClvConfig(period="week"))


def test_the_clv_job_refuses_another_as_of_than_its_features(cdnow_warehouse):
    warehouse, _ = cdnow_warehouse

    code, _ = run_cli("clv", "--set", f"warehouse.path={warehouse}", "--as-of", "1997-06-30")

    assert code == 2


def test_a_naming_rule_on_p_alive_names_the_segment_with_the_lower_mean(cdnow_warehouse):
    warehouse, _ = cdnow_warehouse
    rules = (
        "[{name: Fading, action: win back, when: [{feature: p_alive, below: 1.0}]},"
        " {name: Alive, action: thank, when: [{feature: p_alive, above: 1.0}]}]"
    )

    code, out = run_cli(
        "segment",
        "--set",
        f"warehouse.path={warehouse}",
        "--set",
        "clv.period=week",
        "--set",
        "segmentation.k=2",
        "--set",
        "segmentation.features=[total_visits, total_spend, recency_days]",
        "--set",
        f"segmentation.segment_names={rules}",
    )

    assert code == 0, out
    assert "[segment] profiled with the lifetime values of customer_clv" in out
    profiles = table_rows(warehouse, "segment_profiles")
    p_alive = {r["segment_name"]: r["mean"] for r in profiles if r["feature"] == C.P_ALIVE}
    assert set(p_alive) == {"Fading", "Alive"}
    assert p_alive["Fading"] < p_alive["Alive"]
    assert {r["segment_name"] for r in profiles if r["feature"] == C.LTV_PREDICTED} == {
        "Fading",
        "Alive",
    }


# --------------------------------------------------------------------------------------------
# Holdout check


def test_holdout_visits_count_days_in_the_window_beside_the_naive_rate(spark):
    scores = spark.createDataFrame(
        [
            # 2 repeat visits in the 20 days since the first: naive 2 / 20 * 10 = 1.0
            ("c1", DAY, 1.5, 2.0, date(2024, 1, 11)),
            # first visit on as_of: no past rate, naive 0
            ("c2", DAY, 0.2, 0.0, DAY),
        ],
        "customer_id string, as_of date, expected_visits_10d double, frequency double, "
        "first_order_date date",
    )
    orders = spark.createDataFrame(
        [
            ("c1", date(2024, 2, 1), False),
            ("c1", date(2024, 2, 1), False),  # the same day: one visit
            ("c1", date(2024, 2, 5), False),
            ("c1", date(2024, 2, 6), True),  # a return
            ("c1", date(2024, 2, 11), False),  # after the window
            ("c1", DAY, False),  # before it
        ],
        "customer_id string, order_date date, is_return boolean",
    )

    visits = holdout_visits(
        scores, orders, start=date(2024, 2, 1), end=date(2024, 2, 10), horizon_days=10
    )

    expected = spark.createDataFrame(
        [("c1", 1.5, 1.0, 2.0), ("c2", 0.2, 0.0, 0.0)],
        "customer_id string, predicted double, naive double, actual double",
    )
    assert_approx_df_equality(visits, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)
    # MAE model (0.5 + 0.2) / 2, naive (1 + 0) / 2; totals 1.7, 1.0 and 2
    assert holdout_summary(visits) == pytest.approx(
        {
            "customers": 2,
            "mae_model": 0.35,
            "mae_naive": 0.5,
            "total_predicted": 1.7,
            "total_naive": 1.0,
            "total_actual": 2.0,
        }
    )


def test_a_fit_that_did_not_converge_is_refused_with_the_setting_to_change():
    stuck = FitResult(HAND_BGNBD, -1.0, False, 100, "ABNORMAL_TERMINATION_IN_LNSRCH")
    model = ClvModel(stuck, FitResult(HAND_SPEND, -1.0, True, 50, "given"), DAY, "day", 0.0)

    with pytest.raises(InputError) as error:
        model.require_converged()

    assert not model.converged
    assert str(error.value).startswith("clv: the bgnbd fit on 100 customers did not converge")
    assert "raise clv.penalizer" in str(error.value)


def test_a_sample_size_fits_on_about_that_many_customers_and_scores_everyone(spark):
    # 2,000 customers with 0 to 4 repeat visits: a seeded sample of about 500 is fitted
    def customer(i: int) -> tuple:
        repeats = i % 5
        recency, spend = (5.0 * repeats + i % 3, 10.0 + i % 7) if repeats else (0.0, 0.0)
        return (f"c{i}", DAY, date(2024, 1, 1), float(repeats), recency, 30.0, spend)

    data = [customer(i) for i in range(2000)]
    frame = spark.createDataFrame(data, SUMMARY_DDL)

    model = ClvModel.fit(frame, ClvConfig(sample_size=500, seed=7))
    scores = model.score(frame, horizons_days=[30], ltv_horizon_days=30, discount_rate=0.0)

    assert 400 < model.bgnbd.sample_size < 600
    assert model.gamma_gamma.sample_size < model.bgnbd.sample_size
    assert scores.count() == 2000
