"""Scenario models for Monte Carlo VaR: multivariate normal, multivariate t, t-copula.

Every model draws simple returns as fractions (0.01 = 1 %) in chunks of shape
``(size, n_assets)`` from a ``numpy.random.Generator``, so that a seed gives common random
numbers across portfolios.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

from rrr_live.risk.ewma import RiskInputError

FloatArray = NDArray[np.float64]


class ScenarioModel(Protocol):
    """A joint distribution of one-period asset returns."""

    @property
    def n_assets(self) -> int:
        """Number of assets."""
        ...

    def sample(self, rng: np.random.Generator, size: int) -> NDArray[np.floating]:
        """Draw ``size`` scenarios as an array of shape ``(size, n_assets)``."""
        ...


def psd_factor(cov: np.ndarray, name: str = "covariance") -> FloatArray:
    """Return ``A`` with ``A @ A.T == cov``.

    Cholesky when ``cov`` is positive definite; otherwise, for a singular but positive
    semi-definite matrix (e.g. two identical assets), the eigen-decomposition with the tiny
    negative rounding eigenvalues set to zero.

    Raises:
        RiskInputError: if ``cov`` is not square, symmetric, finite, or has a clearly negative
            eigenvalue.
    """
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise RiskInputError(f"{name} must be a non-empty square matrix, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise RiskInputError(f"{name} holds NaN/inf")
    scale = max(float(np.abs(c).max()), 1e-300)
    if not np.allclose(c, c.T, rtol=0.0, atol=1e-10 * scale):
        raise RiskInputError(f"{name} is not symmetric")
    try:
        chol: FloatArray = np.linalg.cholesky(c).astype(np.float64, copy=False)
        return chol
    except np.linalg.LinAlgError:
        pass
    vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
    if vals.min() < -1e-8 * max(vals.max(), 1e-300):
        raise RiskInputError(
            f"{name} is not positive semi-definite (smallest eigenvalue {vals.min():.3g})"
        )
    factor: FloatArray = vecs * np.sqrt(np.clip(vals, 0.0, None))
    return factor


def _as_vector(x: object, n: int, name: str) -> FloatArray:
    v = np.asarray(x, dtype=np.float64).reshape(-1)
    if v.size != n or not np.isfinite(v).all():
        raise RiskInputError(f"{name} must be {n} finite values, got {v.size}")
    return v


class _FactorModel:
    """What the elliptical models share: a factor ``A`` of their dispersion matrix."""

    _factor: np.ndarray
    dtype: type[np.floating]

    @property
    def n_assets(self) -> int:
        """Number of assets."""
        return int(self._factor.shape[0])

    def _normal_draws(self, rng: np.random.Generator, size: int) -> NDArray[np.floating]:
        """``size`` rows of ``A z`` with ``z`` standard normal."""
        z = rng.standard_normal((size, self.n_assets), dtype=self.dtype)
        out: NDArray[np.floating] = z @ self._factor.T
        return out

    def _t_draws(self, rng: np.random.Generator, size: int, df: float) -> NDArray[np.floating]:
        """``size`` rows of ``A z / sqrt(w / df)``, ``w ~ chi2(df)``: a centred multivariate t."""
        out = self._normal_draws(rng, size)
        out /= np.sqrt(rng.chisquare(df, size) / df).astype(self.dtype)[:, None]
        return out


@dataclass
class MultivariateNormal(_FactorModel):
    """Returns ``~ N(mean, cov)``."""

    mean: np.ndarray
    cov: np.ndarray
    dtype: type[np.floating] = np.float32
    _factor: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._factor = psd_factor(self.cov).astype(self.dtype)
        self.mean = _as_vector(self.mean, self._factor.shape[0], "mean")

    def sample(self, rng: np.random.Generator, size: int) -> NDArray[np.floating]:
        """Draw ``size`` scenarios."""
        out = self._normal_draws(rng, size)
        out += self.mean.astype(self.dtype)
        return out


@dataclass
class MultivariateT(_FactorModel):
    """Returns ``= mean + A z / sqrt(w / df)`` with ``A A' = scale``, ``w ~ chi2(df)``.

    ``scale`` is the dispersion matrix; the covariance is ``scale * df / (df - 2)``.
    """

    mean: np.ndarray
    scale: np.ndarray
    df: float
    dtype: type[np.floating] = np.float32
    _factor: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.df > 0:
            raise RiskInputError(f"degrees of freedom must be > 0, got {self.df}")
        self._factor = psd_factor(self.scale, "scale matrix").astype(self.dtype)
        self.mean = _as_vector(self.mean, self._factor.shape[0], "mean")

    def sample(self, rng: np.random.Generator, size: int) -> NDArray[np.floating]:
        """Draw ``size`` scenarios."""
        out = self._t_draws(rng, size, self.df)
        out += self.mean.astype(self.dtype)
        return out


class _TCdfGrid:
    """Student-t CDF times ``scale`` by linear interpolation on a uniform grid.

    The grid error is below 1e-6 in probability; evaluated in float32 the argument's rounding
    adds at most about 2e-6 (the same as moving ``x`` by 1e-5), far below Monte Carlo noise.
    """

    def __init__(self, df: float, scale: float, dtype: type[np.floating]) -> None:
        limit, points = 60.0, 48_001
        self.dtype = dtype
        self.x0 = dtype(-limit)
        self.inv_dx = dtype((points - 1) / (2.0 * limit))
        self.top = dtype(points - 1.5)
        table = special.stdtr(df, np.linspace(-limit, limit, points)) * scale
        self.table = table.astype(dtype)
        self.slope = np.append(np.diff(table), 0.0).astype(dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        pos = x.astype(self.dtype)  # a copy
        pos -= self.x0
        pos *= self.inv_dx
        np.clip(pos, 0.0, self.top, out=pos)
        i = pos.astype(np.intp)
        pos -= i
        pos *= self.slope[i]
        pos += self.table[i]
        return pos


@dataclass
class TCopulaEmpirical(_FactorModel):
    """t-copula dependence with empirical marginals (linear-interpolation quantiles).

    ``history`` is a ``(T, N)`` array of past returns as fractions; the copula correlation is
    the Pearson correlation of the t-scores of the ranks (``t_df^-1(rank / (T + 1))``). A
    scenario draws a multivariate t vector, maps each coordinate to a probability with the t
    CDF, and reads the asset's empirical quantile at that probability. A singular correlation
    (e.g. T <= N or duplicated assets) is factored by its eigen-decomposition.
    """

    history: np.ndarray
    df: float = 5.0
    corr: np.ndarray | None = None
    dtype: type[np.floating] = np.float32
    _factor: np.ndarray = field(init=False, repr=False)
    _sorted: np.ndarray = field(init=False, repr=False)
    _diff: np.ndarray = field(init=False, repr=False)
    _offsets: np.ndarray = field(init=False, repr=False)
    _cdf: _TCdfGrid = field(init=False, repr=False)

    def __post_init__(self) -> None:
        h = np.asarray(self.history, dtype=np.float64)
        if h.ndim != 2 or h.shape[0] < 3 or h.shape[1] < 1:
            raise RiskInputError(f"history must be (T >= 3, N >= 1), got shape {h.shape}")
        if not np.isfinite(h).all():
            raise RiskInputError("history holds NaN/inf returns")
        if not self.df > 0:
            raise RiskInputError(f"degrees of freedom must be > 0, got {self.df}")
        if self.corr is None:
            self.corr = copula_correlation(h, self.df)
        self._factor = psd_factor(self.corr, "copula correlation").astype(self.dtype)
        srt = np.sort(h, axis=0).T  # (N, T)
        diff = np.concatenate([np.diff(srt, axis=1), np.zeros((srt.shape[0], 1))], axis=1)
        self._sorted = np.ascontiguousarray(srt, dtype=self.dtype).reshape(-1)
        self._diff = np.ascontiguousarray(diff, dtype=self.dtype).reshape(-1)
        self._offsets = np.arange(srt.shape[0], dtype=np.intp) * srt.shape[1]
        self._cdf = _TCdfGrid(self.df, scale=h.shape[0] - 1, dtype=self.dtype)

    @property
    def n_obs(self) -> int:
        """Length of the history."""
        return int(np.asarray(self.history).shape[0])

    def sample(self, rng: np.random.Generator, size: int) -> NDArray[np.floating]:
        """Draw ``size`` scenarios."""
        x = self._t_draws(rng, size, self.df)
        pos = self._cdf(x)  # position in the sorted history, in [0, T - 1]
        del x
        i = pos.astype(np.intp)
        pos -= i
        i += self._offsets
        pos *= self._diff[i]
        pos += self._sorted[i]
        return pos


def copula_correlation(history: np.ndarray, df: float) -> FloatArray:
    """Pearson correlation of the t-scores of the column ranks (pseudo-observations)."""
    h = np.asarray(history, dtype=np.float64)
    u = stats.rankdata(h, axis=0) / (h.shape[0] + 1)
    scores = stats.t.ppf(u, df)
    sd = scores.std(axis=0)
    if (sd == 0).any():
        raise RiskInputError("history has a constant column; its copula correlation is undefined")
    corr = np.corrcoef(scores, rowvar=False)
    return np.atleast_2d(corr)
