"""Correlation engine: rolling correlations, Ledoit-Wolf shrinkage, concentration, regimes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rrr_live.risk.ewma import RiskInputError


def _clean(returns: pd.DataFrame, min_rows: int) -> pd.DataFrame:
    if returns.shape[1] < 1:
        raise RiskInputError("return frame has no columns")
    if returns.isna().to_numpy().any():
        raise RiskInputError("returns hold NaN; align the symbols (inner join) first")
    if len(returns) < min_rows:
        raise RiskInputError(f"need at least {min_rows} rows of returns, got {len(returns)}")
    return returns


def cov_to_corr(cov: np.ndarray) -> np.ndarray:
    """Correlation from covariance; a zero-variance asset gets zero correlation."""
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr: np.ndarray = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = 0.0
    np.fill_diagonal(corr, 1.0)
    return corr


@dataclass(frozen=True)
class RollingCorrelation:
    """Correlation matrices of trailing windows: ``matrices[k]`` ends on ``index[k]``."""

    index: pd.DatetimeIndex
    symbols: list[str]
    matrices: np.ndarray

    def average_pairwise(self) -> pd.Series:
        """Mean off-diagonal correlation per window (NaN with a single asset)."""
        n = len(self.symbols)
        if n < 2:
            return pd.Series(np.nan, index=self.index)
        off = (self.matrices.sum(axis=(1, 2)) - n) / (n * (n - 1))
        return pd.Series(off, index=self.index)


def rolling_correlation(
    returns: pd.DataFrame, window: int = 60, step: int = 1
) -> RollingCorrelation:
    """Sample correlation of every ``window``-row window, taken every ``step`` rows."""
    if window < 3 or step < 1:
        raise RiskInputError(f"window must be >= 3 and step >= 1, got {window}, {step}")
    r = _clean(returns, window).to_numpy(dtype=np.float64)
    ends = np.arange(window - 1, len(r), step)
    mats = np.empty((ends.size, r.shape[1], r.shape[1]))
    for k, e in enumerate(ends):
        mats[k] = cov_to_corr(np.atleast_2d(np.cov(r[e - window + 1 : e + 1], rowvar=False)))
    return RollingCorrelation(
        index=pd.DatetimeIndex(returns.index[ends]),
        symbols=[str(c) for c in returns.columns],
        matrices=mats,
    )


@dataclass(frozen=True)
class Shrunk:
    """Ledoit-Wolf shrunk covariance, its correlation, and the shrinkage intensity."""

    cov: pd.DataFrame
    corr: pd.DataFrame
    shrinkage: float


def ledoit_wolf(returns: pd.DataFrame) -> Shrunk:
    """Ledoit-Wolf shrinkage towards a scaled identity (``sklearn.covariance.LedoitWolf``)."""
    from sklearn.covariance import LedoitWolf

    r = _clean(returns, 2)
    fit = LedoitWolf().fit(r.to_numpy(dtype=np.float64))
    cols = [str(c) for c in r.columns]
    cov = pd.DataFrame(fit.covariance_, index=cols, columns=cols)
    corr = pd.DataFrame(cov_to_corr(fit.covariance_), index=cols, columns=cols)
    return Shrunk(cov=cov, corr=corr, shrinkage=float(fit.shrinkage_))


def effective_number_of_bets(cov: np.ndarray, weights: np.ndarray) -> float:
    """Meucci's effective number of (principal-component) bets of a portfolio.

    ``p_k = (e_k' w)^2 lambda_k / (w' S w)`` over the eigenpairs of ``S``; ENB is
    ``exp(-sum p_k log p_k)``, between 1 (one bet) and the number of assets.

    Raises:
        RiskInputError: if the portfolio variance is zero (e.g. all weights zero).
    """
    c = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != c.shape[0]:
        raise RiskInputError(f"expected {c.shape[0]} weights, got {w.size}")
    vals, vecs = np.linalg.eigh(c)
    contrib = (vecs.T @ w) ** 2 * np.clip(vals, 0.0, None)
    total = contrib.sum()
    if not total > 0:
        raise RiskInputError("portfolio variance is zero; effective number of bets is undefined")
    p = contrib[contrib > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def effective_rank(corr: np.ndarray) -> float:
    """``exp`` of the entropy of the normalised eigenvalues (1 = one factor, N = independent)."""
    vals = np.clip(np.linalg.eigvalsh(np.atleast_2d(corr)), 0.0, None)
    p = vals[vals > 0] / vals.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


@dataclass(frozen=True)
class RegimeComparison:
    """Correlation in calm and stressed days and a summary table."""

    calm: pd.DataFrame
    stress: pd.DataFrame
    summary: pd.DataFrame
    threshold: float


def regime_comparison(
    returns: pd.DataFrame, weights: np.ndarray, vol_window: int = 20, quantile: float = 0.9
) -> RegimeComparison:
    """Compare correlation and concentration on stressed vs calm days.

    A day is stressed when the portfolio's trailing ``vol_window``-day volatility (ending the day
    before) is above its ``quantile``; all other days with a defined volatility are calm.
    """
    if not 0 < quantile < 1:
        raise RiskInputError(f"quantile must be in (0, 1), got {quantile}")
    r = _clean(returns, vol_window + 10)
    w = np.asarray(weights, dtype=np.float64)
    vol = (r @ w).rolling(vol_window).std().shift(1)
    threshold = float(vol.quantile(quantile))
    stressed = (vol > threshold).to_numpy()
    calm = (vol <= threshold).to_numpy()
    parts = {"calm": r[calm], "stress": r[stressed]}
    rows, corrs = [], {}
    for name, part in parts.items():
        if len(part) < 3:
            raise RiskInputError(f"only {len(part)} {name} days; widen the data or the quantile")
        cov = np.atleast_2d(part.cov().to_numpy())
        corr = cov_to_corr(cov)
        corrs[name] = pd.DataFrame(corr, index=r.columns, columns=r.columns)
        n = corr.shape[0]
        rows.append(
            {
                "regime": name,
                "days": len(part),
                "avg_corr": float((corr.sum() - n) / (n * (n - 1))) if n > 1 else np.nan,
                "port_vol": float(np.sqrt(w @ cov @ w)),
                "enb": effective_number_of_bets(cov, w),
                "effective_rank": effective_rank(corr),
            }
        )
    return RegimeComparison(corrs["calm"], corrs["stress"], pd.DataFrame(rows), threshold)
