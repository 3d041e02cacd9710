"""Binance spot kline history over REST.

``GET /api/v3/klines?symbol=&interval=&startTime=&endTime=&limit=`` returns up to ``limit``
(max 1000) klines, oldest first, each
``[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, takerBase,
takerQuote, ignore]`` with times in epoch milliseconds and prices/volumes as strings. Errors come
as ``{"code": -1121, "msg": "Invalid symbol."}``; 429 means back off (``Retry-After``), 418 means
the IP is banned (fatal). The default bucket stays far below the 6000-weight/minute limit.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
import pandas as pd

from rrr_live.domain.bars import interval_ns
from rrr_pipelines.lib.sources.base import Instrument, SourceError, empty_bars
from rrr_pipelines.lib.sources.ratelimit import Clock, RetryPolicy, Sleeper, TokenBucket
from rrr_pipelines.lib.sources.rest import (
    RestClient,
    RestSourceError,
    candles_frame,
    quote_currency,
)

BINANCE_URL = "https://api.binance.com"
MAX_KLINES = 1000
INTERVALS = ("1s", "1m", "5m", "15m", "1h", "1d")
_FIELDS = ("open", "high", "low", "close", "volume")


class BinanceSource:
    """Binance spot klines for a list of symbols (``BTCUSDT`` …)."""

    name = "binance"
    synthetic = False
    keeps_updating = True

    def __init__(
        self,
        symbols: list[str] | None = None,
        interval: str = "1m",
        base_url: str = BINANCE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        rate_per_s: float = 10.0,
        burst: float = 10.0,
        retry: RetryPolicy | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleeper = time.sleep,
        wall_clock: Clock = time.time,
        seed: int | None = None,
    ) -> None:
        """Configure symbols, bar interval and the HTTP client.

        Raises:
            SourceError: for an interval this source does not map to Binance.
        """
        if interval not in INTERVALS:
            raise SourceError(f"binance source serves intervals {INTERVALS}, not {interval!r}")
        self.symbols = list(symbols or ["BTCUSDT"])
        self.interval = interval
        self.step_ms = interval_ns(interval) // 1_000_000
        limiter = TokenBucket(rate_per_s, burst, clock=clock, sleep=sleep)
        self.client = RestClient(
            base_url, limiter=limiter, retry=retry, transport=transport, sleep=sleep,
            wall_clock=wall_clock, seed=seed,
        )  # fmt: skip

    def instruments(self) -> list[Instrument]:
        """Return the configured symbols (crypto, 24/7)."""
        return [
            Instrument(s, self.name, "crypto", "24/7", quote_currency(s), "Binance spot")
            for s in self.symbols
        ]

    def fetch(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Return klines with ``start <= ts < end`` for every symbol, 1000 per request.

        Raises:
            RestSourceError: on a failed request or a malformed response.
        """
        frames = [self.fetch_symbol(s, start, end) for s in self.symbols]
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_bars()
        return pd.concat(frames, ignore_index=True).sort_values(["symbol", "ts"], ignore_index=True)

    def fetch_symbol(self, symbol: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Return one symbol's klines in ``[start, end)``, following ``openTime`` pages."""
        step = self.step_ms
        cursor = -(-int(start.timestamp() * 1000) // step) * step
        stop = int(end.timestamp() * 1000)  # exclusive
        cols: dict[str, list[float]] = {k: [] for k in ("ts_s", *_FIELDS)}
        while cursor < stop:
            params: dict[str, str | int] = {
                "symbol": symbol,
                "interval": self.interval,
                "startTime": cursor,
                "endTime": stop - 1,
                "limit": MAX_KLINES,
            }
            body = self.client.get_json("/api/v3/klines", params)
            last_open = self._parse(symbol, body, cursor, stop, cols)
            if last_open is None or len(body) < MAX_KLINES:
                break
            cursor = last_open + step
        if not cols["ts_s"]:
            return empty_bars()
        return candles_frame(self.name, symbol, self.interval, cols)

    def _parse(
        self, symbol: str, body: Any, lo: int, hi: int, cols: dict[str, list[float]]
    ) -> int | None:
        """Append rows in ``[lo, hi)`` ms; return the last open time seen (None if empty)."""
        if not isinstance(body, list):
            raise RestSourceError(
                f"binance {symbol} klines: expected a JSON array, got {type(body).__name__}: "
                f"{str(body)[:200]}"
            )
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
                cols["ts_s"].append(open_ms / 1000.0)
                for key, value in zip(_FIELDS, values, strict=True):
                    cols[key].append(value)
        return last
