"""Daily refresh of the latest ``market_bars`` partition (stopped by default)."""

from datetime import datetime

import dagster as dg

from rrr_pipelines.defs.market_data.assets import market_bars, market_bars_staging
from rrr_pipelines.defs.market_data.config import MarketBarsConfig
from rrr_pipelines.defs.market_data.partitions import yearly_partitions
from rrr_pipelines.lib.sources.base import servable_window
from rrr_pipelines.lib.sources.catalog import make_source

market_bars_job = dg.define_asset_job(
    "market_bars_job",
    selection=dg.AssetSelection.assets(market_bars_staging, market_bars),
    description="stage + audit one market_bars partition, then publish it if its checks pass",
)


def daily_request(when: datetime, config: MarketBarsConfig) -> dg.RunRequest | dg.SkipReason:
    """Request the partition holding ``when`` only if the source can serve part of it.

    A frozen source (bundled history ends 2018) serves nothing in a later year: asking it would
    stage an empty partition and fail completeness every day. A live source serves bars that
    have closed by ``when``; the staging asset clips the fetch to that window.

    Args:
        when: Scheduled tick time (tz-aware).
        config: The run config the scheduled run will use.
    """
    key = f"{when:%Y}"
    if key not in yearly_partitions.get_partition_keys(current_time=when):
        return dg.SkipReason(f"no market_bars partition for {key} yet")
    source = make_source(config.source, **config.source_params())
    window = yearly_partitions.time_window_for_partition_key(key)
    lo, hi = servable_window(source, window.start, window.end, when)
    if lo >= hi:
        return dg.SkipReason(
            f"{source.name} cannot serve any bar of {key} at {when:%Y-%m-%d %H:%M} UTC "
            f"(serves {source.span[0]:%Y-%m-%d} .. {source.span[1]:%Y-%m-%d})"
            if source.span
            else f"{source.name} cannot serve any bar of {key} yet"
        )
    return dg.RunRequest(
        run_key=f"market_bars-{when:%Y-%m-%d}",
        partition_key=key,
        run_config={"ops": {market_bars_staging.key.path[-1]: {"config": config.model_dump()}}},
        tags={"rrr/trigger": "daily", "rrr/window": f"[{lo.isoformat()}, {hi.isoformat()})"},
    )


@dg.schedule(
    job=market_bars_job,
    cron_schedule="30 22 * * *",  # 22:30 UTC: after the US close (and a quiet hour for crypto)
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def market_bars_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Re-stage and publish the partition that holds today's bars, if the source serves it.

    Publishing replaces the partition's rows with what passed the audit (idempotent when
    unchanged). The source is the default run config (``MarketBarsConfig``).
    """
    return daily_request(context.scheduled_execution_time, MarketBarsConfig())
