"""EWMA (RiskMetrics) variance and covariance: batch forms and a per-bar incremental form.

Conventions (see ``docs/risk.md``):

* zero mean: the recursion runs on squared returns (cross products for the covariance);
* ``adjust=False``: ``s_t = lam * s_{t-1} + (1 - lam) * r_t**2``;
* the recursion is seeded with the first squared return, ``s_0 = r_0**2``;
* ``lam`` defaults to RiskMetrics' 0.94 for daily data.

The value after observing ``r_t`` is the forecast for ``t + 1``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from rrr_live.errors import RRRError

RISKMETRICS_LAMBDA: Final[float] = 0.94

FloatArray = NDArray[np.float64]


class RiskInputError(RRRError, ValueError):
    """Input to a risk calculation is invalid; the message names the argument and the problem."""


def check_lambda(lam: float) -> float:
    """Validate an EWMA decay factor.

    Args:
        lam: Decay factor, strictly between 0 and 1.

    Returns:
        The decay factor as a float.

    Raises:
        RiskInputError: if ``lam`` is not in (0, 1).
    """
    if not 0.0 < lam < 1.0:
        raise RiskInputError(f"EWMA lambda must be in (0, 1), got {lam!r}")
    return float(lam)


def as_finite_1d(values: object, name: str = "returns", min_len: int = 1) -> FloatArray:
    """Convert to a finite 1-D float64 array or raise.

    Args:
        values: Anything ``np.asarray`` accepts.
        name: Argument name used in error messages.
        min_len: Minimum number of observations.

    Returns:
        A contiguous float64 array.

    Raises:
        RiskInputError: if the input is not 1-D, too short or holds NaN/inf.
    """
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1:
        raise RiskInputError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size < min_len:
        raise RiskInputError(f"{name} needs at least {min_len} observations, got {arr.size}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise RiskInputError(
            f"{name} holds {int(bad.sum())} NaN/inf value(s); the first is at position {first}"
        )
    return arr


def ewma_variance_path(returns: object, lam: float = RISKMETRICS_LAMBDA) -> FloatArray:
    """Return the EWMA variance after each observation.

    Args:
        returns: 1-D returns, finite.
        lam: Decay factor.

    Returns:
        ``s`` with ``s[0] = r[0]**2`` and ``s[t] = lam*s[t-1] + (1-lam)*r[t]**2``.
    """
    r = as_finite_1d(returns)
    lam = check_lambda(lam)
    out = np.empty_like(r)
    s = r[0] * r[0]
    out[0] = s
    for t in range(1, r.size):
        s = lam * s + (1.0 - lam) * r[t] * r[t]
        out[t] = s
    return out


def ewma_weights(window: int, lam: float = RISKMETRICS_LAMBDA) -> FloatArray:
    """Weights that map a window of squared returns (oldest first) to its final EWMA variance.

    The first weight is ``lam**(window-1)`` (the seed), the others ``(1-lam)*lam**k``.

    Args:
        window: Window length, at least 1.
        lam: Decay factor.

    Returns:
        Weights summing to one.
    """
    if window < 1:
        raise RiskInputError(f"window must be >= 1, got {window}")
    lam = check_lambda(lam)
    ages = np.arange(window - 1, -1, -1, dtype=np.float64)
    w = (1.0 - lam) * lam**ages
    w[0] = lam ** (window - 1)
    return w


def rolling_ewma_variance(
    returns: object, window: int, lam: float = RISKMETRICS_LAMBDA
) -> FloatArray:
    """EWMA variance of every full window, each run afresh from its own first squared return.

    Args:
        returns: 1-D returns, finite.
        window: Window length.
        lam: Decay factor.

    Returns:
        Array of length ``len(returns) - window + 1``; entry ``i`` is the EWMA variance of
        ``returns[i : i + window]``.
    """
    r = as_finite_1d(returns, min_len=window)
    w = ewma_weights(window, lam)
    windows = np.lib.stride_tricks.sliding_window_view(r * r, window)
    result: FloatArray = windows @ w
    return result


class EwmaCovariance:
    """Per-bar EWMA covariance of several assets (zero mean, seeded by the first outer product).

    Call :meth:`update` once per closed bar with the vector of asset returns; the covariance is
    then the one-step-ahead forecast.
    """

    def __init__(self, n_assets: int, lam: float = RISKMETRICS_LAMBDA) -> None:
        if n_assets < 1:
            raise RiskInputError(f"n_assets must be >= 1, got {n_assets}")
        self._lam = check_lambda(lam)
        self._n_assets = n_assets
        self._cov: FloatArray = np.zeros((n_assets, n_assets), dtype=np.float64)
        self._count = 0

    @property
    def n_updates(self) -> int:
        """Number of return vectors seen so far."""
        return self._count

    @property
    def lam(self) -> float:
        """The decay factor."""
        return self._lam

    def update(self, returns: object) -> None:
        """Fold one vector of asset returns into the covariance.

        Args:
            returns: One return per asset, finite.

        Raises:
            RiskInputError: on a wrong length or a NaN/inf return; the state is left unchanged.
        """
        r = as_finite_1d(returns)
        if r.size != self._n_assets:
            raise RiskInputError(f"expected {self._n_assets} returns, got {r.size}")
        outer = np.outer(r, r)
        if self._count == 0:
            self._cov = outer
        else:
            self._cov *= self._lam
            self._cov += (1.0 - self._lam) * outer
        self._count += 1

    def covariance(self) -> FloatArray:
        """Return a copy of the current covariance forecast.

        Raises:
            RiskInputError: if no returns were seen yet.
        """
        self._require_data()
        cov: FloatArray = self._cov.copy()
        return cov

    def correlation(self) -> FloatArray:
        """Return the correlation matrix; assets with zero variance get zero correlation."""
        self._require_data()
        sd = np.sqrt(np.diag(self._cov))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr: FloatArray = self._cov / np.outer(sd, sd)
        corr[~np.isfinite(corr)] = 0.0
        np.fill_diagonal(corr, 1.0)
        return corr

    def portfolio_variance(self, positions: object) -> float:
        """Return ``w' S w`` for positions (or weights) ``w``."""
        self._require_data()
        w = as_finite_1d(positions, name="positions")
        if w.size != self._n_assets:
            raise RiskInputError(f"expected {self._n_assets} positions, got {w.size}")
        return float(w @ self._cov @ w)

    def _require_data(self) -> None:
        if self._count == 0:
            raise RiskInputError("EWMA covariance has no data yet; call update() first")
