"""Binance spot combined-stream adapter with the documented local-book sync rules.

On every connection: ``SUBSCRIBE`` to ``<symbol>@depth@100ms``, the trade stream and
``bookTicker`` for each symbol (replayed after a reconnect), then a REST depth snapshot per
symbol through :class:`DepthSync` (buffer, snapshot, drop ``u <= lastUpdateId``, restart on a
gap). Streams we do not use are counted as ignored. Snapshots are fetched in the background
(a few at a time) while the stream keeps being read and buffered, as the venue documents, so a
thousand symbols never stall the socket.
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
from rrr_live.feeds.connection import FeedSettings, ReconnectingFeed, cancel_task
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
        self._gate = asyncio.Semaphore(SNAPSHOT_CONCURRENCY)
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._attempts: dict[str, int] = {}
        self._snapshots: asyncio.Queue[tuple[str, BookUpdate | FeedError]] = asyncio.Queue()

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
        if any(k.startswith("depth") for k in self.streams):
            for symbol in sorted(self.instruments):
                self._want_snapshot(symbol)
        return []

    def _want_snapshot(self, symbol: str) -> None:
        """Fetch ``symbol``'s REST snapshot in the background (once at a time per symbol)."""
        if symbol in self._fetching:
            return
        attempts = self._attempts.get(symbol, 0) + 1
        if attempts > SNAPSHOT_ATTEMPTS:
            raise FeedError(
                f"binance {symbol}: no usable depth snapshot after {attempts - 1} tries"
            )
        self._attempts[symbol] = attempts
        task = asyncio.create_task(self._fetch_into_queue(symbol), name=f"binance-depth-{symbol}")
        self._fetching[symbol] = task

    async def _fetch_into_queue(self, symbol: str) -> None:
        async with self._gate:
            try:
                result: BookUpdate | FeedError = await self._fetch_snapshot(symbol)
            except FeedError as e:
                result = e
        self._snapshots.put_nowait((symbol, result))

    async def _next_events(self, ws: ClientConnection) -> list[MarketEvent]:
        """Frames as usual; while snapshots are outstanding, whichever comes first."""
        if not self._fetching:
            return await super()._next_events(ws)
        if not self._snapshots.empty():
            return self._on_snapshot(*self._snapshots.get_nowait())
        recv = asyncio.ensure_future(ws.recv())
        got = asyncio.ensure_future(self._snapshots.get())
        try:
            done, _ = await asyncio.wait({recv, got}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (recv, got):
                if not waiting.done():  # recv() and Queue.get() are cancel-safe
                    await cancel_task(waiting)
        out = self._on_snapshot(*got.result()) if got in done else []
        if recv in done:
            out.extend(await self._on_frame(ws, recv.result()))
        return out

    def _on_snapshot(self, symbol: str, result: BookUpdate | FeedError) -> list[MarketEvent]:
        self._fetching.pop(symbol, None)
        if isinstance(result, FeedError):
            raise result
        step = self.sync.on_snapshot(result)
        if not step.need_snapshot:
            self._attempts.pop(symbol, None)
        return self._settle(symbol, step)

    async def _on_close(self) -> None:
        for task in self._fetching.values():
            task.cancel()
        await asyncio.gather(*self._fetching.values(), return_exceptions=True)
        self._fetching.clear()
        self._attempts.clear()
        self._snapshots = asyncio.Queue()

    async def _on_parsed(self, ws: ClientConnection, parsed: Parsed) -> list[MarketEvent]:
        if parsed.control == "error":
            raise FatalFeedError(f"binance refused the request: {parsed.detail}")
        out: list[MarketEvent] = []
        for event in parsed.events:
            if isinstance(event, BookUpdate) and event.kind is BookUpdateKind.DIFF:
                out.extend(self._settle(event.symbol, self.sync.on_diff(event)))
            else:
                out.append(event)
        return out

    def _settle(self, symbol: str, step: SyncStep) -> list[MarketEvent]:
        """Emit what a sync step produced; ask for a snapshot when the symbol needs one."""
        if step.dropped:
            self.ignored["covered_update"] += step.dropped
        if step.cause:
            self.count_resync(symbol, step.cause)
        if step.need_snapshot:
            self._want_snapshot(symbol)
        return list(step.events)

    async def resync(self, ws: ClientConnection, symbol: str, cause: str) -> list[MarketEvent]:
        """Re-snapshot ``symbol`` (its book broke: crossed or rejected)."""
        if symbol not in self.instruments:
            return []
        self.count_resync(symbol, cause)
        self.sync.desync(symbol)
        self._want_snapshot(symbol)
        return []

    async def _fetch_snapshot(self, symbol: str) -> BookUpdate:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.rest_url, timeout=HTTP_TIMEOUT)
        params = {"symbol": symbol, "limit": str(SNAPSHOT_LIMIT)}
        body = await fetch_json(self._http, "/api/v3/depth", params)
        try:
            return self.parser.snapshot(symbol, body)
        except Rejected as e:
            raise FeedError(f"binance depth snapshot of {symbol} unreadable: {e}") from e
