"""The one interface every market-data source implements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import pandas as pd

from rrr_live.domain.bars import BAR_COLUMNS, interval_ns
from rrr_live.errors import RRRError


class SourceError(RRRError):
    """A source could not deliver valid bars; the message names what and where."""


@dataclass(frozen=True)
class SourceInstrument:
    """Static metadata of one symbol a source offers."""

    symbol: str
    source: str
    asset_class: str  # "index", "equity", "crypto", "commodity", "synthetic"
    calendar: str  # exchange-calendars name ("XNYS", "XNAS") or "24/7"
    currency: str
    description: str = ""


@runtime_checkable
class BarSource(Protocol):
    """A provider of OHLCV bars in the canonical frame (``rrr_live.domain.bars``)."""

    name: str
    interval: str
    synthetic: bool
    keeps_updating: bool  # False for frozen history (bundled); drives the freshness check
    # [first, end) of bars the source can ever serve, when it is fixed (frozen history); None
    # when open-ended. Completeness expects sessions only inside it (and before ``now``).
    span: tuple[datetime, datetime] | None

    def instruments(self) -> list[SourceInstrument]:
        """Return the symbols this source offers."""
        ...

    def fetch(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Return bars with ``start <= ts < end`` (tz-aware UTC), sorted by (symbol, ts)."""
        ...


def empty_bars() -> pd.DataFrame:
    """Return an empty canonical bar frame with the right dtypes."""
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS})
    for col in ("source", "symbol", "interval"):
        frame[col] = frame[col].astype("str")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def require_aware(source: str, start: datetime, end: datetime) -> None:
    """Refuse a naive fetch window (it would be read as local time, or fail to compare).

    Args:
        source: Source name, for the message.
        start: Window start.
        end: Window end.

    Raises:
        SourceError: if ``start`` or ``end`` has no time zone.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise SourceError(f"{source} fetch needs tz-aware start and end")


def servable_window(
    source: BarSource, start: datetime, end: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """Clip ``[start, end)`` to what ``source`` can serve at ``now``.

    A frozen source serves only its ``span``; any source serves only bars that have closed by
    ``now`` (a bar opened at ``t`` closes at ``t + interval``). The result may be empty
    (``start >= end``): then no bar is expected.

    Args:
        source: The source asked.
        start: Requested window start (tz-aware).
        end: Requested window end, exclusive (tz-aware).
        now: Current time (tz-aware), injected.
    """
    require_aware(source.name, start, end)
    lo, hi = start, end
    if source.span is not None:
        lo, hi = max(lo, source.span[0]), min(hi, source.span[1])
    closed_before = now - timedelta(microseconds=interval_ns(source.interval) // 1000)
    # a bar opened at t is complete at t + interval: the last complete bar opened <= that
    hi = min(hi, closed_before + timedelta(microseconds=1))
    return lo, max(lo, hi)
