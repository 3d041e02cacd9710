"""Coinbase Exchange candle history over REST.

``GET /products/{product_id}/candles?granularity=&start=&end=`` returns at most 300 candles,
newest first, each ``[time, low, high, open, close, volume]`` (time = bucket start, epoch
seconds); granularity is one of 60, 300, 900, 3600, 21600, 86400 seconds. Buckets without trades
are absent. Public limit is about 10 requests/s per IP; the default bucket stays below it.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd

from rrr_pipelines.lib.sources.base import Instrument, SourceError, empty_bars
from rrr_pipelines.lib.sources.ratelimit import Clock, RetryPolicy, Sleeper, TokenBucket
from rrr_pipelines.lib.sources.rest import (
    RestClient,
    RestSourceError,
    candles_frame,
    quote_currency,
)

COINBASE_URL = "https://api.exchange.coinbase.com"
MAX_CANDLES = 300
GRANULARITY_S = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CoinbaseSource:
    """Coinbase Exchange candles for a list of products (``BTC-USD`` …)."""

    name = "coinbase"
    synthetic = False
    keeps_updating = True

    def __init__(
        self,
        symbols: list[str] | None = None,
        interval: str = "1m",
        base_url: str = COINBASE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        rate_per_s: float = 5.0,
        burst: float = 5.0,
        retry: RetryPolicy | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleeper = time.sleep,
        wall_clock: Clock = time.time,
        seed: int | None = None,
    ) -> None:
        """Configure products, bar interval and the HTTP client.

        Raises:
            SourceError: for an interval Coinbase does not serve.
        """
        if interval not in GRANULARITY_S:
            raise SourceError(
                f"coinbase serves intervals {sorted(GRANULARITY_S)}, not {interval!r}"
            )
        self.symbols = list(symbols or ["BTC-USD"])
        self.interval = interval
        self.granularity = GRANULARITY_S[interval]
        limiter = TokenBucket(rate_per_s, burst, clock=clock, sleep=sleep)
        self.client = RestClient(
            base_url, limiter=limiter, retry=retry, transport=transport, sleep=sleep,
            wall_clock=wall_clock, seed=seed,
        )  # fmt: skip

    def instruments(self) -> list[Instrument]:
        """Return the configured products (crypto, 24/7)."""
        return [
            Instrument(s, self.name, "crypto", "24/7", quote_currency(s), "Coinbase Exchange")
            for s in self.symbols
        ]

    def fetch(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Return candles with ``start <= ts < end`` for every product, paging 300 at a time.

        Raises:
            RestSourceError: on a failed request or a malformed response.
        """
        frames = [self.fetch_symbol(s, start, end) for s in self.symbols]
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_bars()
        return pd.concat(frames, ignore_index=True).sort_values(["symbol", "ts"], ignore_index=True)

    def fetch_symbol(self, symbol: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Return one product's candles in ``[start, end)``."""
        g = self.granularity
        lo = math.ceil(start.timestamp() / g) * g
        hi = math.ceil(end.timestamp() / g) * g  # first bucket NOT wanted
        cols: dict[str, list[float]] = {k: [] for k in ("ts_s", "open", "high", "low", "close",
                                                       "volume")}  # fmt: skip
        page_start = lo
        while page_start < hi:
            page_end = min(page_start + MAX_CANDLES * g, hi)
            params: dict[str, str | int] = {
                "granularity": g,
                "start": _iso(page_start),
                "end": _iso(page_end - 1),  # 300 bucket starts whether ``end`` is inclusive or not
            }
            body = self.client.get_json(f"/products/{symbol}/candles", params)
            self._parse(symbol, body, page_start, page_end, cols)
            page_start = page_end
        if not cols["ts_s"]:
            return empty_bars()
        return candles_frame(self.name, symbol, self.interval, cols)

    def _parse(
        self, symbol: str, body: Any, lo: int, hi: int, cols: dict[str, list[float]]
    ) -> None:
        if not isinstance(body, list):
            raise RestSourceError(
                f"coinbase {symbol} candles: expected a JSON array, got {type(body).__name__}: "
                f"{str(body)[:200]}"
            )
        for i, row in enumerate(body):
            if (
                not isinstance(row, list)
                or len(row) < 6
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in row[:6])
            ):
                raise RestSourceError(
                    f"coinbase {symbol} candles: row {i} is not [time, low, high, open, close, "
                    f"volume] numbers: {row!r}"
                )
            t, low, high, open_, close, volume = row[:6]
            if lo <= t < hi:
                for key, value in zip(
                    ("ts_s", "low", "high", "open", "close", "volume"),
                    (t, low, high, open_, close, volume),
                    strict=True,
                ):
                    cols[key].append(float(value))
