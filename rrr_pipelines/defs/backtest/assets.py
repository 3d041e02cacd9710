"""``backtest_report``: the baseline strategies through the trading core on the bundled data."""

import base64
from typing import Any

import dagster as dg
from pydantic import Field

from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.backtest import report


class BacktestReportConfig(dg.Config):
    """Costs and the drawdown halt of the report backtests."""

    initial_cash: float = Field(default=1_000_000.0, description="starting cash")
    taker_fee_bps: float = Field(default=2.0, description="taker fee, basis points")
    half_spread_bps: float = Field(default=1.0, description="modelled half-spread, bp")
    impact_coef: float = Field(default=0.1, description="coef of sqrt(qty / ADV) impact")
    max_drawdown: float = Field(default=0.6, description="drawdown that halts trading")


@dg.asset(
    deps=["market_bars"],
    group_name="backtest",
    kinds={"pandas"},
    description="Buy-and-hold and time-series momentum (20-day, 12-1 month) on the bundled "
    "S&P 500 and NASDAQ daily bars, run through the same trading core as the live runner.",
)
def backtest_report(
    context: dg.AssetExecutionContext, config: BacktestReportConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """Backtest the baselines and attach the statistics table and the equity plot."""
    bars = database.load_bars(source="bundled", interval="1d")
    if bars.empty:
        raise dg.Failure("no bundled daily bars in the database; materialize market_bars first")
    cfg = report.report_config(
        config.initial_cash,
        config.taker_fee_bps,
        config.half_spread_bps,
        config.impact_coef,
        config.max_drawdown,
    )
    results = report.run_baselines(bars, cfg)
    table = report.stats_table(results)
    png = base64.b64encode(report.equity_plot_png(results, "Baselines on bundled daily bars"))
    context.log.info(f"backtested {len(results)} baselines on {len(bars)} bars")
    metadata: dict[str, Any] = {
        "stats": dg.MetadataValue.md(report.table_markdown(table)),
        "equity_plot": dg.MetadataValue.md(f"![equity](data:image/png;base64,{png.decode()})"),
        "bars": len(bars),
        "symbols": int(bars["symbol"].nunique()),
        "hashes": dg.MetadataValue.json({n: r.hashes() for n, r in results.items()}),
    }
    for name, row in table.iterrows():
        for stat in ("sharpe", "max_drawdown", "cagr", "total_return"):
            metadata[f"{name}_{stat}"] = dg.MetadataValue.float(float(row[stat]))
    return dg.MaterializeResult(metadata=metadata)
