"""Write-audit-publish through real Dagster runs: a defective partition is quarantined, readers
and the retrain sensor see the previously published data, the corrected partition publishes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rrr_pipelines.defs.market_data.assets import STAGING, market_bars, market_bars_staging
from rrr_pipelines.defs.market_data.checks import STAGING_CHECKS, bars_freshness
from rrr_pipelines.defs.market_data.instruments import write_instruments
from rrr_pipelines.defs.ml.automation import retrain_on_new_bars
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.bars_store import bars_summary
from rrr_pipelines.lib.bars_wap import batches, load_staged
from rrr_pipelines.lib.sources.base import SourceInstrument
from rrr_pipelines.lib.sources.bundled import BundledSource

pytestmark = pytest.mark.pg

ASSETS = [market_bars_staging, market_bars, bars_freshness]
YEAR = "2008"
CALENDARS = {"SP500": "XNYS", "NASDAQ": "XNAS"}
ROW = 100  # an ordinary mid-year S&P 500 session


@dg.asset(
    partitions_def=market_bars.partitions_def,
    deps=[market_bars],
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def reader_of_bars(database: DatabaseResource) -> dg.MaterializeResult:
    """Reads published bars through the resource, like risk/backtest/ML do; records a checksum."""
    bars = database.load_bars(source="files", interval="1d")
    digest = int(pd.util.hash_pandas_object(bars, index=False).sum()) if len(bars) else 0
    return dg.MaterializeResult(metadata={"rows": len(bars), "checksum": str(digest)})


def _read(instance: dg.DagsterInstance, url: str) -> str:
    """A following reader run on its own: what risk/backtest/ML would read now."""
    res = dg.materialize(
        [reader_of_bars],
        partition_key=YEAR,
        instance=instance,
        resources={"database": DatabaseResource(url=url)},
    )
    return str(res.asset_materializations_for_node("reader_of_bars")[0].metadata["checksum"].value)


def _year() -> pd.DataFrame:
    return BundledSource().fetch(datetime(2008, 1, 1, tzinfo=UTC), datetime(2009, 1, 1, tzinfo=UTC))


def _write(path: Path, bars: pd.DataFrame) -> None:
    for old in path.glob("*.csv"):
        old.unlink()
    for symbol, part in bars.groupby("symbol"):
        cols = ["ts", "open", "high", "low", "close", "adj_close", "volume"]
        out = part[cols].assign(ts=part["ts"].dt.strftime("%Y-%m-%d"))
        out.to_csv(path / f"{symbol}.csv", index=False)


def _negative_price(bars: pd.DataFrame) -> pd.DataFrame:
    bars.loc[ROW, "low"] = -1.0
    return bars


def _duplicate_bar(bars: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([bars, bars.iloc[[ROW]]], ignore_index=True)


def _missing_first_session(bars: pd.DataFrame) -> pd.DataFrame:
    first = bars["ts"] == bars["ts"].min()
    return bars[~(first & (bars["symbol"] == "SP500"))]


def _missing_symbol(bars: pd.DataFrame) -> pd.DataFrame:
    return bars[bars["symbol"] != "NASDAQ"]


def _empty(bars: pd.DataFrame) -> pd.DataFrame:
    return bars.iloc[0:0]


DEFECTS: list[tuple[Callable[[pd.DataFrame], pd.DataFrame], str, str]] = [
    (_negative_price, "bars_positive_prices", "min_price"),
    (_duplicate_bar, "bars_unique_keys", "duplicate_rows"),
    (_missing_first_session, "bars_no_gaps", "2008-01-02"),
    (_missing_symbol, "bars_expected_symbols", "NASDAQ"),
    (_empty, "bars_expected_symbols", "SP500"),
]


def _run(instance: dg.DagsterInstance, url: str, path: Path) -> dg.ExecuteInProcessResult:
    config = {"source": "files", "path": str(path)}
    return dg.materialize(
        [*ASSETS, reader_of_bars],
        partition_key=YEAR,
        instance=instance,
        resources={"database": DatabaseResource(url=url)},
        run_config={"ops": {STAGING: {"config": config}}},
        raise_on_error=False,
    )


def _sensor_requests(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[str], str]:
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor)
    data = retrain_on_new_bars.evaluate_tick(ctx)
    return [r.run_key for r in data.run_requests or []], data.cursor or cursor or ""


def test_each_defect_is_quarantined_and_the_correction_publishes(
    rrr_db_url: str, tmp_path: Path
) -> None:
    write_instruments(
        rrr_db_url,
        [SourceInstrument(s, "files", "index", c, "USD") for s, c in CALENDARS.items()],
        synthetic=False,
    )
    good = _year()
    _write(tmp_path, good)
    with dg.instance_for_test() as instance:
        first = _run(instance, rrr_db_url, tmp_path)
        assert first.success
        assert {e.check_name for e in first.get_asset_check_evaluations()} >= set(STAGING_CHECKS)
        read_first = first.asset_materializations_for_node("reader_of_bars")[0].metadata
        assert read_first["rows"].value == len(good)
        published = bars_summary(rrr_db_url, source="files", interval="1d")
        assert published["rows"].sum() == len(good)
        keys, cursor = _sensor_requests(instance, None)
        assert len(keys) == 1  # the first publish triggers one retrain

        for defect, check, named in DEFECTS:
            _write(tmp_path, defect(good.copy()))
            res = _run(instance, rrr_db_url, tmp_path)
            assert not res.success, defect.__name__
            failed = {e.check_name: e for e in res.get_asset_check_evaluations() if not e.passed}
            assert check in failed, (defect.__name__, sorted(failed))
            evidence = failed[check]
            text = f"{evidence.description} {evidence.metadata.get('offending_rows')}"
            assert named in text, (defect.__name__, text)
            assert evidence.metadata["failed_partitions"].value == [YEAR]
            assert res.asset_materializations_for_node("market_bars") == []
            assert res.asset_materializations_for_node("reader_of_bars") == []
            pd.testing.assert_frame_equal(
                bars_summary(rrr_db_url, source="files", interval="1d"), published
            )
            assert _read(instance, rrr_db_url) == read_first["checksum"].value
            quarantined = batches(rrr_db_url, source="files")[-1]
            assert quarantined.status == "quarantined" and check in quarantined.failed_checks
            assert _sensor_requests(instance, cursor)[0] == []

        staged_dup = load_staged(rrr_db_url, batches(rrr_db_url, source="files")[2].batch_id)
        assert len(staged_dup) == len(good) + 1  # the duplicate is kept in staging as returned

        corrected = good.copy()
        corrected.loc[ROW, "close"] = corrected.loc[ROW, "adj_close"] = corrected.loc[ROW, "open"]
        _write(tmp_path, corrected)
        fixed = _run(instance, rrr_db_url, tmp_path)
        assert fixed.success
        meta = fixed.asset_materializations_for_node("market_bars")[0].metadata
        assert meta["rows_written"].value == 1 and meta["rows_deleted"].value == 0
        after = bars_summary(rrr_db_url, source="files", interval="1d")
        changed = after.set_index("symbol")["checksum"] != published.set_index("symbol")["checksum"]
        touched = good.loc[ROW, "symbol"]
        assert changed.to_dict() == {s: s == touched for s in CALENDARS}
        keys, cursor = _sensor_requests(instance, cursor)
        assert len(keys) == 1
        assert fixed.asset_materializations_for_node("reader_of_bars")
        assert _read(instance, rrr_db_url) != read_first["checksum"].value  # readers see it

        again = _run(instance, rrr_db_url, tmp_path)  # unchanged data: idempotent
        assert again.success
        assert (
            again.asset_materializations_for_node("market_bars")[0].metadata["rows_written"].value
            == 0
        )
        pd.testing.assert_frame_equal(
            bars_summary(rrr_db_url, source="files", interval="1d"), after
        )
        assert _sensor_requests(instance, cursor)[0] == []
