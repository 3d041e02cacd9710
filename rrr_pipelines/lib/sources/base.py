"""The one interface every market-data source implements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import pandas as pd

from rrr_live.domain.bars import BAR_COLUMNS


class SourceError(Exception):
    """A source could not deliver valid bars; the message names what and where."""


@dataclass(frozen=True)
class Instrument:
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

    def instruments(self) -> list[Instrument]:
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
