"""Quality gates on ``market_bars``: blocking data checks and a non-blocking freshness check.

The checks read the partition's rows back from PostgreSQL (the asset returns a
``MaterializeResult``; data lives in the database) and hand them to the Dagster-free gates in
``rrr_pipelines.lib.quality``. Which source and interval to read comes from the asset's latest
materialization metadata; trading calendars come from the ``instruments`` table, else the
source's default (``SOURCE_CALENDARS``).
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from rrr_pipelines.defs.market_data.assets import market_bars
from rrr_pipelines.defs.market_data.instruments import calendars_for
from rrr_pipelines.defs.market_data.partitions import yearly_partitions
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.jsonsafe import json_safe
from rrr_pipelines.lib.quality.freshness import check_freshness
from rrr_pipelines.lib.quality.result import CheckResult
from rrr_pipelines.lib.quality.suite import BLOCKING_GATES, SOURCE_CALENDARS, run_blocking_gates

GX_CHECK = "bars_gx_suite"
FRESHNESS_CHECK = "bars_freshness"
UPDATING_SOURCES = frozenset({"coinbase", "binance"})

_DESCRIPTIONS = {
    "bars_not_null": "OHLCV never null/NaN/inf",
    "bars_ohlc_consistent": "high >= max(open, close), low <= min(open, close), high >= low",
    "bars_positive_prices": "all prices > 0",
    "bars_volume_non_negative": "volume >= 0",
    "bars_unique_keys": "(symbol, ts) unique per source and interval",
    "bars_monotonic_ts": "timestamps never go backwards per symbol",
    "bars_no_gaps": "no bars missing against the venue's trading calendar (exchange_calendars)",
    "bars_no_jumps": "no one-bar close step change above the threshold (0.3 daily equity)",
    GX_CHECK: "Great Expectations 1.x suite over the same invariants",
}


def check_metadata(result: CheckResult, context_meta: dict[str, Any]) -> dict[str, Any]:
    """Turn a gate result into Dagster metadata: observed values, thresholds, offending rows.

    Args:
        result: Gate result.
        context_meta: Extra entries (source, interval, window).
    """
    meta: dict[str, Any] = dict(context_meta)
    meta["observed"] = dg.MetadataValue.json(json_safe(result.observed))
    meta["thresholds"] = dg.MetadataValue.json(json_safe(result.thresholds))
    for key, value in result.observed.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            meta[f"observed_{key}"] = value
    for key, value in result.thresholds.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            meta[f"threshold_{key}"] = value
    if not result.offending.empty:
        table = pd.DataFrame(result.offending_records())
        meta["offending_rows"] = dg.MetadataValue.md(table.to_markdown(index=False))
    return meta


def _materialized(context: dg.AssetCheckExecutionContext) -> dict[str, Any]:
    """Source, interval and keeps_updating of the latest ``market_bars`` materialization."""
    event = context.instance.get_latest_materialization_event(market_bars.key)
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}

    def value(key: str, default: Any) -> Any:
        return meta[key].value if key in meta else default

    source = str(value("source", "bundled"))
    return {
        "source": source,
        "interval": str(value("interval", "1d")),
        "keeps_updating": bool(value("keeps_updating", source in UPDATING_SOURCES)),
    }


def _calendars(database: DatabaseResource, source: str) -> str | dict[str, str]:
    known = calendars_for(database.url, source)
    return known or SOURCE_CALENDARS.get(source, "24/7")


_SPECS = [
    dg.AssetCheckSpec(
        name,
        asset=market_bars,
        blocking=True,
        partitions_def=yearly_partitions,
        description=_DESCRIPTIONS[name],
    )
    for name in (*BLOCKING_GATES, GX_CHECK)
]


@dg.multi_asset_check(specs=_SPECS, name="market_bars_quality", can_subset=True)
def market_bars_quality(
    context: dg.AssetCheckExecutionContext, database: DatabaseResource
) -> Iterator[dg.AssetCheckResult]:
    """Load the partition's bars once and run every blocking gate on them."""
    from rrr_pipelines.lib.quality.gx_suite import run_gx_suite  # GX import costs ~3 s

    found = _materialized(context)
    window = context.partition_time_window
    bars = database.load_bars(
        source=found["source"], interval=found["interval"], start=window.start, end=window.end
    )
    selected = {key.name for key in context.selected_asset_check_keys}
    results = run_blocking_gates(bars, calendar=_calendars(database, found["source"]))
    if GX_CHECK in selected:
        results[GX_CHECK] = run_gx_suite(bars)
    extra = {
        "source": found["source"],
        "interval": found["interval"],
        "window": f"{window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d}",
    }
    for name, result in results.items():
        if name not in selected:
            continue
        if not result.passed:
            context.log.warning(result.summary())
        yield dg.AssetCheckResult(
            check_name=name,
            asset_key=market_bars.key,
            passed=result.passed,
            metadata=check_metadata(result, extra),
            description=result.description or None,
        )


@dg.asset_check(
    asset=market_bars,
    name=FRESHNESS_CHECK,
    blocking=False,
    partitions_def=yearly_partitions,
    description="Newest bar is recent (only sources that keep updating; warns, never blocks)",
)
def bars_freshness(
    context: dg.AssetCheckExecutionContext, database: DatabaseResource
) -> dg.AssetCheckResult:
    """Warn when a live source's newest bar is stale; frozen history is not judged."""
    found = _materialized(context)
    if not found["keeps_updating"]:
        return dg.AssetCheckResult(
            passed=True,
            metadata={"applies": False, "source": found["source"]},
            description=f"{found['source']} is frozen history: freshness does not apply",
        )
    now = datetime.now(UTC)
    bars = database.load_bars(
        source=found["source"], interval=found["interval"], start=now - timedelta(days=14)
    )
    calendars = _calendars(database, found["source"])
    calendar = calendars if isinstance(calendars, str) else sorted(set(calendars.values()))[0]
    result = check_freshness(bars, now=now, calendar=calendar)
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=check_metadata(result, {"applies": True, "source": found["source"]}),
    )
