"""Light Value-at-Risk and Expected Shortfall forms used by the live risk engine and the reports.

Sign and unit conventions (see ``docs/risk.md``):

* ``alpha`` is the tail probability (0.01 for 99 % VaR).
* VaR and ES are reported as positive losses in the unit of the input returns.
* Historical quantiles use linear interpolation (numpy's default ``method="linear"``).
* Historical ES is the tail mean of the ``n * alpha`` worst scenarios, the last one weighted by
  the fractional part (Acerbi-Tasche); this keeps ES coherent on equally likely scenarios.
* h-day scaling: parametric forms use ``h * mu`` and ``sqrt(h) * sigma``; historical forms
  multiply the 1-day VaR and ES by ``sqrt(h)`` (square-root-of-time rule).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np

from rrr_live.risk.ewma import (
    RISKMETRICS_LAMBDA,
    FloatArray,
    RiskInputError,
    as_finite_1d,
    ewma_variance_path,
)

__all__ = [
    "ReturnWindow",
    "RiskInputError",
    "VarEs",
    "check_alpha",
    "cornish_fisher_var_es",
    "ewma_var_es",
    "historical_var_es",
    "norm_cdf",
    "norm_pdf",
    "norm_ppf",
    "normal_var_es",
    "parametric_normal_var_es",
    "tail_weights",
]

_SQRT2: Final[float] = math.sqrt(2.0)
_INV_SQRT_2PI: Final[float] = 1.0 / math.sqrt(2.0 * math.pi)

# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9),
# polished below with one Halley step on math.erfc.
_A = (
    -39.69683028665376,
    220.9460984245205,
    -275.9285104469687,
    138.3577518672690,
    -30.66479806614716,
    2.506628277459239,
)
_B = (
    -54.47609879822406,
    161.5858368580409,
    -155.6989798598866,
    66.80131188771972,
    -13.28068155288572,
)
_C = (
    -0.007784894002430293,
    -0.3223964580411365,
    -2.400758277161838,
    -2.549732539343734,
    4.374664141464968,
    2.938163982698783,
)
_D = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
_P_LOW: Final[float] = 0.02425


@dataclass(frozen=True)
class VarEs:
    """VaR and ES as positive losses at tail probability ``alpha`` over ``horizon`` periods."""

    var: float
    es: float
    alpha: float
    horizon: int = 1

    @property
    def confidence(self) -> float:
        """The confidence level ``1 - alpha``."""
        return 1.0 - self.alpha


def check_alpha(alpha: float) -> float:
    """Validate a tail probability.

    Raises:
        RiskInputError: unless ``0 < alpha < 0.5``.
    """
    if not 0.0 < alpha < 0.5:
        raise RiskInputError(f"alpha (tail probability) must be in (0, 0.5), got {alpha!r}")
    return float(alpha)


def _check_horizon(horizon: int) -> int:
    if horizon < 1:
        raise RiskInputError(f"horizon must be >= 1 period, got {horizon}")
    return int(horizon)


def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def norm_cdf(x: float) -> float:
    """Standard normal distribution function (via ``math.erfc``, accurate in the tails)."""
    return 0.5 * math.erfc(-x / _SQRT2)


def _horner(coef: tuple[float, ...], x: float) -> float:
    acc = 0.0
    for c in coef:
        acc = acc * x + c
    return acc


def norm_ppf(p: float) -> float:
    """Standard normal quantile, accurate to about 1e-15 relative.

    Raises:
        RiskInputError: unless ``0 < p < 1``.
    """
    if not 0.0 < p < 1.0:
        raise RiskInputError(f"probability must be in (0, 1), got {p!r}")
    if p > 0.5:
        return -norm_ppf(1.0 - p)  # 1 - p is exact here; keeps the upper tail accurate
    if p < _P_LOW:
        q = math.sqrt(-2.0 * math.log(p))
        x = _horner(_C, q) / (_horner(_D, q) * q + 1.0)
    else:
        q = p - 0.5
        r = q * q
        x = _horner(_A, r) * q / (_horner(_B, r) * r + 1.0)
    for _ in range(2):  # Halley refinement
        e = norm_cdf(x) - p
        u = e / norm_pdf(x)
        x -= u / (1.0 + 0.5 * x * u)
    return x


def tail_weights(n: int, alpha: float) -> FloatArray:
    """Weights of the ascending order statistics in the discrete (Acerbi-Tasche) tail mean.

    The ``floor(n*alpha)`` worst scenarios get ``1/(n*alpha)`` each and the next one gets the
    remaining fractional mass, so the weights sum to one.

    Args:
        n: Number of equally likely scenarios.
        alpha: Tail probability.

    Returns:
        Array of length ``min(n, floor(n*alpha) + 1)``.
    """
    alpha = check_alpha(alpha)
    if n < 1:
        raise RiskInputError(f"need at least one scenario, got {n}")
    mass = n * alpha
    k = math.floor(mass)
    frac = mass - k
    w = np.full(min(n, k + 1), 1.0 / mass, dtype=np.float64)
    if k < n:
        w[k] = frac / mass
    return w


def _quantile_sorted(x_sorted: FloatArray, alpha: float) -> float:
    """Linear-interpolation quantile (numpy ``method='linear'``) of an ascending array."""
    h = (x_sorted.size - 1) * alpha
    lo = math.floor(h)
    hi = min(lo + 1, x_sorted.size - 1)
    return float(x_sorted[lo] + (h - lo) * (x_sorted[hi] - x_sorted[lo]))


def historical_var_es(returns: object, alpha: float, horizon: int = 1) -> VarEs:
    """Historical-simulation VaR and ES of a return (or P&L) sample.

    Args:
        returns: Scenario returns or P&L, finite, at least 2 values.
        alpha: Tail probability.
        horizon: Periods; the 1-period figures are scaled by ``sqrt(horizon)``.

    Returns:
        VaR (negated linear-interpolation quantile) and ES (negated tail mean).
    """
    alpha = check_alpha(alpha)
    horizon = _check_horizon(horizon)
    x = np.sort(as_finite_1d(returns, min_len=2))
    w = tail_weights(x.size, alpha)
    q = _quantile_sorted(x, alpha)
    tail = float(w @ x[: w.size])
    scale = math.sqrt(horizon)
    # the tail mean never exceeds the quantile mathematically; guard the last ulp
    return VarEs(var=-q * scale, es=-min(tail, q) * scale, alpha=alpha, horizon=horizon)


def normal_var_es(mu: float, sigma: float, alpha: float, horizon: int = 1) -> VarEs:
    """VaR and ES of a normal 1-period return ``N(mu, sigma**2)`` over ``horizon`` periods.

    ``VaR = -(h*mu + sqrt(h)*sigma*z_alpha)``, ``ES = -(h*mu - sqrt(h)*sigma*phi(z_alpha)/alpha)``.

    Raises:
        RiskInputError: on a negative or non-finite sigma or a non-finite mu.
    """
    alpha = check_alpha(alpha)
    horizon = _check_horizon(horizon)
    if not (math.isfinite(mu) and math.isfinite(sigma)) or sigma < 0.0:
        raise RiskInputError(f"need finite mu and sigma >= 0, got mu={mu!r}, sigma={sigma!r}")
    z = norm_ppf(alpha)
    m = horizon * mu
    s = math.sqrt(horizon) * sigma
    return VarEs(var=-(m + s * z), es=-(m - s * norm_pdf(z) / alpha), alpha=alpha, horizon=horizon)


def parametric_normal_var_es(returns: object, alpha: float, horizon: int = 1) -> VarEs:
    """Normal VaR/ES with the sample mean and the sample (ddof=1) standard deviation."""
    x = as_finite_1d(returns, min_len=2)
    return normal_var_es(float(x.mean()), float(x.std(ddof=1)), alpha, horizon)


def _truncated_normal_moments(c: float, order: int) -> list[float]:
    """``E[Z**k ; Z < c]`` (partial moments, not conditional) for ``k = 0..order``."""
    phi = norm_pdf(c)
    m = [norm_cdf(c), -phi]
    for k in range(2, order + 1):
        m.append(-(c ** (k - 1)) * phi + (k - 1) * m[k - 2])
    return m


def cornish_fisher_var_es(returns: object, alpha: float, horizon: int = 1) -> VarEs:
    """Cornish-Fisher (modified) VaR and ES from the sample mean, sd, skewness and excess kurtosis.

    The quantile is ``z_cf = z + (z²-1)S/6 + (z³-3z)K/24 - (2z³-5z)S²/36`` with the moment
    estimators ``S = m3/m2**1.5`` and ``K = m4/m2**2 - 3``. ES is the tail mean of the same
    polynomial of a standard normal, computed exactly with truncated-normal moments. Scaling to
    ``horizon`` uses ``h*mu`` and ``sqrt(h)*sd`` (the shape is not aggregated). For extreme
    skewness/kurtosis the expansion is not monotone; the figures are then not meaningful.
    """
    alpha = check_alpha(alpha)
    horizon = _check_horizon(horizon)
    x = as_finite_1d(returns, min_len=4)
    mu = float(x.mean())
    sd = float(x.std(ddof=1))
    d = x - mu
    m2 = float(np.mean(d * d))
    if m2 == 0.0:
        return normal_var_es(mu, 0.0, alpha, horizon)
    skew = float(np.mean(d**3)) / m2**1.5
    kurt = float(np.mean(d**4)) / m2**2 - 3.0
    z = norm_ppf(alpha)
    # z_cf as a cubic a0 + a1 z + a2 z² + a3 z³
    a0 = -skew / 6.0
    a1 = 1.0 - 3.0 * kurt / 24.0 + 5.0 * skew * skew / 36.0
    a2 = skew / 6.0
    a3 = kurt / 24.0 - 2.0 * skew * skew / 36.0
    q = a0 + a1 * z + a2 * z * z + a3 * z**3
    pm = _truncated_normal_moments(z, 3)
    tail = (a0 * pm[0] + a1 * pm[1] + a2 * pm[2] + a3 * pm[3]) / alpha
    m = horizon * mu
    s = math.sqrt(horizon) * sd
    return VarEs(var=-(m + s * q), es=-(m + s * tail), alpha=alpha, horizon=horizon)


def ewma_var_es(
    returns: object, alpha: float, horizon: int = 1, lam: float = RISKMETRICS_LAMBDA
) -> VarEs:
    """RiskMetrics VaR/ES: zero mean, EWMA variance of the sample (seeded with r[0]**2)."""
    s2 = float(ewma_variance_path(returns, lam)[-1])
    return normal_var_es(0.0, math.sqrt(s2), alpha, horizon)


class ReturnWindow:
    """Fixed-capacity window of the latest returns for per-bar historical/parametric VaR."""

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise RiskInputError(f"window capacity must be >= 2, got {capacity}")
        self._buf: deque[float] = deque(maxlen=capacity)

    @property
    def capacity(self) -> int:
        """Maximum number of returns held."""
        return self._buf.maxlen or 0

    @property
    def full(self) -> bool:
        """Whether the window holds ``capacity`` returns."""
        return len(self._buf) == self.capacity

    def __len__(self) -> int:
        return len(self._buf)

    def push(self, ret: float) -> None:
        """Append one return (the oldest drops out when full).

        Raises:
            RiskInputError: if the return is NaN or infinite.
        """
        if not math.isfinite(ret):
            raise RiskInputError(f"return must be finite, got {ret!r}")
        self._buf.append(float(ret))

    def values(self) -> FloatArray:
        """The held returns, oldest first."""
        return np.fromiter(self._buf, dtype=np.float64, count=len(self._buf))

    def historical(self, alpha: float, horizon: int = 1) -> VarEs:
        """Historical VaR/ES of the window; requires a full window."""
        return historical_var_es(self._values_full(), alpha, horizon)

    def normal(self, alpha: float, horizon: int = 1) -> VarEs:
        """Parametric normal VaR/ES of the window; requires a full window."""
        return parametric_normal_var_es(self._values_full(), alpha, horizon)

    def _values_full(self) -> FloatArray:
        if not self.full:
            raise RiskInputError(
                f"return window holds {len(self._buf)} of {self.capacity} returns; not ready"
            )
        return self.values()
