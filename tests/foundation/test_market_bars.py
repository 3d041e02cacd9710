"""market_bars: the bundled source into PostgreSQL, idempotent, gated."""

import dagster as dg
import pandas as pd
import pytest

from rrr_live.domain.bars import BAR_COLUMNS
from rrr_pipelines.defs.market_data.assets import market_bars, market_bars_staging
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.bars_store import bars_summary, load_bars, write_bars
from rrr_pipelines.lib.sources.base import SourceError
from rrr_pipelines.lib.sources.bundled import BundledSource
from rrr_pipelines.lib.sources.catalog import make_source


def test_bundled_source_is_the_real_arch_data() -> None:
    import arch.data.sp500

    raw = arch.data.sp500.load()
    bars = BundledSource(["SP500"]).fetch(
        pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC")
    )
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert len(bars) == len(raw) == 5031
    assert bars["close"].iloc[-1] == raw["Close"].iloc[-1]
    assert str(bars["ts"].dt.tz) == "UTC"


def test_unknown_source_or_symbol_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="unknown market-data source 'nope'"):
        make_source("nope")
    with pytest.raises(SourceError, match="no symbols \\['XYZ'\\]"):
        BundledSource(["XYZ"])


def test_write_bars_is_idempotent_and_exact(rrr_db_url: str) -> None:
    src = BundledSource()
    bars = src.fetch(pd.Timestamp("2018-01-01", tz="UTC"), pd.Timestamp("2019-01-01", tz="UTC"))
    first = write_bars(rrr_db_url, bars)
    summary1 = bars_summary(rrr_db_url, source="bundled", interval="1d")
    second = write_bars(rrr_db_url, pd.concat([bars, bars]))  # duplicates inside one batch too
    summary2 = bars_summary(rrr_db_url, source="bundled", interval="1d")
    assert first.rows_inserted == len(bars) == 2 * 251
    assert second.rows_inserted == 0
    pd.testing.assert_frame_equal(summary1, summary2)
    back = load_bars(rrr_db_url, source="bundled", interval="1d", symbols=["SP500"])
    expected = bars[bars.symbol == "SP500"].reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)


def test_write_bars_rejects_a_frame_without_the_schema(rrr_db_url: str) -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        write_bars(rrr_db_url, pd.DataFrame({"symbol": ["X"]}))


def test_market_bars_partition_materializes_and_rematerializes_idempotently(
    rrr_db_url: str,
) -> None:
    from rrr_pipelines.defs.market_data import checks

    assets = [
        market_bars_staging,
        market_bars,
        *[c for c in vars(checks).values() if isinstance(c, dg.AssetChecksDefinition)],
    ]
    resources = {"database": DatabaseResource(url=rrr_db_url)}
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.materialize(assets, partition_key="2008", resources=resources, instance=instance)
        second = dg.materialize(
            assets, partition_key="2008", resources=resources, instance=instance
        )
    assert first.success and second.success
    meta1 = first.asset_materializations_for_node("market_bars")[0].metadata
    meta2 = second.asset_materializations_for_node("market_bars")[0].metadata
    assert meta1["rows"].value == meta1["rows_written"].value == 2 * 253
    assert meta2["rows"].value == 2 * 253 and meta2["rows_written"].value == 0
    assert meta1["symbols"].value == 2
    assert all(e.passed for e in first.get_asset_check_evaluations())


def test_demo_range_publishes_all_twenty_years_in_one_run(rrr_db_url: str) -> None:
    """The demo's story: 20 yearly partitions, one run, real holidays are not defects."""
    resources = {"database": DatabaseResource(url=rrr_db_url)}
    with dg.DagsterInstance.ephemeral() as instance:
        res = dg.materialize(
            [market_bars_staging, market_bars],
            tags={
                "dagster/asset_partition_range_start": "1999",
                "dagster/asset_partition_range_end": "2018",
            },
            resources=resources,
            instance=instance,
        )
    assert res.success
    assert all(e.passed for e in res.get_asset_check_evaluations())
    meta = res.asset_materializations_for_node("market_bars")[0].metadata
    assert meta["partitions"].value == 20 and meta["rows_written"].value == 2 * 5031
    summary = bars_summary(rrr_db_url, source="bundled", interval="1d")
    assert summary["rows"].tolist() == [5031, 5031]
