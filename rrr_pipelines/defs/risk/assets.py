"""Risk report assets (group ``risk``): thin wrappers over ``rrr_pipelines.lib.risk``.

Portfolio: for now an equal-weight portfolio (1,000,000 in total) of the bundled symbols; the
trading core's strategy portfolio replaces it later. Key numbers are float metadata so that a
promotion gate can read them from the latest materialization.
"""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.risk import correlation as corr_lib
from rrr_pipelines.lib.risk import render, report, stress
from rrr_pipelines.lib.risk.data import returns_from_bars
from rrr_pipelines.lib.risk.var_backtest import run_var_backtest

GROUP = "risk"
PORTFOLIO_VALUE = 1_000_000.0
STRESS_LIMIT_PCT = 10.0  # reverse stress: loss limit as % of gross exposure
BACKTEST_METHODS = ("hs", "normal", "ewma")


def _load(database: DatabaseResource) -> tuple[pd.DataFrame, dict[str, float]]:
    bars = database.load_bars(source="bundled", interval="1d")
    returns = returns_from_bars(bars)
    return returns, report.equal_weight_positions(list(returns.columns), PORTFOLIO_VALUE)


@dg.asset(group_name=GROUP, deps=["market_bars"], description="Portfolio VaR and ES by method.")
def var_report(database: DatabaseResource) -> dg.MaterializeResult:
    """VaR/ES at 95/99 %, 1 and 10 days, of the equal-weight bundled portfolio (see module doc)."""
    returns, positions = _load(database)
    table = report.var_table(returns, positions)
    comp = report.component_es_table(returns, positions)

    def pick(method: str, conf: float, h: int, col: str) -> float:
        sel = table[(table.method == method) & np.isclose(table.confidence, conf)]
        return float(sel[sel.horizon_days == h][col].iloc[0])

    return dg.MaterializeResult(
        metadata={
            "var_99_1d": pick("hs", 0.99, 1, "var"),
            "es_99_1d": pick("hs", 0.99, 1, "es"),
            "var_95_1d": pick("hs", 0.95, 1, "var"),
            "var_99_10d": pick("hs", 0.99, 10, "var"),
            "mc_es_99_1d": pick("mc-t-copula", 0.99, 1, "es"),
            "portfolio_value": PORTFOLIO_VALUE,
            "as_of": str(returns.index[-1].date()),
            "table": dg.MetadataValue.md(render.table_markdown(table, ",.0f")),
            "component_es": dg.MetadataValue.md(render.table_markdown(comp, ",.4g")),
        }
    )


@dg.asset(group_name=GROUP, deps=["market_bars"], description="VaR backtests of the portfolio.")
def var_backtest(database: DatabaseResource) -> dg.MaterializeResult:
    """Kupiec/Christoffersen backtests of rolling hs/normal/ewma and a skew-t GARCH, at 1 and 5 %.

    Rolling models cover all days after the first 250; the GARCH model is fitted through the
    day before the last 252 days and evaluated on them.
    """
    returns, positions = _load(database)
    port = report.portfolio_returns(returns, positions)
    start, end = port.index[250], port.index[-1]
    garch_start = port.index[-252]
    results, frames = [], {}
    for alpha in (0.01, 0.05):
        for method in (*BACKTEST_METHODS, "garch-skewt"):
            t0 = garch_start if method == "garch-skewt" else start
            res, frame = run_var_backtest(port, method, alpha, t0, end)
            results.append(res)
            if alpha == 0.01:
                frames[method] = frame.loc[garch_start:]
    table = pd.DataFrame([r.row() | {"zone": r.zone} for r in results])
    worst_p = float(table["p_cc"].min())
    meta: dict[str, object] = {
        "table": dg.MetadataValue.md(render.table_markdown(table)),
        "plot": dg.MetadataValue.md(
            render.var_band_plot(frames, "Portfolio returns and 99 % VaR, last year")
        ),
        "min_p_cc": worst_p,
    }
    for r in results:
        meta[f"exceedances_{r.model}_{int(100 * r.alpha)}"] = r.x
        meta[f"p_uc_{r.model}_{int(100 * r.alpha)}"] = float(r.p_uc)
    return dg.MaterializeResult(metadata=meta)


@dg.asset(group_name=GROUP, deps=["market_bars"], description="Historical/hypothetical stress.")
def stress_report(database: DatabaseResource) -> dg.MaterializeResult:
    """Named crises, worst 1/5/20-day windows, shocks (equity -20 %, vol x2, corr 1), reverse."""
    returns, positions = _load(database)
    hist = stress.historical_scenarios(returns, positions)
    worst = pd.concat([stress.worst_windows(returns, positions, d, 3) for d in (1, 5, 20)])
    base_var = stress.stressed_normal_var(returns, positions, 0.01)[0]
    hypo = pd.DataFrame(
        {
            "scenario": ["equity -20 %", "VaR99 vol x2", "VaR99 corr -> 1", "VaR99 vol x2 corr 1"],
            "pnl": [
                stress.equity_shock(positions, -0.20),
                -stress.stressed_normal_var(returns, positions, 0.01, vol_mult=2.0)[0],
                -stress.stressed_normal_var(returns, positions, 0.01, corr_to_one=True)[0],
                -stress.stressed_normal_var(returns, positions, 0.01, 2.0, corr_to_one=True)[0],
            ],
        }
    )
    limit = STRESS_LIMIT_PCT / 100 * sum(abs(v) for v in positions.values())
    reverse = stress.reverse_stress_table(returns, positions, limit)
    covered = hist[hist["covered"]]
    summary = pd.concat(
        [covered[["scenario", "pnl"]], worst[["scenario", "pnl"]], hypo], ignore_index=True
    )
    return dg.MaterializeResult(
        metadata={
            "worst_stress_loss": float(-summary["pnl"].min()),
            "equity_minus_20_loss": float(-hypo["pnl"].iloc[0]),
            "base_var_99_1d_normal": float(base_var),
            "historical": dg.MetadataValue.md(render.table_markdown(hist, ",.0f")),
            "worst_windows": dg.MetadataValue.md(render.table_markdown(worst, ",.2f")),
            "hypothetical": dg.MetadataValue.md(render.table_markdown(hypo, ",.0f")),
            "reverse": dg.MetadataValue.md(render.table_markdown(reverse, ",.4g")),
            "plot": dg.MetadataValue.md(
                render.bar_plot(
                    summary["scenario"].tolist(), summary["pnl"].to_numpy(), "Stress P&L", "P&L"
                )
            ),
        }
    )


@dg.asset(group_name=GROUP, deps=["market_bars"], description="Correlation and concentration.")
def correlation_report(database: DatabaseResource) -> dg.MaterializeResult:
    """Ledoit-Wolf correlation, 60-day rolling average correlation, ENB, calm vs stress."""
    returns, positions = _load(database)
    w = np.array([positions[c] for c in returns.columns]) / PORTFOLIO_VALUE
    shrunk = corr_lib.ledoit_wolf(returns.iloc[-250:])
    rolling = corr_lib.rolling_correlation(returns, window=60, step=5).average_pairwise()
    regimes = corr_lib.regime_comparison(returns, w)
    enb = corr_lib.effective_number_of_bets(shrunk.cov.to_numpy(), w)
    return dg.MaterializeResult(
        metadata={
            "enb": enb,
            "shrinkage": shrunk.shrinkage,
            "avg_corr_latest": float(rolling.iloc[-1]),
            "avg_corr_stress": float(regimes.summary.set_index("regime").loc["stress", "avg_corr"]),
            "correlation": dg.MetadataValue.md(shrunk.corr.to_markdown(floatfmt=".3f")),
            "regimes": dg.MetadataValue.md(render.table_markdown(regimes.summary)),
            "plot": dg.MetadataValue.md(render.line_plot(rolling, "60-day average correlation")),
        }
    )
