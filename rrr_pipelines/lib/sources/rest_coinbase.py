"""Coinbase Exchange candle history over REST.

``GET /products/{product_id}/candles?granularity=&start=&end=`` returns at most 300 candles,
newest first, each ``[time, low, high, open, close, volume]`` (time = bucket start, epoch
seconds); granularity is one of 60, 300, 900, 3600, 21600, 86400 seconds. Buckets without trades
are absent. Public limit is about 10 requests/s per IP; the default bucket stays below it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from rrr_pipelines.lib.sources.base import SourceError
from rrr_pipelines.lib.sources.rest import RestCandleSource, RestSourceError, append_candle

COINBASE_URL = "https://api.exchange.coinbase.com"
MAX_CANDLES = 300
GRANULARITY_S = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CoinbaseSource(RestCandleSource):
    """Coinbase Exchange candles for a list of products (``BTC-USD`` …), 300 per request."""

    name = "coinbase"
    venue = "Coinbase Exchange"
    series = "candles"
    default_url = COINBASE_URL
    default_symbols = ("BTC-USD",)
    default_rate_per_s = 5.0
    default_burst = 5.0

    def _configure_interval(self, interval: str) -> None:
        if interval not in GRANULARITY_S:
            raise SourceError(
                f"coinbase serves intervals {sorted(GRANULARITY_S)}, not {interval!r}"
            )
        self.granularity = GRANULARITY_S[interval]

    def _collect(
        self, symbol: str, start: datetime, end: datetime, cols: dict[str, list[float]]
    ) -> None:
        """Walk fixed windows of 300 buckets from ``start`` to ``end``."""
        g = self.granularity
        page_start = math.ceil(start.timestamp() / g) * g
        hi = math.ceil(end.timestamp() / g) * g  # first bucket NOT wanted
        while page_start < hi:
            page_end = min(page_start + MAX_CANDLES * g, hi)
            params: dict[str, str | int] = {
                "granularity": g,
                "start": _iso(page_start),
                "end": _iso(page_end - 1),  # 300 bucket starts whether ``end`` is inclusive or not
            }
            body = self._rows(symbol, self.client.get_json(f"/products/{symbol}/candles", params))
            self._parse(symbol, body, page_start, page_end, cols)
            page_start = page_end

    def _parse(
        self, symbol: str, body: list[Any], lo: int, hi: int, cols: dict[str, list[float]]
    ) -> None:
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
                append_candle(cols, t, (open_, high, low, close, volume))
