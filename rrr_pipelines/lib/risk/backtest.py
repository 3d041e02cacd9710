"""VaR backtests: Kupiec POF, Christoffersen independence and conditional coverage, Basel zones.

An exceedance (hit) is a day whose return is below ``-VaR``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
from scipy import stats

from rrr_live.risk.ewma import RiskInputError
from rrr_live.risk.var import check_alpha

CSV_COLUMNS: Final[tuple[str, ...]] = (
    "model",
    "alpha",
    "n",
    "x",
    "expected",
    "lr_uc",
    "p_uc",
    "lr_ind",
    "p_ind",
    "lr_cc",
    "p_cc",
)

# Basel (1996) plus factors for 250 days at 99 %: exceedances -> multiplier add-on.
BASEL_PLUS_FACTOR: Final[dict[int, float]] = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}


def _xlogy(x: float, y: float) -> float:
    """``x * log(y)`` with ``0 * log(0) = 0``."""
    return 0.0 if x == 0 else x * math.log(y)


def _bernoulli_loglik(n0: float, n1: float, p: float) -> float:
    return _xlogy(n0, 1.0 - p) + _xlogy(n1, p)


def kupiec_pof(n: int, x: int, alpha: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures likelihood ratio and its chi-square(1) p-value.

    Args:
        n: Number of observations.
        x: Number of exceedances.
        alpha: Expected exceedance probability.

    Returns:
        ``(lr_pof, p_value)``.

    Raises:
        RiskInputError: unless ``0 <= x <= n`` and ``n >= 1``.
    """
    alpha = check_alpha(alpha)
    if n < 1 or not 0 <= x <= n:
        raise RiskInputError(f"need n >= 1 and 0 <= x <= n, got n={n}, x={x}")
    lr = -2.0 * (_bernoulli_loglik(n - x, x, alpha) - _bernoulli_loglik(n - x, x, x / n))
    lr = max(lr, 0.0)
    return lr, float(stats.chi2.sf(lr, 1))


def transition_counts(hits: np.ndarray) -> tuple[int, int, int, int]:
    """Counts ``(n00, n01, n10, n11)`` of consecutive hit pairs (``nij``: i then j)."""
    h = np.asarray(hits, dtype=bool)
    prev, nxt = h[:-1], h[1:]
    return (
        int(np.sum(~prev & ~nxt)),
        int(np.sum(~prev & nxt)),
        int(np.sum(prev & ~nxt)),
        int(np.sum(prev & nxt)),
    )


def christoffersen_independence(hits: np.ndarray) -> tuple[float, float]:
    """Christoffersen's (1998) Markov independence LR and its chi-square(1) p-value.

    With no hits (or only hits) the statistic is 0 (both likelihoods coincide).

    Raises:
        RiskInputError: with fewer than 2 observations.
    """
    if len(hits) < 2:
        raise RiskInputError(f"independence test needs at least 2 observations, got {len(hits)}")
    n00, n01, n10, n11 = transition_counts(hits)
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    restricted = _bernoulli_loglik(n00 + n10, n01 + n11, pi)
    unrestricted = _bernoulli_loglik(n00, n01, pi0) + _bernoulli_loglik(n10, n11, pi1)
    lr = max(-2.0 * (restricted - unrestricted), 0.0)
    return lr, float(stats.chi2.sf(lr, 1))


def basel_zone(n: int, x: int, alpha: float = 0.01) -> str:
    """Basel traffic-light zone from the binomial cumulative probability of ``x`` hits.

    Green while ``P(X <= x) < 95 %``, red from ``99.99 %``, yellow between (for 250 days at
    99 %: green 0-4, yellow 5-9, red 10+).
    """
    cdf = float(stats.binom.cdf(x, n, alpha))
    if cdf < 0.95:
        return "green"
    return "yellow" if cdf < 0.9999 else "red"


def basel_plus_factor(x: int) -> float:
    """Basel plus factor for ``x`` exceedances in 250 days at 99 % (0 green, 1 red)."""
    if x <= 4:
        return 0.0
    return BASEL_PLUS_FACTOR.get(x, 1.0)


@dataclass(frozen=True)
class VarBacktestResult:
    """Outcome of one VaR backtest."""

    model: str
    alpha: float
    n: int
    x: int
    expected: float
    lr_uc: float
    p_uc: float
    lr_ind: float
    p_ind: float
    lr_cc: float
    p_cc: float
    zone: str
    exceedances: pd.DataFrame = field(repr=False, compare=False)

    def row(self) -> dict[str, float | int | str]:
        """The CSV row (``CSV_COLUMNS``)."""
        return {c: getattr(self, c) for c in CSV_COLUMNS}


def backtest_var(returns: pd.Series, var: pd.Series, alpha: float, model: str) -> VarBacktestResult:
    """Backtest a VaR forecast series against realised returns.

    Args:
        returns: Realised returns.
        var: Positive-loss VaR forecasts on the same index.
        alpha: Tail probability the VaR was computed at.
        model: Label for the report.

    Raises:
        RiskInputError: if the indexes differ or any value is NaN.
    """
    if not returns.index.equals(var.index):
        raise RiskInputError("returns and VaR forecasts must share the same index")
    r = returns.to_numpy(dtype=np.float64)
    v = var.to_numpy(dtype=np.float64)
    if not (np.isfinite(r).all() and np.isfinite(v).all()):
        raise RiskInputError("returns and VaR forecasts must be finite")
    hits = r < -v
    n, x = int(hits.size), int(hits.sum())
    lr_uc, p_uc = kupiec_pof(n, x, alpha)
    lr_ind, p_ind = christoffersen_independence(hits)
    lr_cc = lr_uc + lr_ind
    exc = pd.DataFrame({"ret": r[hits], "var": v[hits]}, index=returns.index[hits])
    exc["excess"] = -exc["ret"] - exc["var"]
    return VarBacktestResult(
        model=model,
        alpha=alpha,
        n=n,
        x=x,
        expected=n * alpha,
        lr_uc=lr_uc,
        p_uc=p_uc,
        lr_ind=lr_ind,
        p_ind=p_ind,
        lr_cc=lr_cc,
        p_cc=float(stats.chi2.sf(lr_cc, 2)),
        zone=basel_zone(n, x, alpha),
        exceedances=exc,
    )
