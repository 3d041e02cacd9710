"""Real daily bars shipped inside the ``arch`` package (the embedded default source)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import pandas as pd

from rrr_live.domain.bars import BAR_COLUMNS
from rrr_pipelines.lib.sources.base import SourceError, SourceInstrument, require_aware

# symbol -> (arch.data module, calendar, description)
_SERIES: dict[str, tuple[str, str, str]] = {
    "SP500": ("sp500", "XNYS", "S&P 500 index, daily, 1999-2018 (arch.data.sp500)"),
    "NASDAQ": ("nasdaq", "XNAS", "NASDAQ Composite index, daily, 1999-2018 (arch.data.nasdaq)"),
}


@lru_cache(maxsize=4)
def _load(symbol: str) -> pd.DataFrame:
    import importlib

    module = importlib.import_module(f"arch.data.{_SERIES[symbol][0]}")
    raw = module.load()
    frame = pd.DataFrame(
        {
            "source": "bundled",
            "symbol": symbol,
            "interval": "1d",
            "ts": pd.to_datetime(raw.index).tz_localize("UTC"),
            "open": raw["Open"].to_numpy("float64"),
            "high": raw["High"].to_numpy("float64"),
            "low": raw["Low"].to_numpy("float64"),
            "close": raw["Close"].to_numpy("float64"),
            "adj_close": raw["Adj Close"].to_numpy("float64"),
            "volume": raw["Volume"].to_numpy("float64"),
        }
    )
    return frame.loc[:, list(BAR_COLUMNS)].reset_index(drop=True)


def bundled_series(symbol: str) -> pd.DataFrame:
    """One bundled series (``SP500`` or ``NASDAQ``) as a canonical bar frame (a fresh copy).

    Raises:
        SourceError: for a symbol that is not bundled.
    """
    if symbol not in _SERIES:
        raise SourceError(f"bundled source has no symbols ['{symbol}']; known: {sorted(_SERIES)}")
    return _load(symbol).copy()


class BundledSource:
    """S&P 500 and NASDAQ Composite daily OHLCV, 1999-01-04 … 2018-12-31 (real, frozen)."""

    name = "bundled"
    interval = "1d"
    synthetic = False
    keeps_updating = False
    span = (datetime(1999, 1, 4, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC))

    def __init__(self, symbols: list[str] | None = None, interval: str = "1d") -> None:
        """Select ``symbols`` (default: all bundled series); the data is daily only."""
        if interval != "1d":
            raise SourceError(f"bundled data is daily (interval '1d'), not {interval!r}")
        unknown = sorted(set(symbols or []) - set(_SERIES))
        if unknown:
            raise SourceError(f"bundled source has no symbols {unknown}; known: {sorted(_SERIES)}")
        self.symbols = list(symbols or _SERIES)

    def instruments(self) -> list[SourceInstrument]:
        """Return the bundled index series."""
        return [
            SourceInstrument(sym, self.name, "index", _SERIES[sym][1], "USD", _SERIES[sym][2])
            for sym in self.symbols
        ]

    def fetch(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Return bars with ``start <= ts < end`` for the selected symbols.

        Raises:
            SourceError: for a naive ``start`` or ``end``.
        """
        require_aware(self.name, start, end)
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        parts = [_load(sym) for sym in self.symbols]
        frame = pd.concat(parts, ignore_index=True)
        mask = (frame["ts"] >= lo) & (frame["ts"] < hi)
        return frame.loc[mask].sort_values(["symbol", "ts"]).reset_index(drop=True)
