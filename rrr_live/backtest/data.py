"""Canonical bar frame -> :class:`~rrr_live.strategy.history.BarPanel` (validated, sorted)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.domain.bars import interval_ns
from rrr_live.domain.errors import BacktestInputError
from rrr_live.strategy.history import BarPanel

_NEEDED = ("symbol", "interval", "ts", "open", "close", "volume")


def _validate(bars: pd.DataFrame) -> str:
    missing = [c for c in _NEEDED if c not in bars.columns]
    if missing:
        return f"bars lack columns {missing}"
    if bars.empty:
        return "bars frame is empty"
    intervals = bars["interval"].unique()
    if len(intervals) != 1:
        return f"a backtest runs on one bar interval, got {sorted(map(str, intervals))}"
    if getattr(bars["ts"].dtype, "tz", None) is None:
        return "bars ts must be tz-aware (UTC)"
    prices = bars[["open", "close"]].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(prices)) or np.any(prices <= 0):
        return "bars open/close must be finite and > 0"
    return ""


def panel_from_bars(bars: pd.DataFrame) -> BarPanel:
    """Validate a canonical bar frame (one interval) and lay it out for the backtest.

    Raises:
        BacktestInputError: naming the problem (missing columns, mixed intervals, naive
            timestamps, non-positive prices, duplicate bars).
    """
    problem = _validate(bars)
    if problem:
        raise BacktestInputError(problem)
    step = interval_ns(str(bars["interval"].iloc[0]))
    ts = pd.DatetimeIndex(bars["ts"]).tz_convert("UTC").as_unit("ns").asi8
    codes, uniques = pd.factorize(bars["symbol"].astype(str), sort=True)
    symbols = np.asarray(uniques, dtype=object)
    order = np.lexsort((codes, ts))
    ts, sym_id = ts[order], codes[order].astype(np.int64)
    if np.any((ts[1:] == ts[:-1]) & (sym_id[1:] == sym_id[:-1])):
        raise BacktestInputError("bars have duplicate (symbol, ts) rows")
    volume = bars["volume"].to_numpy(dtype=np.float64)[order]

    by_symbol = np.argsort(sym_id, kind="stable")
    counts = np.bincount(sym_id, minlength=len(symbols))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.empty(len(ts), dtype=np.int64)
    pos[by_symbol] = np.arange(len(ts)) - np.repeat(starts, counts)

    close: npt.NDArray[np.float64] = bars["close"].to_numpy(dtype=np.float64)[order]
    mat_close = np.full((len(symbols), int(counts.max())), np.nan)
    mat_volume = np.full_like(mat_close, np.nan)
    mat_close[sym_id, pos] = close
    mat_volume[sym_id, pos] = volume

    close_ns = ts + step
    batch_starts = np.concatenate([[0], np.flatnonzero(np.diff(close_ns)) + 1, [len(ts)]])

    def col(name: str) -> npt.NDArray[np.float64]:
        if name not in bars.columns:
            return close
        values: npt.NDArray[np.float64] = bars[name].to_numpy(dtype=np.float64)[order]
        return values

    return BarPanel(
        symbols=tuple(str(s) for s in symbols),
        interval_ns=step,
        symbol_id=sym_id,
        ts_ns=ts,
        close_ns=close_ns,
        open=col("open"),
        high=col("high"),
        low=col("low"),
        close=close,
        volume=volume,
        pos_in_symbol=pos,
        mat_close=mat_close,
        mat_volume=mat_volume,
        batch_starts=batch_starts.astype(np.int64),
    )
