"""Binance spot combined-stream adapter with the documented local-book sync rules.

On every connection: ``SUBSCRIBE`` to ``<symbol>@depth@100ms``, the trade stream and
``bookTicker`` for each symbol (replayed after a reconnect), then a REST depth snapshot per
symbol through :class:`DepthSync` (buffer, snapshot, drop ``u <= lastUpdateId``, restart on a
gap). Streams we do not use are counted as ignored. While a snapshot is fetched the socket
keeps buffering frames (TCP), so no diff is lost between the snapshot and the stream.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection

from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind, MarketEvent
from rrr_live.feeds.binance_sync import DepthSync, SyncStep
from rrr_live.feeds.binance_wire import BinanceParser
from rrr_live.feeds.connection import FeedSettings, ReconnectingFeed
from rrr_live.feeds.errors import FatalFeedError, FeedError, Rejected
from rrr_live.feeds.instruments import HTTP_TIMEOUT, fetch_json
from rrr_live.feeds.keeper import BookKeeper
from rrr_live.feeds.parsed import Parsed
from rrr_live.metrics import Metrics

DEFAULT_STREAMS = ("depth@100ms", "aggTrade", "bookTicker")
SUBSCRIBE_CHUNK = 200  # streams per SUBSCRIBE request
SNAPSHOT_LIMIT = 1000
SNAPSHOT_ATTEMPTS = 3
SNAPSHOT_CONCURRENCY = 8


def rest_url_for(ws_url: str) -> str:
    """Return the REST base next to a websocket URL (same host and port, http(s))."""
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


class BinanceFeed(ReconnectingFeed):
    """Binance spot market data as a reconnecting iterator of ``Received`` events.

    Args:
        url: the websocket base (``wss://stream.binance.com:9443`` or a replay exchange);
            ``/stream`` is appended.
        instruments: the symbols to subscribe to (from ``exchangeInfo``).
        settings: the reconnect loop's knobs.
        metrics: where counts go.
        keeper: books to maintain.
        rest_url: the REST base for depth snapshots (default: next to ``url``).
        streams: the per-symbol streams.
    """

    venue = "binance"

    def __init__(
        self,
        url: str,
        instruments: dict[str, Instrument],
        settings: FeedSettings | None = None,
        metrics: Metrics | None = None,
        keeper: BookKeeper | None = None,
        rest_url: str | None = None,
        streams: tuple[str, ...] = DEFAULT_STREAMS,
    ) -> None:
        base = url.rstrip("/")
        super().__init__(
            base if base.endswith("/stream") else f"{base}/stream",
            instruments,
            settings,
            metrics,
            keeper,
        )
        self.parser = BinanceParser(instruments)
        self.rest_url = rest_url or rest_url_for(url)
        self.streams = streams
        self.sync = DepthSync()
        self._http: httpx.AsyncClient | None = None
        self._request_id = 0

    def parse(self, frame: str) -> Parsed:
        """Parse one Binance frame."""
        return self.parser.parse(frame)

    async def aclose(self) -> None:
        """Close the REST client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _on_open(self, ws: ClientConnection) -> list[MarketEvent]:
        self.sync.reset()
        names = [f"{s.lower()}@{kind}" for s in sorted(self.instruments) for kind in self.streams]
        for i in range(0, len(names), SUBSCRIBE_CHUNK):
            self._request_id += 1
            params = names[i : i + SUBSCRIBE_CHUNK]
            await ws.send(
                json.dumps({"method": "SUBSCRIBE", "params": params, "id": self._request_id})
            )
        if not any(k.startswith("depth") for k in self.streams):
            return []
        gate = asyncio.Semaphore(SNAPSHOT_CONCURRENCY)

        async def one(symbol: str) -> BookUpdate:
            async with gate:
                return await self._fetch_snapshot(symbol)

        snaps = await asyncio.gather(*(one(s) for s in sorted(self.instruments)))
        out: list[MarketEvent] = []
        for snap in snaps:
            out.extend(self.sync.on_snapshot(snap).events)
        return out

    async def _on_parsed(self, ws: ClientConnection, parsed: Parsed) -> list[MarketEvent]:
        if parsed.control == "error":
            raise FatalFeedError(f"binance refused the request: {parsed.detail}")
        out: list[MarketEvent] = []
        for event in parsed.events:
            if isinstance(event, BookUpdate) and event.kind is BookUpdateKind.DIFF:
                out.extend(await self._settle(event.symbol, self.sync.on_diff(event)))
            else:
                out.append(event)
        return out

    async def _settle(self, symbol: str, step: SyncStep) -> list[MarketEvent]:
        """Emit what a sync step produced; fetch snapshots while the symbol asks for one."""
        out: list[MarketEvent] = list(step.events)
        if step.dropped:
            self.ignored["covered_update"] += step.dropped
        for _ in range(SNAPSHOT_ATTEMPTS):
            if not step.need_snapshot:
                break
            if step.cause:
                self.count_resync(symbol, step.cause)
            step = self.sync.on_snapshot(await self._fetch_snapshot(symbol))
            out.extend(step.events)
            if step.dropped:
                self.ignored["covered_update"] += step.dropped
        return out

    async def resync(self, ws: ClientConnection, symbol: str, cause: str) -> list[MarketEvent]:
        """Re-snapshot ``symbol`` (its book broke: crossed or rejected)."""
        if symbol not in self.instruments:
            return []
        self.count_resync(symbol, cause)
        self.sync.desync(symbol)
        step = self.sync.on_snapshot(await self._fetch_snapshot(symbol))
        return await self._settle(
            symbol, SyncStep(step.events, step.need_snapshot, "", step.dropped)
        )

    async def _fetch_snapshot(self, symbol: str) -> BookUpdate:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.rest_url, timeout=HTTP_TIMEOUT)
        params = {"symbol": symbol, "limit": str(SNAPSHOT_LIMIT)}
        body = await fetch_json(self._http, "/api/v3/depth", params)
        try:
            return self.parser.snapshot(symbol, body)
        except Rejected as e:
            raise FeedError(f"binance depth snapshot of {symbol} unreadable: {e}") from e
