"""Run every blocking gate on a bar frame; the single entry point the Dagster checks call."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from rrr_pipelines.lib.quality.calendar_gaps import check_no_gaps
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


def check_no_gaps_by_calendar(
    bars: pd.DataFrame, calendars: str | Mapping[str, str], default: str = "24/7"
) -> CheckResult:
    """Run :func:`check_no_gaps` once per calendar and merge the results.

    Args:
        bars: Canonical bar frame.
        calendars: One calendar for all symbols, or symbol -> calendar (``default`` otherwise).
        default: Calendar for symbols missing from the mapping.
    """
    if isinstance(calendars, str):
        return check_no_gaps(bars, calendars)
    per_symbol = bars["symbol"].map(lambda s: calendars.get(s, default))
    results: list[CheckResult] = []
    for cal, positions in per_symbol.groupby(per_symbol).indices.items():
        part = check_no_gaps(bars.iloc[positions], str(cal))
        frame = part.offending.copy()
        frame["row"] = positions[frame["row"].to_numpy(int)] if len(frame) else frame["row"]
        results.append(CheckResult(part.name, part.passed, part.observed, part.thresholds, frame))
    if not results:
        return check_no_gaps(bars, default)
    observed = {
        key: sum(int(r.observed[key]) for r in results)
        for key in ("missing_bars", "off_calendar_bars", "expected_bars", "rows_checked")
    }
    return CheckResult(
        name="bars_no_gaps",
        passed=all(r.passed for r in results),
        observed=observed,
        thresholds={"missing_bars": 0, "off_calendar_bars": 0, "calendar": dict(calendars)},
        offending=pd.concat([r.offending for r in results], ignore_index=True).head(
            MAX_OFFENDING_ROWS
        ),
        description="no bars missing against each symbol's trading calendar",
    )


def run_blocking_gates(
    bars: pd.DataFrame,
    calendar: str | Mapping[str, str] = "24/7",
    jump_threshold: float | None = None,
) -> dict[str, CheckResult]:
    """Run every blocking gate and return the results by gate name (``BLOCKING_GATES`` order).

    Args:
        bars: Canonical bar frame (one source, one interval).
        calendar: Trading calendar for the gap gate (one name or symbol -> name).
        jump_threshold: Step-change limit; default by interval and calendar
            (:func:`~rrr_pipelines.lib.quality.gates.default_jump_threshold`).
    """
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
        "bars_no_gaps": lambda b: check_no_gaps_by_calendar(b, calendar),
        "bars_no_jumps": lambda b: check_jumps(b, jump_threshold),
    }
    return {name: gates[name](bars) for name in BLOCKING_GATES}


def failed(results: Mapping[str, CheckResult]) -> list[str]:
    """Return the names of the gates that failed, in order.

    Args:
        results: Output of :func:`run_blocking_gates`.
    """
    return [name for name, res in results.items() if not res.passed]
