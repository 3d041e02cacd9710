"""Risk report assets (group ``risk``): thin wrappers over ``rrr_pipelines.lib.risk``.

Which portfolio: run config ``portfolio`` (default ``"equal_weight"``) picks it.

* ``equal_weight``: a standalone report of an equal-weight **long** book of the bundled
  symbols, 1,000,000 in total. It describes the indices, not any model; the promotion gate
  does **not** read it.
* ``latest_candidate``: the book of the latest ``model_evaluation`` candidate (its holdout
  backtest at the date of maximum gross exposure, metadata ``risk.portfolio``), i.e. the book
  whose VaR and stress figures the promotion gate judged; the figures here then match the
  gate's (same ``lib.risk`` functions, same positions).
"""

from typing import Any, Literal

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.risk import correlation as corr_lib
from rrr_pipelines.lib.risk import render, report, stress
from rrr_pipelines.lib.risk.data import returns_from_bars
from rrr_pipelines.lib.risk.var_backtest import run_var_backtest

GROUP = "risk"
PORTFOLIO_VALUE = 1_000_000.0
STRESS_LIMIT_PCT = 10.0  # reverse stress: loss limit as % of gross exposure
BACKTEST_METHODS = ("hs", "normal", "ewma")


class RiskPortfolioConfig(dg.Config):
    """Which book the risk reports describe (see the module docstring)."""

    portfolio: Literal["equal_weight", "latest_candidate"] = Field(
        default="equal_weight",
        description="equal_weight: 1,000,000 long, split evenly over the bundled symbols; "
        "latest_candidate: the latest model_evaluation candidate's book (risk.portfolio)",
    )


def _candidate_book(instance: dg.DagsterInstance) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(dg.AssetKey("model_evaluation"))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    book = meta["risk.portfolio"].value if "risk.portfolio" in meta else None
    if not isinstance(book, dict) or not book.get("positions"):
        raise dg.Failure(
            "portfolio=latest_candidate: the latest model_evaluation has no candidate book "
            "(metadata risk.portfolio); materialize model_evaluation first"
        )
    return book


def _dynamic_stress_rows(instance: dg.DagsterInstance) -> list[dict[str, Any]]:
    """The latest evaluation's dynamic stress (candidate's OOS scores, live 2 % halt, flatten)."""
    event = instance.get_latest_materialization_event(dg.AssetKey("model_evaluation"))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    rows = meta["dynamic_stress_rows"].value if "dynamic_stress_rows" in meta else None
    if not isinstance(rows, list):
        return []
    cols = ("scenario", "start", "end", "covered", "loss", "max_loss", "halted", "halt_date",
            "bars_to_halt", "static_loss", "state_path")  # fmt: skip
    return [{c: r.get(c) for c in cols} for r in rows if isinstance(r, dict)]


def _load(
    database: DatabaseResource,
    config: RiskPortfolioConfig | None = None,
    instance: dg.DagsterInstance | None = None,
) -> tuple[pd.DataFrame, dict[str, float], float]:
    """Returns, positions and the portfolio value the figures refer to."""
    bars = database.load_bars(source="bundled", interval="1d")
    returns = returns_from_bars(bars)
    if config is not None and config.portfolio == "latest_candidate" and instance is not None:
        book = _candidate_book(instance)
        positions = {str(k): float(v) for k, v in book["positions"].items()}
        return returns, positions, float(book["equity"])
    positions = report.equal_weight_positions(list(returns.columns), PORTFOLIO_VALUE)
    return returns, positions, PORTFOLIO_VALUE


@dg.asset(group_name=GROUP, deps=["market_bars"], description="Portfolio VaR and ES by method.")
def var_report(
    context: dg.AssetExecutionContext, config: RiskPortfolioConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """VaR/ES at 95/99 %, 1 and 10 days, of the configured portfolio (see the module doc)."""
    returns, positions, value = _load(database, config, context.instance)
    table = report.var_table(returns, positions)
    comp = report.component_es_table(returns, positions)

    def pick(method: str, conf: float, h: int, col: str) -> float:
        return report.pick(table, method, conf, h, col)

    return dg.MaterializeResult(
        metadata={
            "var_99_1d": pick("hs", 0.99, 1, "var"),
            "es_99_1d": pick("hs", 0.99, 1, "es"),
            "var_95_1d": pick("hs", 0.95, 1, "var"),
            "var_99_10d": pick("hs", 0.99, 10, "var"),
            "mc_es_99_1d": pick("mc-t-copula", 0.99, 1, "es"),
            "portfolio": config.portfolio,
            "portfolio_value": value,
            "as_of": str(returns.index[-1].date()),
            "table": dg.MetadataValue.md(render.table_markdown(table, ",.0f")),
            "component_es": dg.MetadataValue.md(render.table_markdown(comp, ",.4g")),
        }
    )


@dg.asset(group_name=GROUP, deps=["market_bars"], description="VaR backtests of the portfolio.")
def var_backtest(
    context: dg.AssetExecutionContext, config: RiskPortfolioConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """Kupiec/Christoffersen backtests of rolling hs/normal/ewma and a skew-t GARCH, at 1 and 5 %.

    Rolling models cover all days after the first 250; the GARCH model is fitted through the
    day before the last 252 days and evaluated on them.
    """
    returns, positions, _ = _load(database, config, context.instance)
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
def stress_report(
    context: dg.AssetExecutionContext, config: RiskPortfolioConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """Named crises, worst 1/5/20-day windows, shocks (equity -/+20 %, vol x2, corr 1), reverse.

    The scenario set and the worst loss come from ``stress.stress_summary``, the function the
    promotion gate's risk figures use.
    """
    returns, positions, value = _load(database, config, context.instance)
    dynamic = _dynamic_stress_rows(context.instance)
    summary = stress.stress_summary(returns, positions)
    limit = STRESS_LIMIT_PCT / 100 * sum(abs(v) for v in positions.values())
    reverse = stress.reverse_stress_table(returns, positions, limit)
    table = summary.table
    return dg.MaterializeResult(
        metadata={
            "worst_stress_loss": summary.worst_loss,
            "worst_scenario": summary.worst_scenario,
            "equity_minus_20_loss": float(-summary.hypothetical["pnl"].iloc[0]),
            "base_var_99_1d_normal": summary.base_var_99_1d_normal,
            "portfolio": config.portfolio,
            "portfolio_value": value,
            "historical": dg.MetadataValue.md(render.table_markdown(summary.historical, ",.0f")),
            "worst_windows": dg.MetadataValue.md(
                render.table_markdown(summary.worst_windows, ",.2f")
            ),
            "hypothetical": dg.MetadataValue.md(
                render.table_markdown(summary.hypothetical, ",.0f")
            ),
            "reverse": dg.MetadataValue.md(render.table_markdown(reverse, ",.4g")),
            # static losses above are information; the gate judges these dynamic ones
            "dynamic_stress": dg.MetadataValue.md(
                render.table_markdown(pd.DataFrame(dynamic), ",.4f")
                if dynamic
                else "no model_evaluation yet: dynamic stress (OOS scores, live limits) not run"
            ),
            "plot": dg.MetadataValue.md(
                render.bar_plot(
                    table["scenario"].tolist(), table["pnl"].to_numpy(), "Stress P&L", "P&L"
                )
            ),
        }
    )


@dg.asset(group_name=GROUP, deps=["market_bars"], description="Correlation and concentration.")
def correlation_report(
    context: dg.AssetExecutionContext, config: RiskPortfolioConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """Ledoit-Wolf correlation, 60-day rolling average correlation, ENB, calm vs stress."""
    returns, positions, _ = _load(database, config, context.instance)
    gross = sum(abs(v) for v in positions.values())
    w = np.array([positions.get(str(c), 0.0) for c in returns.columns]) / gross
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
