"""Coinbase Exchange ws-feed adapter.

Channels: ``level2_batch`` (or ``level2`` with credentials), ``ticker``, ``matches`` and
``heartbeat``. Level 2 has no sequence numbers, so the adapter resyncs on what it can
observe: a disconnect or silence (the reconnect loop), a crossed or rejected book (the
keeper), and a gap in a product's ``trade_id``. A resync unsubscribes and resubscribes the
product's level-2 channel; the fresh snapshot that follows replaces the book, and diffs in
between are dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection

from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind, MarketEvent
from rrr_live.feeds.coinbase_wire import CoinbaseParser
from rrr_live.feeds.connection import FeedSettings, ReconnectingFeed
from rrr_live.feeds.errors import FatalFeedError
from rrr_live.feeds.keeper import BookKeeper
from rrr_live.feeds.parsed import Parsed
from rrr_live.metrics import Metrics

DEFAULT_CHANNELS = ("ticker", "matches", "heartbeat")


@dataclass(frozen=True)
class CoinbaseCredentials:
    """API key for the authenticated ``level2`` channel (read from env/files, never logged)."""

    key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def sign(self, timestamp: str) -> dict[str, str]:
        """Return the auth fields of a subscribe message signed at ``timestamp`` (seconds)."""
        message = f"{timestamp}GET/users/self/verify".encode()
        digest = hmac.new(base64.b64decode(self.secret), message, hashlib.sha256).digest()
        return {
            "key": self.key,
            "passphrase": self.passphrase,
            "timestamp": timestamp,
            "signature": base64.b64encode(digest).decode(),
        }


class TradeIds:
    """Per-product ``trade_id`` tracking: ``"dup"``, ``"gap"`` or ``""`` (in order)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def reset(self) -> None:
        """Forget every product (a new connection starts with ``last_match``)."""
        self._last.clear()

    def check(self, tick: TradeTick, baseline: bool) -> str:
        """Record ``tick`` and say whether it repeats, skips or follows the previous trade."""
        last = self._last.get(tick.symbol)
        if last is not None and tick.trade_id <= last and not baseline:
            return "dup"
        self._last[tick.symbol] = tick.trade_id if last is None else max(last, tick.trade_id)
        if baseline or last is None or tick.trade_id == last + 1:
            return ""
        return "gap"


class CoinbaseFeed(ReconnectingFeed):
    """Coinbase Exchange market data as a reconnecting iterator of ``Received`` events.

    Args:
        url: the ws-feed URL (``wss://ws-feed.exchange.coinbase.com`` or a replay exchange).
        instruments: the products to subscribe to (from ``/products``).
        settings: the reconnect loop's knobs.
        metrics: where counts go.
        keeper: books to maintain (and to resync when they break).
        credentials: when given, the full ``level2`` channel instead of ``level2_batch``.
        channels: the non-book channels.
    """

    venue = "coinbase"

    def __init__(
        self,
        url: str,
        instruments: dict[str, Instrument],
        settings: FeedSettings | None = None,
        metrics: Metrics | None = None,
        keeper: BookKeeper | None = None,
        credentials: CoinbaseCredentials | None = None,
        channels: tuple[str, ...] = DEFAULT_CHANNELS,
    ) -> None:
        super().__init__(url, instruments, settings, metrics, keeper)
        self.parser = CoinbaseParser(instruments)
        self.credentials = credentials
        self.book_channel = "level2" if credentials else "level2_batch"
        self.channels = (self.book_channel, *channels)
        self._trade_ids = TradeIds()
        self._awaiting_snapshot: set[str] = set()

    def parse(self, frame: str) -> Parsed:
        """Parse one Coinbase frame."""
        return self.parser.parse(frame)

    def _request(self, kind: str, products: list[str], channels: list[str]) -> str:
        msg: dict[str, object] = {"type": kind, "product_ids": products, "channels": channels}
        if self.credentials is not None and kind == "subscribe":
            now_s = self.settings.clock.now_ns() // 1_000_000_000
            msg.update(self.credentials.sign(str(now_s)))
        return json.dumps(msg)

    async def _on_open(self, ws: ClientConnection) -> list[MarketEvent]:
        self._trade_ids.reset()
        products = sorted(self.instruments)
        self._awaiting_snapshot = set(products)
        await ws.send(self._request("subscribe", products, list(self.channels)))
        return []

    async def _on_parsed(self, ws: ClientConnection, parsed: Parsed) -> list[MarketEvent]:
        if parsed.control == "error":
            raise FatalFeedError(f"coinbase refused the request: {parsed.detail}")
        out: list[MarketEvent] = []
        for event in parsed.events:
            if isinstance(event, BookUpdate):
                if event.kind is BookUpdateKind.SNAPSHOT:
                    self._awaiting_snapshot.discard(event.symbol)
                elif event.symbol in self._awaiting_snapshot:
                    self.ignored["awaiting_snapshot"] += 1
                    continue
            elif isinstance(event, TradeTick):
                verdict = self._trade_ids.check(event, parsed.detail == "last_match")
                if verdict == "dup":
                    self.ignored["duplicate_trade"] += 1
                    continue
                if verdict == "gap":
                    out.append(event)
                    out.extend(await self.resync(ws, event.symbol, "trade_id_gap"))
                    continue
            out.append(event)
        return out

    async def resync(self, ws: ClientConnection, symbol: str, cause: str) -> list[MarketEvent]:
        """Resubscribe ``symbol``'s book channel; its fresh snapshot follows on the socket."""
        if symbol not in self.instruments or symbol in self._awaiting_snapshot:
            return []
        self.count_resync(symbol, cause)
        self._awaiting_snapshot.add(symbol)
        await ws.send(self._request("unsubscribe", [symbol], [self.book_channel]))
        await ws.send(self._request("subscribe", [symbol], [self.book_channel]))
        return []
