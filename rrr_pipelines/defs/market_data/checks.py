"""Quality checks of the bars pipeline.

Blocking checks belong to ``market_bars_staging``: the staging asset runs the Dagster-free
gates (``rrr_pipelines.lib.quality``) on the frame each source returned and reports them with
:func:`staging_check_results`. The non-blocking freshness check belongs to the published
``market_bars``: it judges what readers see.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from rrr_pipelines.defs.market_data.instruments import calendars_for
from rrr_pipelines.defs.market_data.partitions import yearly_partitions
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.jsonsafe import json_safe
from rrr_pipelines.lib.quality.audit import PartitionAudit
from rrr_pipelines.lib.quality.freshness import check_freshness
from rrr_pipelines.lib.quality.result import CheckResult
from rrr_pipelines.lib.quality.suite import PARTITION_GATES, SOURCE_CALENDARS

GX_CHECK = "bars_gx_suite"
FRESHNESS_CHECK = "bars_freshness"
UPDATING_SOURCES = frozenset({"coinbase", "binance"})
MARKET_BARS = dg.AssetKey("market_bars")
STAGING_CHECKS: tuple[str, ...] = (*PARTITION_GATES, GX_CHECK)

_DESCRIPTIONS = {
    "bars_not_null": "OHLCV never null/NaN/inf",
    "bars_ohlc_consistent": "high >= max(open, close), low <= min(open, close), high >= low",
    "bars_positive_prices": "all prices > 0",
    "bars_volume_non_negative": "volume >= 0",
    "bars_unique_keys": "(symbol, ts) unique in the frame the source returned",
    "bars_monotonic_ts": "timestamps never go backwards per symbol, in the source's row order",
    "bars_no_gaps": "every session of the partition's window present for every expected symbol "
    "(exchange_calendars, or 24/7), edges included",
    "bars_no_jumps": "no one-bar close step change above the threshold (0.3 daily equity)",
    "bars_expected_symbols": "every expected symbol present, no unexpected symbol",
    "bars_in_window": "every bar inside the partition's servable window",
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


def known_calendars(database: DatabaseResource, source: str) -> dict[str, str]:
    """Return symbol -> calendar on record for ``source`` (the ``instruments`` table).

    Args:
        database: The ``rrr`` database.
        source: Source name.
    """
    return calendars_for(database.url, source)


def staging_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    """Blocking check specs of the staging asset: every partition gate plus the GX suite.

    Args:
        asset: Name of the staging asset.
    """
    return [
        dg.AssetCheckSpec(name, asset=asset, blocking=True, description=_DESCRIPTIONS[name])
        for name in STAGING_CHECKS
    ]


def staging_check_results(
    audits: Sequence[PartitionAudit], asset: str, extra: dict[str, Any]
) -> list[dg.AssetCheckResult]:
    """One result per check over every partition of the run; a check fails if any partition does.

    The metadata is that of the first failing partition (or the first partition), plus the
    partitions checked and those that failed, so the UI names the defect and where it is.

    Args:
        audits: Per-partition audits of this run (at least one).
        asset: Name of the staging asset.
        extra: Metadata for every result (source, interval).
    """
    out: list[dg.AssetCheckResult] = []
    for name in STAGING_CHECKS:
        failing = [a for a in audits if not a.results[name].passed]
        shown = failing[0] if failing else audits[0]
        result = shown.results[name]
        meta = check_metadata(result, {**extra, "partition": shown.partition_key})
        meta["partitions_checked"] = len(audits)
        meta["failed_partitions"] = dg.MetadataValue.json([a.partition_key for a in failing])
        meta["batch_ids"] = dg.MetadataValue.json({a.partition_key: a.batch_id for a in audits})
        description = result.description or _DESCRIPTIONS[name]
        if failing:
            description = f"partition {shown.partition_key} quarantined: {result.summary()}"
        out.append(
            dg.AssetCheckResult(
                check_name=name,
                asset_key=asset,
                passed=not failing,
                metadata=meta,
                description=description[:1000],
            )
        )
    return out


def _materialized(context: dg.AssetCheckExecutionContext) -> dict[str, Any]:
    """Source, interval and keeps_updating of the latest published ``market_bars``."""
    event = context.instance.get_latest_materialization_event(MARKET_BARS)
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}

    def value(key: str, default: Any) -> Any:
        return meta[key].value if key in meta else default

    source = str(value("source", "bundled"))
    return {
        "source": source,
        "interval": str(value("interval", "1d")),
        "keeps_updating": bool(value("keeps_updating", source in UPDATING_SOURCES)),
    }


@dg.asset_check(
    asset=MARKET_BARS,
    name=FRESHNESS_CHECK,
    blocking=False,
    partitions_def=yearly_partitions,
    description="Newest published bar is recent (only sources that keep updating; warns only)",
)
def bars_freshness(
    context: dg.AssetCheckExecutionContext, database: DatabaseResource
) -> dg.AssetCheckResult:
    """Warn when a live source's newest published bar is stale; frozen history is not judged."""
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
    calendars = known_calendars(database, found["source"])
    calendar = (
        sorted(set(calendars.values()))[0]
        if calendars
        else SOURCE_CALENDARS.get(found["source"], "24/7")
    )
    result = check_freshness(bars, now=now, calendar=calendar)
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=check_metadata(result, {"applies": True, "source": found["source"]}),
    )
