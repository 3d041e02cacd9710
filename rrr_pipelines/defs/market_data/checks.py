"""Blocking quality gates on ``market_bars``."""

import dagster as dg

from rrr_pipelines.defs.market_data.assets import market_bars
from rrr_pipelines.defs.resources import DatabaseResource


@dg.asset_check(
    asset=market_bars,
    blocking=True,
    description="high >= max(open, close), low <= min(open, close), prices > 0",
)
def bars_ohlc_consistent(
    context: dg.AssetCheckExecutionContext, database: DatabaseResource
) -> dg.AssetCheckResult:
    """Fail when any bar's OHLC is internally inconsistent or non-positive."""
    bars = database.load_bars(source="bundled", interval="1d")
    bad = bars[
        (bars["high"] < bars[["open", "close"]].max(axis=1))
        | (bars["low"] > bars[["open", "close"]].min(axis=1))
        | (bars[["open", "high", "low", "close"]] <= 0).any(axis=1)
    ]
    return dg.AssetCheckResult(
        passed=bad.empty,
        metadata={"bad_rows": len(bad), "threshold": 0, "rows_checked": len(bars)},
    )
