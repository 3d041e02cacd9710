"""Binance spot kline history over REST.

``GET /api/v3/klines?symbol=&interval=&startTime=&endTime=&limit=`` returns up to ``limit``
(max 1000) klines, oldest first, each
``[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, takerBase,
takerQuote, ignore]`` with times in epoch milliseconds and prices/volumes as strings. Errors come
as ``{"code": -1121, "msg": "Invalid symbol."}``; 429 means back off (``Retry-After``), 418 means
the IP is banned (fatal). The default bucket stays far below the 6000-weight/minute limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rrr_live.domain.bars import interval_ns
from rrr_pipelines.lib.sources.base import SourceError
from rrr_pipelines.lib.sources.rest import RestCandleSource, RestSourceError, append_candle

BINANCE_URL = "https://api.binance.com"
MAX_KLINES = 1000
INTERVALS = ("1s", "1m", "5m", "15m", "1h", "1d")


class BinanceSource(RestCandleSource):
    """Binance spot klines for a list of symbols (``BTCUSDT`` …), 1000 per request."""

    name = "binance"
    venue = "Binance spot"
    series = "klines"
    default_url = BINANCE_URL
    default_symbols = ("BTCUSDT",)
    default_rate_per_s = 10.0
    default_burst = 10.0

    def _configure_interval(self, interval: str) -> None:
        if interval not in INTERVALS:
            raise SourceError(f"binance source serves intervals {INTERVALS}, not {interval!r}")
        self.step_ms = interval_ns(interval) // 1_000_000

    def _collect(
        self, symbol: str, start: datetime, end: datetime, cols: dict[str, list[float]]
    ) -> None:
        """Follow ``openTime`` pages from the first bar at or after ``start`` up to ``end``."""
        step = self.step_ms
        cursor = -(-int(start.timestamp() * 1000) // step) * step
        stop = int(end.timestamp() * 1000)  # exclusive
        while cursor < stop:
            params: dict[str, str | int] = {
                "symbol": symbol,
                "interval": self.interval,
                "startTime": cursor,
                "endTime": stop - 1,
                "limit": MAX_KLINES,
            }
            body = self._rows(symbol, self.client.get_json("/api/v3/klines", params))
            last_open = self._parse(symbol, body, cursor, stop, cols)
            if last_open is None or len(body) < MAX_KLINES:
                break
            cursor = last_open + step

    def _parse(
        self, symbol: str, body: list[Any], lo: int, hi: int, cols: dict[str, list[float]]
    ) -> int | None:
        """Append rows in ``[lo, hi)`` ms; return the last open time seen (None if empty)."""
        last = None
        for i, row in enumerate(body):
            try:
                if not isinstance(row, list) or isinstance(row[0], bool):
                    raise TypeError("not a list")
                open_ms = int(row[0])
                values = [float(row[k]) for k in range(1, 6)]
            except (TypeError, ValueError, IndexError) as e:
                raise RestSourceError(
                    f"binance {symbol} klines: row {i} is not [openTime, open, high, low, close, "
                    f"volume, …]: {row!r} ({e})"
                ) from e
            last = open_ms
            if lo <= open_ms < hi:
                append_candle(cols, open_ms / 1000.0, values)
        return last
