"""Report tables behind the Dagster risk assets (Dagster-free, testable with plain frames)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rrr_live.risk.ewma import RiskInputError
from rrr_live.risk.var import (
    VarEs,
    cornish_fisher_var_es,
    ewma_var_es,
    historical_var_es,
    parametric_normal_var_es,
)
from rrr_pipelines.lib.risk.garch import fhs_var_es
from rrr_pipelines.lib.risk.montecarlo import monte_carlo_var_es
from rrr_pipelines.lib.risk.scenarios import TCopulaEmpirical
from rrr_pipelines.lib.risk.stress import StressSummary, position_vector, stress_summary

ALPHAS = (0.05, 0.01)
HORIZONS = (1, 10)


def equal_weight_positions(symbols: list[str], value: float = 1_000_000.0) -> dict[str, float]:
    """Equal position values summing to ``value``."""
    if not symbols:
        raise RiskInputError("no symbols to build a portfolio from")
    return {s: value / len(symbols) for s in symbols}


def portfolio_returns(returns: pd.DataFrame, positions: Mapping[str, float]) -> pd.Series:
    """Percent P&L per unit of gross exposure (positions held at their values every day).

    For a long-only book this is the percent return of the portfolio value; for a long/short
    book (net value possibly zero) the gross exposure is the base.
    """
    pos = position_vector(positions, returns)
    gross = float(pos.abs().sum())
    if gross == 0:
        raise RiskInputError("gross exposure is zero; percent returns are undefined")
    return (returns[pos.index] @ (pos / gross)).rename("portfolio")


def var_table(
    returns: pd.DataFrame,
    positions: Mapping[str, float],
    window: int = 250,
    n_paths: int = 100_000,
    seed: int = 0,
) -> pd.DataFrame:
    """VaR and ES of the portfolio at 95 %/99 %, 1 and 10 days, by every method.

    hs, normal, cornish-fisher and ewma use the last ``window`` portfolio returns (h-day by the
    square-root-of-time rule); fhs fits GARCH(1,1) to the whole history and bootstraps 10-day
    paths; mc is the t-copula (df 5) with empirical marginals of the last ``window`` asset
    returns, 1-day, scaled by ``sqrt(h)``. Figures are in currency: the percent figures of
    :func:`portfolio_returns` times the gross exposure, i.e. the P&L of the positions.
    """
    port = portfolio_returns(returns, positions)
    if len(port) < window:
        raise RiskInputError(f"{len(port)} returns; fewer than the {window}-day window")
    value = float(sum(abs(v) for v in positions.values()))
    recent = port.to_numpy()[-window:]
    pos = position_vector(positions, returns)
    model = TCopulaEmpirical(returns[pos.index].to_numpy()[-window:] / 100.0, df=5.0)
    mc = monte_carlo_var_es(model, pos.to_numpy(), alphas=ALPHAS, n_paths=n_paths, seed=seed)
    rows = []
    for alpha in ALPHAS:
        for h in HORIZONS:
            pct: dict[str, VarEs] = {
                "hs": historical_var_es(recent, alpha, h),
                "normal": parametric_normal_var_es(recent, alpha, h),
                "cornish-fisher": cornish_fisher_var_es(recent, alpha, h),
                "ewma": ewma_var_es(recent, alpha, h),
                "fhs": fhs_var_es(port.to_numpy(), alpha, h, seed=seed),
            }
            for method, r in pct.items():
                rows.append(_row(method, alpha, h, r.var * value / 100, r.es * value / 100))
            m = mc[alpha]
            rows.append(_row("mc-t-copula", alpha, h, m.var * np.sqrt(h), m.es * np.sqrt(h)))
    return pd.DataFrame(rows)


def _row(method: str, alpha: float, h: int, var: float, es: float) -> dict[str, object]:
    return {"method": method, "confidence": 1 - alpha, "horizon_days": h, "var": var, "es": es}


def pick(table: pd.DataFrame, method: str, confidence: float, horizon: int, column: str) -> float:
    """One figure of a :func:`var_table` (e.g. ``pick(t, "hs", 0.99, 1, "var")``).

    Raises:
        RiskInputError: if the table has no such row.
    """
    sel = table[
        (table["method"] == method)
        & np.isclose(table["confidence"], confidence)
        & (table["horizon_days"] == horizon)
    ]
    if sel.empty:
        raise RiskInputError(f"no {method} {confidence:.0%} {horizon}-day row in the VaR table")
    return float(sel[column].iloc[0])


@dataclass(frozen=True)
class PortfolioRisk:
    """The VaR and stress figures of one book: what the gate reads and the reports show.

    Attributes:
        var: :func:`var_table` of the book.
        var_99_1d: Historical-simulation 99 % 1-day VaR (currency), the gate's VaR figure.
        es_99_1d: Historical-simulation 99 % 1-day ES (currency).
        stress: :func:`~rrr_pipelines.lib.risk.stress.stress_summary` of the book.
    """

    var: pd.DataFrame
    var_99_1d: float
    es_99_1d: float
    stress: StressSummary

    @property
    def worst_stress_loss(self) -> float:
        """Worst static stress loss (currency, >= 0)."""
        return self.stress.worst_loss


def portfolio_risk(
    returns: pd.DataFrame,
    positions: Mapping[str, float],
    window: int = 250,
    n_paths: int = 100_000,
    seed: int = 0,
) -> PortfolioRisk:
    """VaR table and stress summary of a book (the ``var_report``/``stress_report`` maths).

    Raises:
        RiskInputError: if the book is empty or flat, names a symbol without returns, or the
            history is shorter than ``window``.
    """
    table = var_table(returns, positions, window=window, n_paths=n_paths, seed=seed)
    return PortfolioRisk(
        table,
        pick(table, "hs", 0.99, 1, "var"),
        pick(table, "hs", 0.99, 1, "es"),
        stress_summary(returns, positions),
    )


def component_es_table(
    returns: pd.DataFrame, positions: Mapping[str, float], window: int = 250, seed: int = 0
) -> pd.DataFrame:
    """Monte Carlo Euler component ES (99 %, 1 day) per symbol; the column sums to total ES."""
    pos = position_vector(positions, returns)
    model = TCopulaEmpirical(returns[pos.index].to_numpy()[-window:] / 100.0, df=5.0)
    res = monte_carlo_var_es(model, pos.to_numpy(), alphas=(0.01,), n_paths=100_000, seed=seed)
    comp = res[0.01].component_es
    return pd.DataFrame(
        {
            "symbol": pos.index,
            "position": pos.to_numpy(),
            "component_es_99": comp,
            "share": comp / res[0.01].es,
        }
    )
