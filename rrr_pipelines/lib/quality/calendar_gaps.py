"""Gaps against the venue's trading calendar (``exchange_calendars``) or a 24/7 grid.

Timestamp convention (see docs/data.md): daily bars on an exchange calendar are stamped at the
session date, 00:00 UTC; intraday bars at their open minute in UTC; 24/7 venues on a regular
UTC grid aligned to the epoch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from rrr_live.domain.bars import interval_ns
from rrr_pipelines.lib.quality.result import MAX_OFFENDING_ROWS, CheckResult

ALWAYS_OPEN = "24/7"
_NS_PER_MIN = 60 * 1_000_000_000


@contextmanager
def _quiet_calendar() -> Iterator[None]:
    """Silence exchange_calendars 4.13's pandas-3.1 ``.values`` deprecation only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*\.values returning an ndarray")
        yield


def _calendar(name: str, start: pd.Timestamp) -> Any:
    """Return calendar ``name`` covering ``start`` (built from 1990 or earlier, then cached)."""
    return _build_calendar(name, min(1990, start.year))


@lru_cache(maxsize=8)
def _build_calendar(name: str, first_year: int) -> Any:
    import exchange_calendars as xc  # ~0.4 s import, only when a calendar is needed

    try:
        with _quiet_calendar():
            return xc.get_calendar(name, start=f"{first_year}-01-01")
    except xc.errors.InvalidCalendarName as e:
        raise ValueError(f"unknown trading calendar {name!r}: {e}") from e


def expected_timestamps(
    calendar: str, interval: str, start: pd.Timestamp, end: pd.Timestamp
) -> np.ndarray:
    """Return the bar open times (int64 ns, UTC) a venue trades in ``[start, end]``.

    Args:
        calendar: ``"24/7"`` or an exchange-calendars name such as ``"XNYS"``.
        interval: Bar interval (``rrr_live.domain.bars.INTERVAL_NS`` key).
        start: First timestamp of the window (tz-aware).
        end: Last timestamp of the window, inclusive (tz-aware).

    Raises:
        ValueError: for an unknown interval or calendar name.
    """
    step = interval_ns(interval)
    lo, hi = start.as_unit("ns").value, end.as_unit("ns").value
    if calendar == ALWAYS_OPEN:
        first = -(-lo // step) * step  # integer arithmetic: np.arange's float length is inexact
        count = max(0, (hi - first) // step + 1)
        return np.asarray(first + step * np.arange(count, dtype=np.int64), dtype=np.int64)
    cal = _calendar(calendar, start)
    with _quiet_calendar():
        if interval == "1d":
            sessions = cal.sessions_in_range(
                start.tz_convert(None).normalize(), end.tz_convert(None).normalize()
            )
            return np.asarray(pd.DatetimeIndex(sessions).tz_localize("UTC").as_unit("ns").asi8)
        return _intraday_grid(cal, step, start, end)


def _intraday_grid(cal: Any, step: int, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    lo = max(start, cal.first_minute)
    hi = min(end, cal.last_minute)
    minutes = cal.minutes_in_range(lo.floor("min"), hi.ceil("min"))
    mins = pd.DatetimeIndex(minutes).as_unit("ns").asi8
    if step < _NS_PER_MIN:
        sub = np.arange(0, _NS_PER_MIN, step, dtype=np.int64)
        grid = (mins[:, None] + sub[None, :]).ravel()
    else:
        sessions = cal.minutes_to_sessions(minutes)
        opens = pd.DatetimeIndex(cal.opens.loc[sessions]).as_unit("ns").asi8
        grid = mins[(mins - opens) % step == 0]
    lo_ns, hi_ns = start.as_unit("ns").value, end.as_unit("ns").value
    return np.asarray(grid[(grid >= lo_ns) & (grid <= hi_ns)], dtype=np.int64)


def check_no_gaps(
    bars: pd.DataFrame,
    calendar: str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    symbols: Sequence[str] = (),
    interval: str | None = None,
) -> CheckResult:
    """Every bar the calendar expects is present, edges included when a window is given.

    Without a window, each symbol is judged between its own first and last bar. With ``start``
    and ``end`` (inclusive) every session of the window is expected for every symbol, so a
    truncated fetch fails, and a symbol of ``symbols`` with no bar at all misses every session
    (an empty partition fails when the calendar trades in its window).
    Closures the calendar knows (holidays, 2001-09-11..14, 2012-10-29/30 …) are not gaps.
    Bars stamped at a time the calendar does not trade are reported as ``off_calendar``.

    Args:
        bars: Canonical bar frame (one interval).
        calendar: ``"24/7"`` or an exchange-calendars name (``"XNYS"``, ``"XNAS"``).
        start: Optional window start; missing bars before a symbol's first bar are gaps too.
        end: Optional window end (inclusive).
        symbols: Symbols expected in the window even when they have no bar.
        interval: Bar interval (default: the frame's; needed when the frame is empty).
    """
    name = "bars_no_gaps"
    windowed = start is not None and end is not None
    if bars.empty and not (windowed and symbols):
        return CheckResult(name, True, {"missing_bars": 0, "rows_checked": 0}, {"missing_bars": 0})
    interval = interval or str(bars["interval"].iloc[0])
    ts = bars["ts"].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()
    lo, hi = _bounds(ts, start, end)
    grid = expected_timestamps(calendar, interval, lo, hi) if lo <= hi else np.empty(0, np.int64)
    rows: list[dict[str, Any]] = []
    missing_total = off_total = 0
    present = _positions_by_symbol(bars["symbol"].to_numpy(), ts) if len(ts) else []
    for symbol, positions in present:
        own = ts[positions]  # sorted by ts
        window = _window(
            grid, own[0] if start is None else lo.value, own[-1] if end is None else hi.value
        )
        if window.size == own.size and np.array_equal(window, own):
            continue
        missing = window[~_member(window, own)]
        off = own[~_member(own, grid)]
        missing_total += missing.size
        off_total += off.size
        rows += _gap_rows(symbol, positions, own, missing, "missing")
        rows += _gap_rows(symbol, positions, own, off, "off_calendar")
    seen = {symbol for symbol, _ in present}
    for symbol in (s for s in symbols if s not in seen) if windowed else ():
        missing_total += grid.size
        rows += [{"row": None, "symbol": symbol, "ts": _ts(int(t)), "problem": "missing (no bars)"}
                 for t in grid[:MAX_OFFENDING_ROWS]]  # fmt: skip
    offending = pd.DataFrame(rows[:MAX_OFFENDING_ROWS], columns=["row", "symbol", "ts", "problem"])
    return CheckResult(
        name=name,
        passed=missing_total == 0 and off_total == 0,
        observed={
            "missing_bars": int(missing_total),
            "off_calendar_bars": int(off_total),
            "expected_bars": int(grid.size),
            "rows_checked": len(bars),
        },
        thresholds={"missing_bars": 0, "off_calendar_bars": 0, "calendar": calendar},
        offending=offending,
        description=f"no bars missing against the {calendar} calendar",
    )


def _bounds(
    ts: np.ndarray, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Grid bounds: the window when given, widened to cover every bar of the frame."""
    lo = [] if start is None else [start.as_unit("ns")]
    hi = [] if end is None else [end.as_unit("ns")]
    if ts.size:
        lo.append(_ts(int(ts.min())))
        hi.append(_ts(int(ts.max())))
    return min(lo), max(hi)


def _window(grid: np.ndarray, first: int, last: int) -> np.ndarray:
    return grid[np.searchsorted(grid, first) : np.searchsorted(grid, last, side="right")]


def _positions_by_symbol(sym: np.ndarray, ts: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Return (symbol, frame positions sorted by ts) for each symbol, in one sort."""
    codes, uniques = pd.factorize(sym)
    order = np.lexsort((ts, codes))
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    return [(str(uniques[codes[g[0]]]), g) for g in np.split(order, cuts) if g.size]


def _member(values: np.ndarray, sorted_pool: np.ndarray) -> np.ndarray:
    """Boolean mask: which ``values`` occur in the sorted array ``sorted_pool``."""
    if sorted_pool.size == 0:
        return np.zeros(values.size, dtype=bool)
    idx = np.clip(np.searchsorted(sorted_pool, values), 0, sorted_pool.size - 1)
    return np.asarray(sorted_pool[idx] == values, dtype=bool)


def _ts(value: int) -> pd.Timestamp:
    return pd.Timestamp(value, tz="UTC")


def _gap_rows(
    symbol: str, positions: np.ndarray, own: np.ndarray, stamps: np.ndarray, problem: str
) -> list[dict[str, Any]]:
    """Name each missing/off-calendar stamp by the frame row that reveals it.

    ``own`` holds the symbol's timestamps sorted, ``positions`` their frame positions.

    For a missing bar that is the first bar after the hole (or the last bar before a hole at the
    end of the window); for an off-calendar bar it is the bar itself.
    """
    if stamps.size == 0:
        return []
    stamps = stamps[:MAX_OFFENDING_ROWS]
    idx = np.clip(np.searchsorted(own, stamps, side="left"), 0, len(own) - 1)
    rows = positions[idx]
    return [
        {"row": int(r), "symbol": symbol, "ts": _ts(int(s)), "problem": problem}
        for r, s in zip(rows, stamps, strict=True)
    ]
