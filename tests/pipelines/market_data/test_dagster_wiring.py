"""Dagster wiring: blocking checks read the partition from PostgreSQL and stop downstream."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pytest

from rrr_pipelines.defs.market_data.assets import market_bars, market_bars_staging
from rrr_pipelines.defs.market_data.checks import STAGING_CHECKS, bars_freshness
from rrr_pipelines.defs.market_data.config import MarketBarsConfig
from rrr_pipelines.defs.market_data.instruments import calendars_for, instruments
from rrr_pipelines.defs.market_data.partitions import yearly_partitions
from rrr_pipelines.defs.market_data.schedules import daily_request, market_bars_daily
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.charts import bars_summary, price_chart_markdown
from rrr_pipelines.lib.sources.bundled import BundledSource


@dg.asset(
    partitions_def=yearly_partitions,
    deps=[market_bars],
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def downstream_of_bars() -> None:
    """Stands in for features/backtests: must not run on bad bars."""


ASSETS = [market_bars_staging, market_bars, bars_freshness, downstream_of_bars]


def _bars_2008() -> pd.DataFrame:
    return BundledSource().fetch(datetime(2008, 1, 1, tzinfo=UTC), datetime(2009, 1, 1, tzinfo=UTC))


@pytest.mark.pg
def test_clean_partition_passes_every_check_and_downstream_runs(rrr_db_url: str) -> None:
    resources = {"database": DatabaseResource(url=rrr_db_url)}
    with dg.instance_for_test() as instance:
        res = dg.materialize(ASSETS, partition_key="2008", resources=resources, instance=instance)
    assert res.success
    evals = {e.check_name: e for e in res.get_asset_check_evaluations()}
    assert set(evals) == {*STAGING_CHECKS, "bars_freshness"}
    assert all(e.passed for e in evals.values())
    gaps = evals["bars_no_gaps"].metadata
    assert gaps["observed_missing_bars"].value == 0
    assert gaps["observed_rows_checked"].value == 2 * 253
    assert gaps["threshold_missing_bars"].value == 0
    assert evals["bars_freshness"].metadata["applies"].value is False
    assert res.asset_materializations_for_node("downstream_of_bars")


@pytest.mark.pg
def test_instruments_asset_upserts_calendars(rrr_db_url: str) -> None:
    resources = {"database": DatabaseResource(url=rrr_db_url)}
    for _ in range(2):  # idempotent
        res = dg.materialize([instruments], resources=resources)
        assert res.success
    assert calendars_for(rrr_db_url, "bundled") == {"NASDAQ": "XNAS", "SP500": "XNYS"}
    meta = res.asset_materializations_for_node("instruments")[0].metadata
    assert meta["instruments"].value == 2 and "SP500" in meta["preview"].value


def test_daily_schedule_requests_the_current_year_partition() -> None:
    when = datetime(2018, 6, 1, 22, 30, tzinfo=UTC)
    ctx = dg.build_schedule_context(scheduled_execution_time=when)
    req = market_bars_daily(ctx)
    assert isinstance(req, dg.RunRequest)
    assert req.partition_key == "2018" and req.run_key == "market_bars-2018-06-01"
    assert market_bars_daily.cron_schedule == "30 22 * * *"


def test_daily_schedule_asks_a_source_only_for_a_window_it_serves() -> None:
    late = daily_request(datetime(2026, 6, 1, 22, 30, tzinfo=UTC), MarketBarsConfig())
    assert isinstance(late, dg.SkipReason)  # bundled history ends 2018
    assert "bundled cannot serve any bar of 2026" in str(late.skip_message)
    live = daily_request(
        datetime(2026, 6, 1, 22, 30, tzinfo=UTC),
        MarketBarsConfig(source="coinbase", symbols=["BTC-USD"]),
    )
    assert isinstance(live, dg.RunRequest) and live.partition_key == "2026"
    # only bars closed by the tick: the last daily bar is the one opened 2026-05-31
    assert live.tags["rrr/window"].endswith("2026-05-31T22:30:00.000001+00:00)")
    staged = live.run_config["ops"]["market_bars_staging"]["config"]
    assert staged["source"] == "coinbase" and staged["symbols"] == ["BTC-USD"]


def test_price_chart_markdown_is_an_inline_png() -> None:
    bars = _bars_2008()
    md = price_chart_markdown(bars)
    assert md.startswith("![chart](data:image/png;base64,") and md.endswith(")")
    png = base64.b64decode(md[len("![chart](data:image/png;base64,") : -1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert bars_summary(bars) == {
        "rows": 506,
        "symbols": 2,
        "first_ts": "2008-01-02T00:00:00+00:00",
        "last_ts": "2008-12-31T00:00:00+00:00",
    }


def test_a_window_clips_each_partition_to_an_intraday_backfill() -> None:
    year = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert MarketBarsConfig().window(*year) == year
    days = MarketBarsConfig(window_start="2025-03-03", window_end="2025-03-06T00:00:00+00:00")
    assert days.window(*year) == (
        datetime(2025, 3, 3, tzinfo=UTC),
        datetime(2025, 3, 6, tzinfo=UTC),
    )
    # a window outside the partition leaves it empty (nothing fetched, nothing expected)
    lo, hi = days.window(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    assert lo >= hi
    assert "window_start" not in days.source_params()  # the source is not asked for it
