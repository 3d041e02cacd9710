"""Time partitions: yearly for daily bars, daily for intraday bars (never one per symbol)."""

from __future__ import annotations

import dagster as dg

# Daily bars: one partition per calendar year (bundled history starts 1999).
yearly_partitions = dg.TimeWindowPartitionsDefinition(
    start="1999", cron_schedule="0 0 1 1 *", fmt="%Y", timezone="UTC", end_offset=1
)
# Intraday bars (1m/1s): one partition per UTC day.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="UTC")
