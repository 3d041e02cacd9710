"""Freshness: is the newest bar recent enough? Only for sources that keep updating."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from rrr_live.domain.bars import interval_ns
from rrr_pipelines.lib.quality.result import CheckResult


def default_max_age(interval: str, calendar: str) -> timedelta:
    """Return how stale the newest *closed* bar may be before freshness fails.

    Daily bars on an exchange calendar allow a long weekend (4 days); 24/7 daily bars 2 days;
    intraday bars ten intervals but at least 15 minutes (exchange calendars: 4 days, since the
    venue may be closed over a weekend).

    Args:
        interval: Bar interval, e.g. ``"1d"`` or ``"1m"``.
        calendar: ``"24/7"`` or an exchange-calendars name.
    """
    step = timedelta(microseconds=interval_ns(interval) // 1000)
    if calendar != "24/7":
        return timedelta(days=4)
    if interval == "1d":
        return timedelta(days=2)
    return max(10 * step, timedelta(minutes=15))


def check_freshness(
    bars: pd.DataFrame,
    now: datetime,
    max_age: timedelta | None = None,
    calendar: str = "24/7",
) -> CheckResult:
    """Each symbol's newest bar closed no longer than ``max_age`` before ``now``.

    Args:
        bars: Canonical bar frame.
        now: The current time (tz-aware; injected so the check is testable).
        max_age: Allowed staleness; default :func:`default_max_age`.
        calendar: Venue calendar, used only for the default ``max_age``.

    Raises:
        ValueError: if ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("check_freshness needs a tz-aware 'now'")
    name = "bars_freshness"
    if bars.empty:
        return CheckResult(
            name, False, {"rows_checked": 0, "stale_symbols": 0}, {"max_age_s": None},
            description="no bars at all",
        )  # fmt: skip
    interval = str(bars["interval"].iloc[0])
    limit = max_age if max_age is not None else default_max_age(interval, calendar)
    step = pd.Timedelta(interval_ns(interval), unit="ns")
    last = bars.groupby("symbol")["ts"].max()
    age = pd.Timestamp(now).tz_convert("UTC") - (last + step)
    stale = age[age > pd.Timedelta(limit)]
    offending = pd.DataFrame(
        {
            "symbol": stale.index.astype(str),
            "last_ts": last[stale.index].to_numpy(),
            "age_s": stale.dt.total_seconds().to_numpy(),
        }
    )
    return CheckResult(
        name=name,
        passed=stale.empty,
        observed={
            "max_age_s": float(age.max().total_seconds()),
            "stale_symbols": len(stale),
            "newest_ts": last.max().isoformat(),
        },
        thresholds={"max_age_s": pd.Timedelta(limit).total_seconds()},
        offending=offending.head(20),
        description="newest bar of every symbol closed within max_age of now",
    )
