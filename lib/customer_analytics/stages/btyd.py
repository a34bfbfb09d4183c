"""
Buy-till-you-die models of customer lifetime value, fitted on the driver: BG/NBD for the number
of purchases and Gamma-Gamma for the spend per purchase (SPEC section 5).

The inputs are numpy arrays of the per-customer summary that
``lifetimes.utils.summary_data_from_transaction_data`` defines, one value per customer:

- ``frequency``: repeat purchase periods (purchase periods after the first; whole numbers);
- ``recency``: periods from the first to the last purchase (0 when ``frequency`` is 0);
- ``T``: periods from the first purchase to the end of observation (``as_of``);
- ``monetary_value``: mean spend of the repeat purchase periods (0 when ``frequency`` is 0).

A *period* is the unit of ``recency`` and ``T`` (a day, or a week of 7 days); every time below
(``t``, ``horizon_periods``, the BG/NBD ``alpha``) is in that unit. Fitting the weekly summary
of the 2,357 CDNOW customers gives the published r=0.243, alpha=4.414, a=0.793, b=2.426 (Fader,
Hardie and Lee 2005, "Counting your customers the easy way") and, on its 946 customers with
repeat purchases, p=6.25, q=3.74, gamma=15.44 (Fader and Hardie, "The Gamma-Gamma model of
monetary value", 2013).

Method
------
Both fits maximise the log-likelihood over the logarithms of the parameters with L-BFGS-B
(scipy) and analytic gradients, from ``lifetimes``' starting point. Like ``lifetimes`` 0.11, the
objective is the mean negative log-likelihood plus ``penalizer * sum(params ** 2)`` (an L2
penalty that shrinks every parameter towards 0); for BG/NBD time is first rescaled so that the
longest ``T`` is 1, so ``alpha`` is penalised in units of the longest ``T`` and the fit does not
depend on the period unit. A fit with a given penalizer therefore gives ``lifetimes``' parameters.
The scoring functions are ``lifetimes``' closed forms, vectorised over customers.

Examples
--------
A weekly summary (``recency``, ``T`` in weeks), a 90-day and a 365-day horizon::

    bgnbd = fit_bgnbd(frequency, recency, T, penalizer=0.0).require_converged().params
    spend = fit_gamma_gamma(frequency, monetary_value).require_converged().params
    alive = p_alive(bgnbd, frequency, recency, T)
    visits_90d = expected_visits(bgnbd, 90 / 7, frequency, recency, T)
    ltv = lifetime_value(bgnbd, spend, frequency, recency, T, monetary_value,
                         horizon_periods=365 / 7, periods_per_step=30 / 7, discount_rate=0.01)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

#: Fewest customers a BG/NBD fit accepts.
MIN_CUSTOMERS_BGNBD = 10
#: Fewest customers with a repeat purchase and a positive spend a Gamma-Gamma fit accepts.
MIN_REPEAT_CUSTOMERS_GAMMA_GAMMA = 10

# The optimiser searches log-parameters in [-_LOG_BOUND, _LOG_BOUND] (about 2e-9 .. 5e8);
# a fit that ends on that edge has a parameter the data do not pin down.
_LOG_BOUND = 20.0
# how close to the bound a log-parameter counts as on it
_ON_BOUND = 1e-6
_OPTIONS = {"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9}
# L-BFGS-B stops "ABNORMAL" when its line search can no longer lower the objective in floating
# point. Where the likelihood is flat along a ridge (BG/NBD with almost no dropout: a -> 0 and
# b -> inf) that happens at the optimum, and whether a scipy release says "ABNORMAL" or
# "CONVERGENCE" there varies; such a stop counts as converged when no projected gradient
# component (of the mean negative log-likelihood) exceeds this.
_STATIONARY_GRADIENT = 1e-5
# lifetimes starts every (scaled) log-parameter at 0.1
_START = 0.1
_REMEDIES = {
    "bgnbd": "raise clv.penalizer (e.g. 0.001) or use a longer lookback / more customers",
    "gamma_gamma": "raise clv.spend_penalizer (e.g. 0.001) or use a longer lookback / more "
    "customers",
}
_MODEL_KEYS = {"BG/NBD": "bgnbd", "Gamma-Gamma": "gamma_gamma"}


class FitError(ValueError):
    """A model cannot be fitted to the data given; the message says what to change."""


@dataclass(frozen=True)
class BgNbdParams:
    """
    BG/NBD parameters: purchase rates are Gamma(``r``, rate ``alpha``), dropout
    probabilities after each purchase are Beta(``a``, ``b``).

    Parameters
    ----------
    r, alpha, a, b : float
        All finite and > 0; ``alpha`` is in periods (the unit of ``recency`` and ``T``).
    """

    model: ClassVar[str] = "bgnbd"
    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        _check_positive_params(self)

    def as_dict(self) -> dict[str, float]:
        """Parameter name (``r``, ``alpha``, ``a``, ``b``) -> value."""
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class GammaGammaParams:
    """
    Gamma-Gamma parameters: each purchase's spend is Gamma(``p``, rate ``nu``), with the
    customer's ``nu`` Gamma(``q``, rate ``gamma``) across customers.

    Parameters
    ----------
    p, q, gamma : float
        All finite and > 0; ``gamma`` is in currency units. The population mean spend per
        purchase, ``p * gamma / (q - 1)``, exists only for ``q > 1``.
    """

    model: ClassVar[str] = "gamma_gamma"
    p: float
    q: float
    gamma: float

    def __post_init__(self) -> None:
        _check_positive_params(self)

    def as_dict(self) -> dict[str, float]:
        """Parameter name (``p``, ``q``, ``gamma``) -> value."""
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class FitResult:
    """
    The outcome of :func:`fit_bgnbd` or :func:`fit_gamma_gamma`.

    A fit that stops without converging (iteration limit, failed line search, or a parameter
    on the edge of the search range) is returned with ``converged=False`` rather than raised,
    so that it can be recorded; call :meth:`require_converged` before using its parameters.

    Attributes
    ----------
    params : BgNbdParams or GammaGammaParams
        The fitted parameters, in the units of the inputs.
    log_likelihood : float
        Total log-likelihood of the customers used, at ``params``, without the penalty, in the
        units of the inputs (CDNOW in weeks: -9582.4).
    converged : bool
        Whether the optimiser reported convergence inside the search range.
    sample_size : int
        Customers the fit used (Gamma-Gamma: those with frequency > 0 and monetary_value > 0).
    message : str
        The optimiser's message and iteration count, plus any parameter at the search bound.
    """

    params: BgNbdParams | GammaGammaParams
    log_likelihood: float
    converged: bool
    sample_size: int
    message: str

    def require_converged(self) -> FitResult:
        """
        Return this result if the fit converged.

        Raises
        ------
        FitError
            When ``converged`` is False; the message names the model, the optimiser's
            message and the remedy.
        """
        if not self.converged:
            raise FitError(
                f"the {self.params.model} fit on {self.sample_size} customers did not converge "
                f"({self.message}): {_REMEDIES[self.params.model]}"
            )
        return self


# --------------------------------------------------------------------------- fitting


def fit_bgnbd(
    frequency,
    recency,
    T,
    *,
    penalizer: float = 0.0,
    initial: BgNbdParams | None = None,
) -> FitResult:
    """
    Fit the BG/NBD model of repeat purchases by maximum likelihood.

    Parameters
    ----------
    frequency : array_like of int
        Repeat purchase periods per customer, whole numbers >= 0.
    recency : array_like of float
        Periods from first to last purchase, 0 <= recency <= T, and 0 where frequency is 0.
    T : array_like of float
        Periods from first purchase to the end of observation, >= 0. All three arrays are
        1-D, finite and of one length, at least :data:`MIN_CUSTOMERS_BGNBD`.
    penalizer : float, keyword-only
        L2 penalty coefficient, >= 0 (``lifetimes``' ``penalizer_coef``; see the module
        docstring). Default 0.
    initial : BgNbdParams, optional, keyword-only
        Starting point; default ``lifetimes``' (each parameter exp(0.1), ``alpha`` times the
        longest ``T``).

    Returns
    -------
    FitResult
        ``params`` a :class:`BgNbdParams` (``alpha`` in periods), ``sample_size`` the number of
        customers; ``converged`` False when the optimiser did not converge.

    Raises
    ------
    ValueError
        An input breaks the rules above; the message names it.
    FitError
        Fewer than :data:`MIN_CUSTOMERS_BGNBD` customers, no customer with a repeat purchase
        (``a`` and ``b`` are then not identified), or non-finite results.

    Examples
    --------
    >>> fit = fit_bgnbd([0, 1, 2, 0, 3, 1, 0, 2, 5, 1], [0, 3, 5, 0, 9, 1, 0, 4, 10, 8],
    ...     [10, 10, 12, 6, 12, 4, 3, 11, 12, 9])
    >>> fit.sample_size, sorted(fit.params.as_dict())
    (10, ['a', 'alpha', 'b', 'r'])
    """
    _check_penalizer(penalizer)
    x, tx, big_t = _summary(frequency=frequency, recency=recency, T=T, fitting=True)
    n = x.size
    if n < MIN_CUSTOMERS_BGNBD:
        raise FitError(
            f"BG/NBD needs at least {MIN_CUSTOMERS_BGNBD} customers, got {n}: "
            "use a longer lookback / more customers"
        )
    if not np.any(x > 0):
        raise FitError(
            f"BG/NBD cannot be fitted: none of the {n} customers has a repeat purchase "
            "(frequency > 0), so the dropout parameters a and b are not identified: use a longer "
            "lookback / more customers"
        )
    longest = float(big_t.max())
    scale = 1.0 / longest if longest > 0 else 1.0  # lifetimes: the longest T becomes 1
    scaled = _BgNbdData.of(x, tx * scale, big_t * scale)
    if initial is None:
        start = np.full(4, _START)
    else:
        start = np.log([initial.r, initial.alpha * scale, initial.a, initial.b])
    names = ("r", "alpha", "a", "b")
    log_params, converged, message = _minimise(
        scaled.objective, start, penalizer, names, model="BG/NBD"
    )
    r, alpha_scaled, a, b = (float(v) for v in np.exp(log_params))
    params = BgNbdParams(r=r, alpha=alpha_scaled / scale, a=a, b=b)
    unscaled = _BgNbdData.of(x, tx, big_t)
    log_likelihood = -n * unscaled.objective(np.log(list(params.as_dict().values())), 0.0)[0]
    return FitResult(params, _finite_ll(log_likelihood, "BG/NBD"), converged, n, message)


def fit_gamma_gamma(
    frequency,
    monetary_value,
    *,
    penalizer: float = 0.0,
    initial: GammaGammaParams | None = None,
) -> FitResult:
    """
    Fit the Gamma-Gamma model of spend per purchase by maximum likelihood.

    Only customers with ``frequency > 0`` and ``monetary_value > 0`` carry information on
    spend; the function keeps those and ignores the rest (one-time buyers, and repeat
    customers whose repeat purchases were free).

    Parameters
    ----------
    frequency : array_like of int
        Repeat purchase periods per customer, whole numbers >= 0.
    monetary_value : array_like of float
        Mean spend of the customer's repeat purchase periods, >= 0 (0 where frequency is 0).
        Both 1-D, finite and of one length.
    penalizer : float, keyword-only
        L2 penalty coefficient, >= 0, as ``lifetimes``' ``penalizer_coef``; it acts on
        ``gamma`` in currency units, and on CDNOW 0.1 already drives ``q`` below 1. Default 0.
    initial : GammaGammaParams, optional, keyword-only
        Starting point; default ``lifetimes``' (each parameter exp(0.1)).

    Returns
    -------
    FitResult
        ``params`` a :class:`GammaGammaParams`, ``sample_size`` the customers used (at least
        :data:`MIN_REPEAT_CUSTOMERS_GAMMA_GAMMA`); ``converged`` False when the optimiser did
        not converge.

    Raises
    ------
    ValueError
        An input breaks the rules above; the message names it.
    FitError
        Too few customers with repeat purchases, non-finite results, or a fitted ``q <= 1``
        (the mean spend ``p * gamma / (q - 1)`` would not exist).

    Examples
    --------
    >>> fit = fit_gamma_gamma([1, 2, 3, 1, 4, 2, 1, 3, 2, 5, 0],
    ...     [10.0, 12.0, 30.0, 8.0, 15.0, 22.0, 9.0, 14.0, 11.0, 18.0, 0.0])
    >>> fit.sample_size
    10
    """
    _check_penalizer(penalizer)
    x, m = _summary(frequency=frequency, monetary_value=monetary_value, fitting=True)
    used = (x > 0) & (m > 0)
    n = int(used.sum())
    if n < MIN_REPEAT_CUSTOMERS_GAMMA_GAMMA:
        raise FitError(
            f"Gamma-Gamma needs at least {MIN_REPEAT_CUSTOMERS_GAMMA_GAMMA} customers with a "
            f"repeat purchase (frequency > 0) and monetary_value > 0, got {n} of {x.size}: "
            "use a longer lookback / more customers"
        )
    data = _GammaGammaData(x[used], m[used])
    start = np.full(3, _START) if initial is None else np.log(list(initial.as_dict().values()))
    log_params, converged, message = _minimise(
        data.objective, start, penalizer, ("p", "q", "gamma"), model="Gamma-Gamma"
    )
    p, q, gamma = (float(v) for v in np.exp(log_params))
    if q <= 1.0:
        raise FitError(
            f"the Gamma-Gamma fit on {n} customers gave q = {q:.4g} <= 1, so the mean spend "
            "p * gamma / (q - 1) does not exist: lower clv.spend_penalizer (the penalty "
            "shrinks q), or cap extreme monetary_value values"
        )
    params = GammaGammaParams(p=p, q=q, gamma=gamma)
    log_likelihood = -n * data.objective(log_params, 0.0)[0]
    return FitResult(params, _finite_ll(log_likelihood, "Gamma-Gamma"), converged, n, message)


@dataclass(frozen=True)
class _BgNbdData:
    """The BG/NBD likelihood of one summary; terms in frequency alone go by distinct value."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    repeat: np.ndarray  # frequency > 0
    xs: np.ndarray  # distinct frequencies
    counts: np.ndarray  # customers per distinct frequency

    @classmethod
    def of(cls, x: np.ndarray, tx: np.ndarray, big_t: np.ndarray) -> _BgNbdData:
        xs, counts = np.unique(x, return_counts=True)
        return cls(x, tx, big_t, x > 0, xs, counts.astype(float))

    def objective(self, log_params: np.ndarray, penalizer: float) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood plus penalty, and its gradient in log-parameters."""
        params = np.exp(log_params)
        r, alpha, a, b = params
        n = self.x.size
        x, xs, w = self.x, self.xs, self.counts
        log_at = np.log(alpha + self.T)
        log_atx = np.log(alpha + self.tx)
        a3 = -(r + x) * log_at
        a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * log_atx
        a4 = np.where(self.repeat, a4, -np.inf)
        total = (
            np.dot(w, gammaln(r + xs) + betaln(a, b + xs)) / n
            - gammaln(r)
            + r * np.log(alpha)
            - betaln(a, b)
            + np.logaddexp(a3, a4).mean()
        )
        w4 = np.where(self.repeat, expit(a4 - a3), 0.0)  # weight of the "dropped out" branch
        w3 = 1.0 - w4
        ab = digamma(a + b)
        d_r = (
            np.dot(w, digamma(r + xs)) / n
            - digamma(r)
            + np.log(alpha)
            - np.mean(w3 * log_at + w4 * log_atx)
        )
        d_alpha = r / alpha - np.mean((r + x) * (w3 / (alpha + self.T) + w4 / (alpha + self.tx)))
        d_abx = np.dot(w, digamma(a + b + xs)) / n
        d_a = ab - d_abx + w4.mean() / a
        d_b = (
            np.dot(w, digamma(b + xs)) / n
            - digamma(b)
            + ab
            - d_abx
            - np.mean(w4 / (b + np.maximum(x, 1) - 1))
        )
        grad = -np.array([d_r, d_alpha, d_a, d_b]) * params + 2.0 * penalizer * params**2
        return float(-total + penalizer * np.sum(params**2)), grad


@dataclass(frozen=True)
class _GammaGammaData:
    """The Gamma-Gamma likelihood of the customers with repeat purchases."""

    x: np.ndarray
    m: np.ndarray

    def objective(self, log_params: np.ndarray, penalizer: float) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood plus penalty, and its gradient in log-parameters."""
        params = np.exp(log_params)
        p, q, gamma = params
        x, m = self.x, self.m
        px = p * x
        log_xm_g = np.log(x * m + gamma)
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * log_xm_g
        )
        psi_pxq = digamma(px + q)
        d_p = np.mean(x * (psi_pxq - digamma(px) + np.log(m) + np.log(x) - log_xm_g))
        d_q = np.mean(psi_pxq - log_xm_g) - digamma(q) + np.log(gamma)
        d_gamma = q / gamma - np.mean((px + q) / (x * m + gamma))
        grad = -np.array([d_p, d_q, d_gamma]) * params + 2.0 * penalizer * params**2
        return float(-ll.mean() + penalizer * np.sum(params**2)), grad


def _minimise(objective, start, penalizer, names, *, model):
    """L-BFGS-B over log-parameters in the search box; (log-params, converged, message)."""
    start = np.clip(start, -_LOG_BOUND + 1, _LOG_BOUND - 1)
    with np.errstate(all="ignore"):
        result = minimize(
            objective,
            start,
            args=(penalizer,),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(start),
            options=_OPTIONS,
        )
    if not (np.all(np.isfinite(result.x)) and np.isfinite(result.fun)):
        raise FitError(
            f"the {model} optimiser returned non-finite values ({result.message}): "
            f"{_REMEDIES[_MODEL_KEYS[model]]}"
        )
    message = f"{result.message} after {result.nit} iterations"
    converged = bool(result.success)
    if not converged and str(result.message).startswith("ABNORMAL"):
        steepest = _largest_projected_gradient(result.x, result.jac)
        if steepest <= _STATIONARY_GRADIENT:
            converged = True
            message += f" (the line search stopped at a stationary point: gradient {steepest:.1e})"
    at_bound = [n for n, v in zip(names, result.x, strict=True) if abs(v) > _LOG_BOUND - _ON_BOUND]
    if at_bound:
        converged = False
        message += f"; {', '.join(at_bound)} reached the search bound exp(+-{_LOG_BOUND:g})"
    return result.x, converged, message


def _largest_projected_gradient(log_params: np.ndarray, gradient: np.ndarray) -> float:
    """Largest |gradient| component, leaving out those that push out of the search box."""
    gradient = np.asarray(gradient, dtype=float)
    at_lower = (log_params < -_LOG_BOUND + _ON_BOUND) & (gradient > 0)
    at_upper = (log_params > _LOG_BOUND - _ON_BOUND) & (gradient < 0)
    free = np.where(at_lower | at_upper, 0.0, gradient)
    return float(np.max(np.abs(free))) if free.size else 0.0


def _finite_ll(value: float, model: str) -> float:
    if not math.isfinite(value):
        raise FitError(
            f"the {model} log-likelihood at the optimum is not finite: "
            f"{_REMEDIES[_MODEL_KEYS[model]]}"
        )
    return float(value)


# --------------------------------------------------------------------------- scoring


def p_alive(params: BgNbdParams, frequency, recency, T) -> np.ndarray:
    """
    Probability that each customer is still alive (has not dropped out) at ``T``.

    ``1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + recency)) ** (r + x))`` for
    ``x = frequency > 0``, and exactly 1 for ``frequency == 0`` (BG/NBD customers can only drop
    out right after a repeat purchase); as ``lifetimes``' ``conditional_probability_alive``.

    Parameters
    ----------
    params : BgNbdParams
    frequency, recency, T : array_like or float
        The summary (periods), broadcast together; finite, >= 0, ``recency <= T``.

    Returns
    -------
    numpy.ndarray
        Probabilities in (0, 1], of the broadcast shape.

    Examples
    --------
    >>> params = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> p_alive(params, [0, 2, 2], [0.0, 10.0, 30.0], 38.86).round(4).tolist()
    [1.0, 0.2684, 0.721]
    """
    x, tx, big_t = _summary(frequency=frequency, recency=recency, T=T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = (r + x) * np.log((alpha + big_t) / (alpha + tx)) + np.log(
        a / (b + np.maximum(x, 1) - 1)
    )
    return np.where(x == 0, 1.0, expit(-log_odds_dead))


def expected_visits(params: BgNbdParams, t, frequency, recency, T) -> np.ndarray:
    """
    Expected number of purchases in the next ``t`` periods, given each customer's history.

    Equation (10) of Fader, Hardie and Lee (2005), as ``lifetimes``'
    ``conditional_expected_number_of_purchases_up_to_time``: the Gauss hypergeometric
    function ``2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t))`` is taken in log space,
    through Euler's transformation where it overflows (frequent customers).

    Parameters
    ----------
    params : BgNbdParams
        ``a != 1`` (the formula divides by ``a - 1``).
    t : array_like or float
        Horizon in periods (e.g. ``90 / 7`` for 90 days when a period is a week), >= 0.
    frequency, recency, T : array_like or float
        The summary (periods); finite, >= 0, ``recency <= T``. All four broadcast together.

    Returns
    -------
    numpy.ndarray
        Expected purchases (>= 0; 0 at ``t == 0``), of the broadcast shape.

    Examples
    --------
    >>> params = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> expected_visits(params, 39, [0, 2], [0.0, 30.0], 38.86).round(4).tolist()
    [0.1951, 1.2166]
    """
    t = _non_negative("t", t)
    x, tx, big_t = _summary(frequency=frequency, recency=recency, T=T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    hyp_a, hyp_b, hyp_c = r + x, b + x, a + b + x - 1
    z = t / (alpha + big_t + t)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ln_hyp = np.log(hyp2f1(hyp_a, hyp_b, hyp_c, z))
        ln_hyp_euler = np.log(hyp2f1(hyp_c - hyp_a, hyp_c - hyp_b, hyp_c, z)) + (
            hyp_c - hyp_a - hyp_b
        ) * np.log1p(-z)
    ln_hyp = np.where(np.isfinite(ln_hyp), ln_hyp, ln_hyp_euler)
    numerator = (
        (a + b + x - 1)
        / (a - 1)
        * -np.expm1(ln_hyp + (r + x) * np.log((alpha + big_t) / (alpha + t + big_t)))
    )
    denominator = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * (
        (alpha + big_t) / (alpha + tx)
    ) ** (r + x)
    return numerator / denominator


def expected_spend(params: GammaGammaParams, frequency, monetary_value) -> np.ndarray:
    """
    Expected mean spend of each customer's future purchases (Gamma-Gamma).

    A weighted mean of the customer's own ``monetary_value`` and the population mean
    ``p * gamma / (q - 1)``, with weight ``p * x / (p * x + q - 1)`` on the customer's own
    (Fader and Hardie's equation (5); ``lifetimes``' ``conditional_expected_average_profit``).
    For ``frequency == 0`` it is the population mean, whatever ``monetary_value`` is.

    Parameters
    ----------
    params : GammaGammaParams
        ``q > 1``.
    frequency, monetary_value : array_like or float
        Repeat purchase periods and mean spend of those periods (currency); finite, >= 0,
        broadcast together.

    Returns
    -------
    numpy.ndarray
        Expected spend per purchase (currency), of the broadcast shape.

    Raises
    ------
    ValueError
        ``q <= 1``: the population mean spend does not exist.

    Examples
    --------
    >>> params = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    >>> expected_spend(params, [0, 2], [0.0, 30.0]).round(4).tolist()
    [35.219, 30.9383]
    """
    if params.q <= 1.0:
        raise ValueError(
            f"params.q must be > 1 for the population mean spend to exist, got {params.q}"
        )
    x, m = _summary(frequency=frequency, monetary_value=monetary_value)
    p, q, gamma = params.p, params.q, params.gamma
    weight = p * x / (p * x + q - 1)
    return (1 - weight) * (p * gamma / (q - 1)) + weight * m


def lifetime_value(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    horizon_periods: float,
    periods_per_step: float,
    discount_rate: float,
) -> np.ndarray:
    """
    Discounted expected spend of each customer over the next ``horizon_periods`` periods.

    The horizon is cut into steps of ``periods_per_step`` periods; step ``i`` contributes
    ``(expected_visits(s_i) - expected_visits(s_(i-1))) * expected_spend`` discounted by
    ``(1 + discount_rate) ** (s_i / periods_per_step)``, where ``s_i = min(i *
    periods_per_step, horizon_periods)`` is the end of the step. When the horizon is a whole
    number of steps, this is ``lifetimes``' ``GammaGammaFitter.customer_lifetime_value`` with
    ``time = horizon_periods / periods_per_step`` months and ``periods_per_step`` 30 (``freq
    "D"``) or 4.345 (``freq "W"``); otherwise the last, shorter step is discounted at its end.

    Parameters
    ----------
    bgnbd : BgNbdParams
    gamma_gamma : GammaGammaParams
        ``q > 1``.
    frequency, recency, T, monetary_value : array_like or float
        The summary (periods; currency); broadcast together, as for :func:`expected_visits`
        and :func:`expected_spend`.
    horizon_periods : float, keyword-only
        Horizon in periods, > 0: ``horizon_days / days_per_period`` (365 days in weeks: 365/7).
    periods_per_step : float, keyword-only
        Length of one discounting step in periods, > 0 (30-day months in weeks: 30/7).
    discount_rate : float, keyword-only
        Discount rate per step, >= 0 (0.01: 1% a month with monthly steps).

    Returns
    -------
    numpy.ndarray
        Lifetime value (currency) per customer, of the broadcast shape.

    Examples
    --------
    >>> bg = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
    >>> gg = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
    >>> lifetime_value(bg, gg, [0, 2], [0.0, 30.0], 38.86, [0.0, 30.0],
    ...     horizon_periods=365 / 7, periods_per_step=30 / 7, discount_rate=0.01).round(2).tolist()
    [8.36, 45.14]
    """
    for name, value in (
        ("horizon_periods", horizon_periods),
        ("periods_per_step", periods_per_step),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    if not (math.isfinite(discount_rate) and discount_rate >= 0):
        raise ValueError(f"discount_rate must be finite and >= 0, got {discount_rate!r}")
    spend = expected_spend(gamma_gamma, frequency, monetary_value)
    steps = max(1, math.ceil(horizon_periods / periods_per_step - 1e-9))
    value = np.zeros(np.broadcast_shapes(spend.shape, np.shape(recency), np.shape(T)))
    visits_before = 0.0
    for i in range(1, steps + 1):
        end = min(i * periods_per_step, horizon_periods)
        visits = expected_visits(bgnbd, end, frequency, recency, T)
        value = value + (visits - visits_before) * spend / (1 + discount_rate) ** (
            end / periods_per_step
        )
        visits_before = visits
    return value


# --------------------------------------------------------------------------- input checks


def _check_positive_params(params) -> None:
    for name, value in asdict(params).items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{type(params).__name__}.{name} must be finite and > 0, got {value}")


def _check_penalizer(penalizer: float) -> None:
    if not (math.isfinite(penalizer) and penalizer >= 0):
        raise ValueError(f"penalizer must be finite and >= 0, got {penalizer!r}")


def _non_negative(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got non-finite values")
    if np.any(array < 0):
        raise ValueError(f"{name} must be >= 0, got {array.min()}")
    return array


def _summary(*, fitting: bool = False, **arrays) -> list[np.ndarray]:
    """
    Check summary arrays (given by name, in order) and return them as float arrays.

    Always: finite, >= 0, broadcastable, ``recency <= T``. When ``fitting``: 1-D, one length,
    whole-number ``frequency``, ``recency == 0`` where ``frequency == 0``.
    """
    checked = {name: _non_negative(name, value) for name, value in arrays.items()}
    if fitting:
        first = next(iter(checked))
        for name, array in checked.items():
            if array.ndim != 1:
                raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
            if array.size != checked[first].size:
                raise ValueError(
                    f"{name} has {array.size} values but {first} has {checked[first].size}"
                )
        if np.any(checked["frequency"] != np.floor(checked["frequency"])):
            raise ValueError("frequency must hold whole numbers (repeat purchase periods)")
    else:
        try:
            np.broadcast_shapes(*(array.shape for array in checked.values()))
        except ValueError:
            shapes = ", ".join(f"{name} {array.shape}" for name, array in checked.items())
            raise ValueError(f"the inputs cannot be broadcast together: {shapes}") from None
    if "recency" in checked:
        if np.any(checked["recency"] > checked["T"]):
            raise ValueError("recency must be <= T for every customer")
        if fitting and np.any(checked["recency"][checked["frequency"] == 0] != 0):
            raise ValueError("recency must be 0 where frequency is 0 (no repeat purchase)")
    return list(checked.values())
