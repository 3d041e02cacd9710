"""Completeness of one partition: what it should hold, and gates that say what is missing.

A partition knows its servable window (the partition's time window clipped to what the source
can serve, see :func:`rrr_pipelines.lib.sources.base.servable_window`), the symbols it should
hold, and each symbol's trading calendar (exchange_calendars for equities, ``24/7`` for
crypto). The sessions themselves are checked by
:func:`~rrr_pipelines.lib.quality.calendar_gaps.check_no_gaps` with the window, edges included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rrr_pipelines.lib.quality.calendar_gaps import expected_timestamps
from rrr_pipelines.lib.quality.result import CheckResult, offending_frame


@dataclass(frozen=True)
class PartitionExpectation:
    """What one partition of bars should contain.

    Attributes:
        partition_key: Dagster partition key (for messages).
        interval: Bar interval.
        start: Servable window start (tz-aware, inclusive).
        end: Servable window end (tz-aware, exclusive); ``start >= end`` expects nothing.
        calendars: Expected symbol -> trading calendar (``"24/7"`` or an exchange-calendars name).
    """

    partition_key: str
    interval: str
    start: pd.Timestamp
    end: pd.Timestamp
    calendars: Mapping[str, str] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        """Return the expected symbols, sorted."""
        return sorted(self.calendars)

    @property
    def last(self) -> pd.Timestamp:
        """Return the window's last instant (inclusive form of ``end``)."""
        return self.end - pd.Timedelta(1, "us")

    def sessions(self, symbol: str) -> int:
        """Return how many bars ``symbol``'s calendar expects in the window.

        Args:
            symbol: An expected symbol.
        """
        if self.start >= self.end:
            return 0
        grid = expected_timestamps(self.calendars[symbol], self.interval, self.start, self.last)
        return int(grid.size)


def check_expected_symbols(bars: pd.DataFrame, expected: PartitionExpectation) -> CheckResult:
    """Every expected symbol that should trade in the window has bars; no unexpected symbol.

    Args:
        bars: The partition's bar frame.
        expected: What the partition should contain.
    """
    present = set(bars["symbol"].astype(str)) if len(bars) else set()
    missing = [s for s in expected.symbols if s not in present and expected.sessions(s) > 0]
    unexpected = sorted(present - set(expected.symbols))
    problems = [f"missing symbol {s} ({expected.sessions(s)} sessions expected)" for s in missing]
    problems += [f"unexpected symbol {s}" for s in unexpected]
    offending = pd.DataFrame(
        {"symbol": missing + unexpected, "problem": problems}, columns=["symbol", "problem"]
    )
    return CheckResult(
        name="bars_expected_symbols",
        passed=not problems,
        observed={
            "missing_symbols": missing,
            "unexpected_symbols": unexpected,
            "symbols_present": len(present),
            "rows_checked": len(bars),
        },
        thresholds={"expected_symbols": expected.symbols},
        offending=offending,
        description=(
            f"partition {expected.partition_key}: every expected symbol present"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(unexpected)}" if unexpected else "")
        ),
    )


def check_in_window(bars: pd.DataFrame, expected: PartitionExpectation) -> CheckResult:
    """Every bar lies inside the partition's servable window ``[start, end)``.

    Args:
        bars: The partition's bar frame.
        expected: What the partition should contain.
    """
    ts = bars["ts"]
    outside = ~((ts >= expected.start) & (ts < expected.end)) if len(bars) else ts.astype(bool)
    return CheckResult(
        name="bars_in_window",
        passed=not bool(np.asarray(outside).any()),
        observed={"outside_window": int(outside.sum()), "rows_checked": len(bars)},
        thresholds={
            "outside_window": 0,
            "window_start": expected.start.isoformat(),
            "window_end": expected.end.isoformat(),
        },
        offending=offending_frame(bars, outside, []),
        description=f"partition {expected.partition_key}: every bar inside its window",
    )
