"""Completeness gates on the real bundled bars: what a partition should hold, what is missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from rrr_pipelines.defs.market_data.partitions import yearly_partitions
from rrr_pipelines.lib.quality.completeness import (
    PartitionExpectation,
    check_expected_symbols,
    check_in_window,
)
from rrr_pipelines.lib.quality.gates import check_volume_non_negative
from rrr_pipelines.lib.quality.suite import PARTITION_GATES, failed, run_blocking_gates
from rrr_pipelines.lib.sources.base import servable_window
from rrr_pipelines.lib.sources.bundled import BundledSource
from rrr_pipelines.lib.sources.catalog import make_source

CALENDARS = {"SP500": "XNYS", "NASDAQ": "XNAS"}


def _expect(year: str) -> PartitionExpectation:
    window = yearly_partitions.time_window_for_partition_key(year)
    lo, hi = servable_window(BundledSource(), window.start, window.end, datetime.now(UTC))
    return PartitionExpectation(year, "1d", pd.Timestamp(lo), pd.Timestamp(hi), CALENDARS)


def _year(bundled_bars: pd.DataFrame, year: str) -> pd.DataFrame:
    part = bundled_bars[bundled_bars["ts"].dt.year == int(year)]
    return part.reset_index(drop=True)


def test_every_bundled_partition_is_complete(bundled_bars: pd.DataFrame) -> None:
    """Real closures (9/11, Sandy, national days of mourning) are not defects in any year."""
    for year in (str(y) for y in range(1999, 2019)):
        results = run_blocking_gates(_year(bundled_bars, year), expected=_expect(year))
        assert list(results) == list(PARTITION_GATES)
        assert failed(results) == [], (year, [r.summary() for r in results.values()])


@pytest.mark.parametrize("edge", ["first", "last"])
def test_missing_edge_session_fails_the_gap_gate(bundled_bars: pd.DataFrame, edge: str) -> None:
    bars = _year(bundled_bars, "2008")
    sp = bars.index[bars["symbol"] == "SP500"]
    drop = sp[0] if edge == "first" else sp[-1]
    day = bars.loc[drop, "ts"]
    res = run_blocking_gates(bars.drop(index=drop), expected=_expect("2008"))
    assert failed(res) == ["bars_no_gaps"]
    gaps = res["bars_no_gaps"]
    assert gaps.observed["missing_bars"] == 1
    assert gaps.offending.iloc[0][["symbol", "ts", "problem"]].tolist() == ["SP500", day, "missing"]


def test_missing_symbol_is_named_with_its_sessions(bundled_bars: pd.DataFrame) -> None:
    bars = _year(bundled_bars, "2008")
    res = run_blocking_gates(bars[bars["symbol"] == "SP500"], expected=_expect("2008"))
    assert failed(res) == ["bars_no_gaps", "bars_expected_symbols"]
    symbols = res["bars_expected_symbols"]
    assert symbols.observed["missing_symbols"] == ["NASDAQ"]
    assert "missing NASDAQ" in symbols.description
    assert symbols.offending["problem"].tolist() == [
        "missing symbol NASDAQ (253 sessions expected)"
    ]
    assert res["bars_no_gaps"].observed["missing_bars"] == 253


def test_empty_partition_that_should_trade_fails_naming_what_is_missing() -> None:
    empty = BundledSource().fetch(
        datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 2, tzinfo=UTC)
    )
    res = run_blocking_gates(empty, expected=_expect("2008"))
    assert failed(res) == ["bars_no_gaps", "bars_expected_symbols"]
    assert res["bars_expected_symbols"].observed["missing_symbols"] == ["NASDAQ", "SP500"]
    gaps = res["bars_no_gaps"]
    assert gaps.observed["missing_bars"] == 2 * 253
    first = gaps.offending.iloc[0]
    assert first["ts"] == pd.Timestamp("2008-01-02", tz="UTC") and first["problem"] == (
        "missing (no bars)"
    )


def test_nothing_is_expected_where_the_source_serves_nothing() -> None:
    """Bundled history ends 2018: an empty 2019 partition is complete, not a defect."""
    expected = _expect("2019")
    assert expected.start == expected.end and expected.sessions("SP500") == 0
    empty = BundledSource().fetch(expected.start, expected.start + timedelta(days=1))
    assert failed(run_blocking_gates(empty, expected=expected)) == []


def test_unexpected_symbol_and_bar_outside_the_window_fail(bundled_bars: pd.DataFrame) -> None:
    bars = _year(bundled_bars, "2008")
    stray = bars.iloc[[0]].assign(symbol="DJI")
    res = check_expected_symbols(pd.concat([bars, stray]), _expect("2008"))
    assert not res.passed and res.observed["unexpected_symbols"] == ["DJI"]
    outside = pd.concat([bars, _year(bundled_bars, "2009").iloc[[0]]], ignore_index=True)
    win = check_in_window(outside, _expect("2008"))
    assert not win.passed and win.observed["outside_window"] == 1
    assert win.offending_rows == [len(bars)]


def test_negative_volume_fails(bundled_bars: pd.DataFrame) -> None:
    bars = _year(bundled_bars, "2008")
    bars.loc[7, "volume"] = -5.0
    res = check_volume_non_negative(bars)
    assert not res.passed and res.offending_rows == [7] and res.observed["min_volume"] == -5.0


def test_servable_window_clips_to_span_and_closed_bars() -> None:
    start, end = datetime(2018, 1, 1, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC)
    now = datetime(2018, 3, 10, 12, tzinfo=UTC)
    lo, hi = servable_window(BundledSource(), start, end, now)
    assert lo == start and hi == datetime(2018, 3, 9, 12, 0, 0, 1, tzinfo=UTC)
    live = make_source("coinbase", symbols=["BTC-USD"], interval="1h")
    assert servable_window(live, start, end, now)[1] == datetime(
        2018, 3, 10, 11, 0, 0, 1, tzinfo=UTC
    )
    first = servable_window(BundledSource(), datetime(1999, 1, 1, tzinfo=UTC), end, now)[0]
    assert first == datetime(1999, 1, 4, tzinfo=UTC)
