"""Daily refresh of the latest ``market_bars`` partition (stopped by default)."""

import dagster as dg

from rrr_pipelines.defs.market_data.assets import market_bars
from rrr_pipelines.defs.market_data.partitions import yearly_partitions

market_bars_job = dg.define_asset_job(
    "market_bars_job",
    selection=dg.AssetSelection.assets(market_bars),
    description="market_bars for one partition, with its quality checks",
)


@dg.schedule(
    job=market_bars_job,
    cron_schedule="30 22 * * *",  # 22:30 UTC: after the US close (and a quiet hour for crypto)
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def market_bars_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Re-materialize the partition that holds today's bars (idempotent loads).

    The yearly partition containing the tick time is the latest one; re-running it adds the
    newest bars (existing keys are left untouched).
    """
    when = context.scheduled_execution_time
    keys = yearly_partitions.get_partition_keys(current_time=when)
    key = f"{when:%Y}"
    if key not in keys:
        return dg.SkipReason(f"no market_bars partition for {key} yet")
    return dg.RunRequest(
        run_key=f"market_bars-{when:%Y-%m-%d}",
        partition_key=key,
        tags={"rrr/trigger": "daily"},
    )
