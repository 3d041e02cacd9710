"""Run every blocking gate on a bar frame; the single entry point the Dagster checks call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from rrr_pipelines.lib.quality.calendar_gaps import check_no_gaps
from rrr_pipelines.lib.quality.completeness import (
    PartitionExpectation,
    check_expected_symbols,
    check_in_window,
)
from rrr_pipelines.lib.quality.gates import (
    check_jumps,
    check_monotonic_ts,
    check_not_null,
    check_ohlc_consistent,
    check_positive_prices,
    check_unique_keys,
    check_volume_non_negative,
    default_jump_threshold,
)
from rrr_pipelines.lib.quality.result import MAX_OFFENDING_ROWS, CheckResult

# Default calendar per source when the instruments table does not say otherwise.
SOURCE_CALENDARS: dict[str, str] = {
    "bundled": "XNYS",
    "coinbase": "24/7",
    "binance": "24/7",
    "synthetic": "24/7",
    "files": "24/7",
}

BLOCKING_GATES: tuple[str, ...] = (
    "bars_not_null",
    "bars_ohlc_consistent",
    "bars_positive_prices",
    "bars_volume_non_negative",
    "bars_unique_keys",
    "bars_monotonic_ts",
    "bars_no_gaps",
    "bars_no_jumps",
)
# Gates that need to know what the partition should hold (run when an expectation is given).
COMPLETENESS_GATES: tuple[str, ...] = ("bars_expected_symbols", "bars_in_window")
PARTITION_GATES: tuple[str, ...] = (*BLOCKING_GATES, *COMPLETENESS_GATES)


def check_no_gaps_by_calendar(
    bars: pd.DataFrame,
    calendars: str | Mapping[str, str],
    default: str = "24/7",
    expected: PartitionExpectation | None = None,
) -> CheckResult:
    """Run :func:`check_no_gaps` once per calendar and merge the results.

    Args:
        bars: Canonical bar frame.
        calendars: One calendar for all symbols, or symbol -> calendar (``default`` otherwise).
        default: Calendar for symbols missing from the mapping.
        expected: When given, every session of its window is expected for every expected
            symbol (edges included, absent symbols too).
    """
    window: dict[str, Any] = {}
    if expected is not None:
        window = {"start": expected.start, "end": expected.last, "interval": expected.interval}
        if expected.start >= expected.end:
            window["end"] = window["start"] = None  # nothing servable: judge bars by own span
    if isinstance(calendars, str):
        symbols = expected.symbols if expected is not None else []
        return check_no_gaps(bars, calendars, symbols=symbols, **window)
    per_symbol = bars["symbol"].map(lambda s: calendars.get(s, default))
    groups = {str(cal): pos for cal, pos in per_symbol.groupby(per_symbol).indices.items()}
    absent: dict[str, list[str]] = {}
    for symbol in expected.symbols if expected is not None else []:
        absent.setdefault(calendars.get(symbol, default), []).append(symbol)
    results: list[CheckResult] = []
    for cal in sorted(set(groups) | set(absent)):
        positions = groups.get(cal, np.empty(0, dtype=np.int64))
        part = check_no_gaps(bars.iloc[positions], cal, symbols=absent.get(cal, []), **window)
        frame = part.offending.copy()
        if len(frame):  # positions within the calendar's slice -> positions in ``bars``
            known = frame["row"].notna()
            frame.loc[known, "row"] = positions[frame.loc[known, "row"].to_numpy(int)]
        results.append(CheckResult(part.name, part.passed, part.observed, part.thresholds, frame))
    if not results:
        return check_no_gaps(bars, default)
    return _merge_gap_results(results, calendars)


def _merge_gap_results(results: list[CheckResult], calendars: Mapping[str, str]) -> CheckResult:
    observed = {
        key: sum(int(r.observed.get(key, 0)) for r in results)
        for key in ("missing_bars", "off_calendar_bars", "expected_bars", "rows_checked")
    }
    offending = [r.offending for r in results if len(r.offending)]
    return CheckResult(
        name="bars_no_gaps",
        passed=all(r.passed for r in results),
        observed=observed,
        thresholds={"missing_bars": 0, "off_calendar_bars": 0, "calendar": dict(calendars)},
        offending=(
            pd.concat(offending, ignore_index=True).head(MAX_OFFENDING_ROWS)
            if offending
            else pd.DataFrame(columns=["row", "symbol", "ts", "problem"])
        ),
        description="no bars missing against each symbol's trading calendar",
    )


def run_blocking_gates(
    bars: pd.DataFrame,
    calendar: str | Mapping[str, str] = "24/7",
    jump_threshold: float | None = None,
    expected: PartitionExpectation | None = None,
) -> dict[str, CheckResult]:
    """Run every blocking gate and return the results by gate name.

    Without ``expected`` the frame gates run (``BLOCKING_GATES`` order); with it the
    completeness gates too (``PARTITION_GATES``), the gap gate covers the whole window, and the
    calendars come from ``expected`` for its symbols.

    Args:
        bars: Canonical bar frame (one source, one interval), in the order the source returned it.
        calendar: Trading calendar for the gap gate (one name or symbol -> name).
        jump_threshold: Step-change limit; default by interval and calendar
            (:func:`~rrr_pipelines.lib.quality.gates.default_jump_threshold`).
        expected: What the partition should hold (window, symbols, calendars).
    """
    if expected is not None:
        calendar = {**({} if isinstance(calendar, str) else calendar), **expected.calendars}
    if jump_threshold is None and len(bars):
        cals = {calendar} if isinstance(calendar, str) else set(calendar.values())
        venue = "24/7" if "24/7" in cals or not cals else sorted(cals)[0]
        jump_threshold = default_jump_threshold(str(bars["interval"].iloc[0]), venue)
    gates: dict[str, Callable[[pd.DataFrame], CheckResult]] = {
        "bars_not_null": check_not_null,
        "bars_ohlc_consistent": check_ohlc_consistent,
        "bars_positive_prices": check_positive_prices,
        "bars_volume_non_negative": check_volume_non_negative,
        "bars_unique_keys": check_unique_keys,
        "bars_monotonic_ts": check_monotonic_ts,
        "bars_no_gaps": lambda b: check_no_gaps_by_calendar(b, calendar, expected=expected),
        "bars_no_jumps": lambda b: check_jumps(b, jump_threshold),
    }
    if expected is None:
        return {name: gates[name](bars) for name in BLOCKING_GATES}
    gates["bars_expected_symbols"] = lambda b: check_expected_symbols(b, expected)
    gates["bars_in_window"] = lambda b: check_in_window(b, expected)
    return {name: gates[name](bars) for name in PARTITION_GATES}


def failed(results: Mapping[str, CheckResult]) -> list[str]:
    """Return the names of the gates that failed, in order.

    Args:
        results: Output of :func:`run_blocking_gates`.
    """
    return [name for name, res in results.items() if not res.passed]
