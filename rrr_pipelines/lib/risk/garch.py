"""GARCH-based VaR: a skew-t GARCH(1,1) fitted once and filtered forward, and filtered HS.

Both use ``arch`` with a constant mean. "Fitted through date D" means the parameters are
estimated on returns up to and including D and then held fixed; the conditional variance is
still filtered through every later return, so the forecast for day t uses returns through t-1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rrr_live.risk.ewma import RiskInputError, as_finite_1d
from rrr_live.risk.var import VarEs, check_alpha, historical_var_es
from rrr_pipelines.lib.risk.rolling import check_finite_returns, evaluation_slice


def skewt_tail(nu: float, lam: float, alpha: float) -> tuple[float, float]:
    """Quantile ``q`` and tail mean ``E[Z | Z < q]`` of arch's standardized skew-t.

    Args:
        nu: Degrees of freedom (> 2).
        lam: Skewness parameter in (-1, 1).
        alpha: Tail probability.
    """
    from arch.univariate import SkewStudent

    dist = SkewStudent()
    q = float(np.asarray(dist.ppf(alpha, [nu, lam])))
    return q, float(dist.partial_moment(1, q, [nu, lam])) / alpha


@dataclass(frozen=True)
class GarchFit:
    """Fixed parameters of a fitted GARCH(1,1) and the date they were fitted through."""

    params: pd.Series
    fit_until: pd.Timestamp
    n_obs: int


def _fit_position(returns: pd.Series, fit_until: pd.Timestamp, min_obs: int) -> int:
    stop = int(returns.index.searchsorted(fit_until, side="right"))
    if stop < min_obs:
        raise RiskInputError(
            f"only {stop} returns up to {fit_until.date()}; GARCH needs at least {min_obs}"
        )
    return stop


def garch_skewt_forecasts(
    returns: pd.Series,
    alpha: float,
    fit_until: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    min_obs: int = 250,
) -> tuple[pd.DataFrame, GarchFit]:
    """One-day VaR/ES from a GARCH(1,1) skew-t fitted through ``fit_until``, for ``[start, end]``.

    Args:
        returns: Percent returns with a tz-aware index.
        alpha: Tail probability.
        fit_until: Last day of the estimation sample (inclusive); must precede ``start``.
        start: First evaluation day.
        end: Last evaluation day.
        min_obs: Minimum estimation sample.

    Returns:
        A frame (``ret``, ``var``, ``es``, ``exceed``) indexed by evaluation day, and the fit.

    Raises:
        RiskInputError: on NaN returns, too short a sample, or a fit that overlaps the evaluation.
    """
    from arch import arch_model

    alpha = check_alpha(alpha)
    check_finite_returns(returns)
    sl = evaluation_slice(returns, start, end)
    stop = _fit_position(returns, fit_until, min_obs)
    if stop > sl.start:
        raise RiskInputError(
            f"fit-until {fit_until.date()} must be before the first evaluation day "
            f"{returns.index[sl.start].date()}"
        )
    model = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="skewt")
    res = model.fit(disp="off", last_obs=stop, show_warning=False)
    fc = res.forecast(start=sl.start - 1, horizon=1, reindex=False)
    mean = fc.mean.iloc[: sl.stop - sl.start, 0].to_numpy()
    sd = np.sqrt(fc.variance.iloc[: sl.stop - sl.start, 0].to_numpy())
    q, tail = skewt_tail(float(res.params["eta"]), float(res.params["lambda"]), alpha)
    ret = returns.to_numpy()[sl]
    var = -(mean + sd * q)
    frame = pd.DataFrame(
        {"ret": ret, "var": var, "es": -(mean + sd * tail), "exceed": ret < -var},
        index=returns.index[sl],
    )
    return frame, GarchFit(params=res.params, fit_until=returns.index[stop - 1], n_obs=stop)


def fhs_var_es(
    returns: object,
    alpha: float,
    horizon: int = 1,
    n_sims: int = 10_000,
    seed: int = 0,
) -> VarEs:
    """Filtered historical simulation on GARCH(1,1) standardized residuals.

    A constant-mean GARCH(1,1) is fitted by Gaussian QMLE on all of ``returns``; its standardized
    residuals are the innovations. For ``horizon == 1`` VaR/ES come straight from the residuals'
    empirical quantile and tail mean scaled by the next-day volatility; for longer horizons
    ``n_sims`` paths are bootstrapped through the GARCH recursion and the h-day sums used.

    Args:
        returns: Percent returns, finite, at least 250 observations.
        alpha: Tail probability.
        horizon: Days.
        n_sims: Bootstrap paths when ``horizon > 1``.
        seed: Seed of the bootstrap.
    """
    from arch import arch_model

    alpha = check_alpha(alpha)
    r = as_finite_1d(returns, min_len=250)
    # arch rescales poorly scaled returns (minute bars: a few hundredths of a percent) by a
    # power of ten; the GARCH fit is scale-equivariant, so the figures are divided back.
    res = arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=True).fit(
        disp="off", show_warning=False
    )
    k = float(res.scale)
    mu, omega = float(res.params["mu"]), float(res.params["omega"])
    a, b = float(res.params["alpha[1]"]), float(res.params["beta[1]"])
    z = np.asarray(res.resid / res.conditional_volatility, dtype=np.float64)
    eps_last = float(r[-1] * k - mu)
    s2 = omega + a * eps_last**2 + b * float(res.conditional_volatility[-1]) ** 2
    if horizon == 1:
        base = historical_var_es(z, alpha)
        sd = math.sqrt(s2)
        return VarEs(var=(-mu + sd * base.var) / k, es=(-mu + sd * base.es) / k, alpha=alpha,
                     horizon=1)  # fmt: skip
    rng = np.random.default_rng(seed)
    s2_path = np.full(n_sims, s2)
    total = np.zeros(n_sims)
    for _ in range(horizon):
        eps = np.sqrt(s2_path) * z[rng.integers(0, z.size, n_sims)]
        total += mu + eps
        s2_path = omega + a * eps * eps + b * s2_path
    out = historical_var_es(total, alpha)
    return VarEs(var=out.var / k, es=out.es / k, alpha=alpha, horizon=horizon)
