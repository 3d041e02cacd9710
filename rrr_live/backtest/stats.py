"""Performance statistics of an equity curve (pure numpy, no look-ahead concerns)."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

NS_PER_YEAR: Final[float] = 365.25 * 86400 * 1e9


def max_drawdown(equity: F64) -> float:
    """Return the largest fall from a running peak, as a fraction of the peak."""
    if len(equity) == 0:
        return 0.0
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak))


def _cagr(total: float, years: float) -> float:
    if years <= 0 or not total > -1:
        return math.nan
    log_growth = math.log1p(total) / years
    return math.expm1(log_growth) if log_growth < 700 else math.inf


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 and math.isfinite(den) else math.nan


def compute_stats(
    ts_ns: I64,
    equity: F64,
    gross: F64,
    traded_notional: float,
    fees: float,
    periods_per_year: float | None = None,
) -> dict[str, float]:
    """Return Sharpe, Sortino, Calmar, max drawdown, turnover, hit rate, exposure and fees.

    Args:
        ts_ns: time of each equity point.
        equity: equity at each point.
        gross: gross exposure at each point.
        traded_notional: total absolute traded notional.
        fees: total fees paid.
        periods_per_year: annualization; ``None`` = equity points per year of the run.

    Definitions: returns are per equity point; Sharpe = mean / std (ddof 1) * sqrt(ppy);
    Sortino uses the root-mean-square of negative returns; Calmar = CAGR / max drawdown;
    turnover = traded notional / mean equity per year; hit rate = share of periods that began
    with a position and had a positive return; exposure = mean gross exposure / equity.
    """
    out: dict[str, float] = {"final_equity": float(equity[-1]) if len(equity) else math.nan}
    years = (float(ts_ns[-1] - ts_ns[0]) / NS_PER_YEAR) if len(ts_ns) > 1 else 0.0
    rets = equity[1:] / equity[:-1] - 1.0 if len(equity) > 1 else np.zeros(0)
    ppy = periods_per_year or (_ratio(len(rets), years) if years > 0 else math.nan)
    total = float(equity[-1] / equity[0] - 1.0) if len(equity) else math.nan
    cagr = _cagr(total, years)
    mdd = max_drawdown(equity)
    std = float(rets.std(ddof=1)) if len(rets) > 1 else math.nan
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2))) if len(rets) else math.nan
    mean = float(rets.mean()) if len(rets) else math.nan
    exposed = gross[:-1] > 0 if len(gross) > 1 else np.zeros(0, dtype=bool)
    out.update(
        total_return=total,
        cagr=cagr,
        sharpe=_ratio(mean, std) * math.sqrt(ppy),
        sortino=_ratio(mean, downside) * math.sqrt(ppy),
        max_drawdown=mdd,
        calmar=_ratio(cagr, mdd),
        turnover=_ratio(traded_notional / float(np.mean(equity)), years) if len(equity) else 0.0,
        hit_rate=float(np.mean(rets[exposed] > 0)) if exposed.any() else math.nan,
        exposure=float(np.mean(gross / equity)) if len(equity) else math.nan,
        fees=float(fees),
        periods_per_year=float(ppy),
        years=years,
    )
    return out
