"""Rolling out-of-sample 1-day VaR forecasts for backtests.

A day's VaR uses only the ``window`` returns that end the day before (no look-ahead).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from rrr_live.risk.ewma import RISKMETRICS_LAMBDA, RiskInputError, ewma_weights
from rrr_live.risk.var import check_alpha, norm_ppf

ROLLING_METHODS: Final[tuple[str, ...]] = ("hs", "normal", "ewma", "cornish-fisher")
GARCH_METHODS: Final[tuple[str, ...]] = ("garch-skewt",)
ALL_METHODS: Final[tuple[str, ...]] = ROLLING_METHODS + GARCH_METHODS


def evaluation_slice(returns: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> slice:
    """Integer positions of the evaluation days ``start <= ts <= end``.

    Raises:
        RiskInputError: if start is after end or no returns fall in the range.
    """
    if start > end:
        raise RiskInputError(f"start {start.date()} is after end {end.date()}")
    idx = returns.index
    lo = int(idx.searchsorted(start, side="left"))
    hi = int(idx.searchsorted(end, side="right"))
    if hi <= lo:
        raise RiskInputError(
            f"no returns between {start.date()} and {end.date()} "
            f"(data covers {idx[0].date()}..{idx[-1].date()})"
        )
    return slice(lo, hi)


def _window_values(method: str, windows: np.ndarray, alpha: float, lam: float) -> np.ndarray:
    out: np.ndarray
    if method == "hs":
        out = -np.quantile(windows, alpha, axis=1, method="linear")
        return out
    z = norm_ppf(alpha)
    if method == "normal":
        out = -(windows.mean(axis=1) + windows.std(axis=1, ddof=1) * z)
        return out
    if method == "ewma":
        s2 = (windows * windows) @ ewma_weights(windows.shape[1], lam)
        out = -np.sqrt(s2) * z
        return out
    # cornish-fisher with moment estimators, as rrr_live.risk.var.cornish_fisher_var_es
    mu = windows.mean(axis=1)
    d = windows - mu[:, None]
    m2 = np.mean(d * d, axis=1)
    s = np.mean(d**3, axis=1) / m2**1.5
    k = np.mean(d**4, axis=1) / m2**2 - 3.0
    zcf = z + (z * z - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s * s / 36
    out = -(mu + windows.std(axis=1, ddof=1) * zcf)
    return out


def rolling_var_forecasts(
    returns: pd.Series,
    method: str,
    alpha: float,
    start: pd.Timestamp,
    end: pd.Timestamp,
    window: int = 250,
    lam: float = RISKMETRICS_LAMBDA,
) -> pd.DataFrame:
    """One-day-ahead VaR for every day in ``[start, end]`` from the preceding ``window`` returns.

    Args:
        returns: Percent returns, finite, increasing tz-aware index.
        method: One of ``ROLLING_METHODS``.
        alpha: Tail probability.
        start: First evaluation day (inclusive).
        end: Last evaluation day (inclusive).
        window: Number of past returns each forecast uses.
        lam: EWMA decay (``method="ewma"``).

    Returns:
        Frame indexed by day with columns ``ret``, ``var`` (positive loss) and ``exceed``
        (``ret < -var``).

    Raises:
        RiskInputError: on an unknown method, NaN returns, or too little history before start.
    """
    alpha = check_alpha(alpha)
    if method not in ROLLING_METHODS:
        raise RiskInputError(f"unknown rolling VaR method {method!r}; expected {ROLLING_METHODS}")
    if window < 2:
        raise RiskInputError(f"window must be >= 2 returns, got {window}")
    check_finite_returns(returns)
    sl = evaluation_slice(returns, start, end)
    if sl.start < window:
        raise RiskInputError(
            f"window of {window} returns is longer than the {sl.start} returns available "
            f"before {returns.index[sl.start].date()}"
        )
    values = returns.to_numpy(dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(
        values[sl.start - window : sl.stop - 1], window
    )
    var = _window_values(method, windows, alpha, lam)
    ret = values[sl]
    return pd.DataFrame({"ret": ret, "var": var, "exceed": ret < -var}, index=returns.index[sl])


def check_finite_returns(returns: pd.Series) -> None:
    """Raise ``RiskInputError`` naming the first NaN/inf return, if any."""
    bad = ~np.isfinite(returns.to_numpy(dtype=np.float64))
    if bad.any():
        raise RiskInputError(
            f"returns hold {int(bad.sum())} NaN/inf value(s); the first is at "
            f"{returns.index[np.flatnonzero(bad)[0]]}"
        )
