"""Quality gates on the real bundled bars: clean data passes, each injected defect is caught."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from rrr_pipelines.lib.quality.calendar_gaps import check_no_gaps, expected_timestamps
from rrr_pipelines.lib.quality.freshness import check_freshness
from rrr_pipelines.lib.quality.gates import check_jumps, check_monotonic_ts, check_unique_keys
from rrr_pipelines.lib.quality.suite import (
    BLOCKING_GATES,
    check_no_gaps_by_calendar,
    failed,
    run_blocking_gates,
)

ROW = 2500  # an ordinary day in the middle of the S&P 500 series (2008-12-xx)
CALENDARS = {"SP500": "XNYS", "NASDAQ": "XNAS"}


def test_clean_bundled_data_passes_every_blocking_gate(bundled_bars: pd.DataFrame) -> None:
    assert bundled_bars.groupby("symbol").size().to_dict() == {"NASDAQ": 5031, "SP500": 5031}
    results = run_blocking_gates(bundled_bars, calendar=CALENDARS)
    assert list(results) == list(BLOCKING_GATES)
    assert failed(results) == [], [r.summary() for r in results.values() if not r.passed]
    assert results["bars_no_gaps"].observed["missing_bars"] == 0
    assert results["bars_no_gaps"].observed["expected_bars"] == 2 * 5031
    assert results["bars_no_jumps"].observed["max_abs_change"] < 0.3


@pytest.mark.parametrize(
    "day", ["2001-09-11", "2001-09-14", "2007-01-02", "2012-10-29", "2012-10-30"]
)
def test_real_closures_are_not_gaps(sp500: pd.DataFrame, day: str) -> None:
    stamps = pd.DatetimeIndex(
        expected_timestamps("XNYS", "1d", sp500.ts.iloc[0], sp500.ts.iloc[-1])
    )
    assert pd.Timestamp(day, tz="UTC") not in stamps
    assert pd.Timestamp(day, tz="UTC") not in set(sp500["ts"])


def _defect_negative_price(df: pd.DataFrame) -> pd.DataFrame:
    for col in ("open", "high", "low", "close", "adj_close"):
        df.loc[ROW, col] = -abs(df.loc[ROW, col])
    return _swap_high_low(df)  # keep OHLC ordered: high = -low, low = -high


def _swap_high_low(df: pd.DataFrame) -> pd.DataFrame:
    high, low = float(df.loc[ROW, "high"]), float(df.loc[ROW, "low"])
    df.loc[ROW, "high"] = low
    df.loc[ROW, "low"] = high
    return df


def _defect_duplicate_ts(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df.iloc[: ROW + 1], df.iloc[[ROW]], df.iloc[ROW + 1 :]], ignore_index=True)


def _defect_gap(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(index=ROW).reset_index(drop=True)


def _defect_high_below_low(df: pd.DataFrame) -> pd.DataFrame:
    df = _swap_high_low(df)
    assert df.loc[ROW, "high"] < df.loc[ROW, "low"]
    return df


def _defect_nan_close(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[ROW, "close"] = np.nan
    return df


def _defect_jump(df: pd.DataFrame) -> pd.DataFrame:
    prices = ["open", "high", "low", "close", "adj_close"]
    df.loc[ROW:, prices] = df.loc[ROW:, prices] * 1.4  # a 40 % one-bar level shift
    return df


@pytest.mark.parametrize(
    ("defect", "gates", "row"),
    [
        # a negative bar also jumps (-200 %) from its neighbours: both gates must name it
        (_defect_negative_price, ["bars_positive_prices", "bars_no_jumps"], ROW),
        (_defect_duplicate_ts, ["bars_unique_keys"], ROW),
        (_defect_gap, ["bars_no_gaps"], ROW),  # row ROW is now the first bar after the hole
        (_defect_high_below_low, ["bars_ohlc_consistent"], ROW),
        (_defect_nan_close, ["bars_not_null"], ROW),
        (_defect_jump, ["bars_no_jumps"], ROW),
    ],
)
def test_each_defect_fails_the_right_gate_naming_the_row(
    sp500: pd.DataFrame, defect, gates: list[str], row: int
) -> None:
    bad = defect(sp500.copy())
    results = run_blocking_gates(bad, calendar="XNYS")
    assert failed(results) == gates
    for gate in gates:
        assert row in results[gate].offending_rows, results[gate].offending
        assert set(results[gate].offending["symbol"]) == {"SP500"}
        assert results[gate].thresholds  # every result carries its threshold(s)


def test_gap_names_the_missing_session(sp500: pd.DataFrame) -> None:
    missing_day = sp500.loc[ROW, "ts"]
    res = check_no_gaps(_defect_gap(sp500), "XNYS")
    assert res.observed["missing_bars"] == 1
    assert res.offending.loc[0, "ts"] == missing_day
    assert res.offending.loc[0, "problem"] == "missing"


def test_weekend_bar_is_off_calendar(sp500: pd.DataFrame) -> None:
    extra = sp500.iloc[[ROW]].copy()
    saturday = pd.Timestamp("2008-12-06", tz="UTC")
    extra["ts"] = saturday
    frame = pd.concat([sp500, extra], ignore_index=True).sort_values("ts", ignore_index=True)
    res = check_no_gaps(frame, "XNYS")
    assert not res.passed
    assert res.observed == {
        "missing_bars": 0,
        "off_calendar_bars": 1,
        "expected_bars": 5031,
        "rows_checked": 5032,
    }
    assert res.offending.loc[0, "ts"] == saturday


def test_duplicate_names_both_copies(sp500: pd.DataFrame) -> None:
    res = check_unique_keys(_defect_duplicate_ts(sp500))
    assert res.offending_rows == [ROW, ROW + 1]
    assert res.observed["duplicate_rows"] == 1


def test_backwards_timestamp_fails_monotonic(sp500: pd.DataFrame) -> None:
    swapped = sp500.copy()
    swapped.loc[[ROW, ROW + 1], "ts"] = swapped.loc[[ROW + 1, ROW], "ts"].to_numpy()
    res = check_monotonic_ts(swapped)
    assert not res.passed
    assert res.offending_rows == [ROW + 1]
    assert check_monotonic_ts(sp500).passed


def test_jump_reports_observed_change_and_threshold(sp500: pd.DataFrame) -> None:
    res = check_jumps(_defect_jump(sp500.copy()))
    assert res.thresholds == {"max_abs_change": 0.3}
    change = res.offending.loc[0, "change"]
    expected = sp500.loc[ROW, "close"] * 1.4 / sp500.loc[ROW - 1, "close"] - 1
    assert change == pytest.approx(expected)
    assert res.observed["jumps"] == 1


def test_jump_gate_ignores_symbol_boundaries(bundled_bars: pd.DataFrame) -> None:
    # NASDAQ (~2000) is followed by SP500 (~1200) in row order: not a jump, a new symbol
    assert check_jumps(bundled_bars).passed


def test_gap_rows_map_back_to_whole_frame_positions(bundled_bars: pd.DataFrame) -> None:
    sp_first = int(np.flatnonzero(bundled_bars["symbol"].to_numpy() == "SP500")[0])
    frame = bundled_bars.drop(index=sp_first + ROW).reset_index(drop=True)
    res = check_no_gaps_by_calendar(frame, CALENDARS)
    assert res.observed["missing_bars"] == 1
    assert res.offending_rows == [sp_first + ROW]
    assert frame.loc[sp_first + ROW, "symbol"] == "SP500"


def test_crypto_grid_gap() -> None:
    ts = pd.date_range("2024-03-01", periods=10, freq="1min", tz="UTC")
    frame = pd.DataFrame(
        {
            "source": "coinbase",
            "symbol": "BTC-USD",
            "interval": "1m",
            "ts": ts,
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
            "adj_close": 1.0,
            "volume": 1.0,
        }
    ).drop(index=[3, 4])
    res = check_no_gaps(frame.reset_index(drop=True), "24/7")
    assert res.observed["missing_bars"] == 2
    assert list(res.offending["ts"]) == [ts[3], ts[4]]
    assert res.offending_rows == [3, 3]


def test_intraday_equity_grid_follows_sessions() -> None:
    start = pd.Timestamp("2024-07-03 00:00", tz="UTC")  # early close 13:00 ET before July 4th
    stamps = expected_timestamps("XNYS", "5m", start, start + timedelta(days=2))
    per_day = pd.Series(pd.DatetimeIndex(stamps).date).value_counts().sort_index()
    assert list(per_day) == [42]  # 09:30-13:00 ET = 3.5 h / 5 min; July 4th closed
    assert pd.Timestamp(stamps[0], tz="UTC") == pd.Timestamp("2024-07-03 13:30", tz="UTC")


def test_freshness_uses_injected_clock(sp500: pd.DataFrame) -> None:
    last_close = sp500["ts"].iloc[-1] + pd.Timedelta(days=1)
    fresh = check_freshness(sp500, now=last_close + timedelta(days=1), calendar="XNYS")
    stale = check_freshness(sp500, now=datetime(2019, 3, 1, tzinfo=UTC), calendar="XNYS")
    assert fresh.passed and fresh.observed["max_age_s"] == 86400.0
    assert not stale.passed
    assert stale.thresholds == {"max_age_s": 4 * 86400.0}
    assert stale.offending["symbol"].tolist() == ["SP500"]
