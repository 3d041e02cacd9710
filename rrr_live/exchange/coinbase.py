"""The Coinbase Exchange protocol of the replay exchange: ws-feed channels and public REST.

A client sends ``{"type": "subscribe", "product_ids": [...], "channels": ["level2_batch",
{"name": "ticker", "product_ids": [...]}, ...]}``; the server answers ``subscriptions`` and, for a
level-2 channel, a ``snapshot`` of its own book, then the ``l2update`` s after it. ``level2``,
``level2_batch`` and ``level2_50`` carry the same message shapes (the recorded ``l2update`` s are
sent as they were recorded). ``heartbeat`` sends one message a product per second of event time.
Unknown products or channels get Coinbase's ``error`` message. REST: ``/products``,
``/products/<id>``, ``/products/<id>/book?level=2``, ``/time``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rrr_live.exchange.tape import LEVEL2, MATCHES, TICKER, InstrumentSpec, TapeEvent
from rrr_live.exchange.venue import Market, Reply, RestHandler, SubKey, dumps, iso_time

HEARTBEAT = "heartbeat"
_CHANNELS = {
    "level2": LEVEL2,
    "level2_batch": LEVEL2,
    "level2_50": LEVEL2,
    "ticker": TICKER,
    "matches": MATCHES,
    "heartbeat": HEARTBEAT,
}


class CoinbaseProtocol:
    """Coinbase Exchange market data and public REST (one instance per connection).

    Args:
        market: the server's market state.
    """

    name = "coinbase"

    def __init__(self, market: Market) -> None:
        self.market = market
        self._subs: dict[str, list[str]] = {}  # channel name as the client spelled it -> products
        self._second = -1
        self._heartbeat_seq = 0
        self.last_trade: dict[str, int] = {}  # product -> last trade_id emitted

    def accept_path(self, path: str) -> dict[SubKey, bytes] | None:
        """Every path is the feed (the real one is served at ``/``); nothing is implied."""
        return {}

    def on_message(self, msg: dict[str, Any]) -> Reply:
        """Answer subscribe / unsubscribe like the ws-feed."""
        kind = msg.get("type")
        if kind not in ("subscribe", "unsubscribe"):
            return Reply([_error("Failed to subscribe", f"{kind} is not a valid type")])
        wanted, problem = self._parse_channels(msg)
        if problem:
            return Reply([_error("Failed to subscribe", problem)])
        if kind == "unsubscribe":
            for name, products in wanted.items():
                kept = [p for p in self._subs.get(name, []) if p not in products]
                self._subs[name] = kept
            keys = [(p, _CHANNELS[n]) for n, ps in wanted.items() for p in ps]
            return Reply([self._subscriptions()], unsubscribe=keys)
        return self._subscribe(wanted)

    def _parse_channels(self, msg: dict[str, Any]) -> tuple[dict[str, list[str]], str]:
        default = msg.get("product_ids", [])
        wanted: dict[str, list[str]] = {}
        for item in msg.get("channels", []):
            name = item.get("name") if isinstance(item, dict) else item
            products = item.get("product_ids", default) if isinstance(item, dict) else default
            if name not in _CHANNELS:
                return {}, f"{name} is not a valid channel"
            if not isinstance(products, list) or not products:
                return {}, "product_ids must be a non-empty list"
            unknown = [p for p in products if p not in self._products()]
            if unknown:
                return {}, f"{unknown[0]} is not a valid product"
            wanted[str(name)] = [str(p) for p in products]
        if not wanted:
            return {}, "no channels given"
        return wanted, ""

    def _products(self) -> set[str]:
        return set(self.market.tape.symbols) | {s.symbol for s in self.market.instruments}

    def _subscribe(self, wanted: dict[str, list[str]]) -> Reply:
        reply = Reply()
        snapshots: list[bytes] = []
        for name, products in wanted.items():
            have = self._subs.setdefault(name, [])
            have += [p for p in products if p not in have]
            for product in products:
                reply.subscribe[(product, _CHANNELS[name])] = b""
                if _CHANNELS[name] == LEVEL2 and self.market.books.known(product):
                    snapshots.append(self._snapshot(product))
        reply.frames = [self._subscriptions(), *snapshots]
        return reply

    def _snapshot(self, product: str) -> bytes:
        bids, asks = self.market.books.get(product).top()
        return dumps({"type": "snapshot", "product_id": product, "bids": bids, "asks": asks})

    def _subscriptions(self) -> bytes:
        channels = [{"name": n, "product_ids": ps} for n, ps in self._subs.items() if ps]
        return dumps({"type": "subscriptions", "channels": channels})

    def routes(self) -> dict[str, RestHandler]:
        """REST endpoints: products (all, one, its level-2 book) and time."""
        return {"/products": self._all_products, "/products/": self._one_product,
                "/time": self._time}  # fmt: skip

    def _product_list(self) -> list[dict[str, Any]]:
        recorded = self.market.tape.rest.get("products")
        if recorded is not None:
            products: list[dict[str, Any]] = json.loads(recorded)
            return products
        return [_product_info(spec) for spec in self.market.instruments]

    def _all_products(self, query: dict[str, str], tail: str) -> tuple[int, bytes]:
        recorded = self.market.tape.rest.get("products")
        return 200, recorded if recorded is not None else dumps(self._product_list())

    def _one_product(self, query: dict[str, str], tail: str) -> tuple[int, bytes]:
        product, _, rest = tail.partition("/")
        found = [p for p in self._product_list() if p["id"] == product]
        if not found or rest not in ("", "book"):
            return 404, dumps({"message": "NotFound"})
        if rest == "":
            return 200, dumps(found[0])
        bids, asks = self.market.books.get(product).top()
        book = {"bids": [[p, s, 1] for p, s in bids], "asks": [[p, s, 1] for p, s in asks],
                "sequence": 0}  # fmt: skip
        return 200, dumps(book)

    def _time(self, query: dict[str, str], tail: str) -> tuple[int, bytes]:
        now = self.market.now_ns
        return 200, dumps({"iso": iso_time(now), "epoch": now / 1e9})

    def observe(self, event: TapeEvent) -> None:
        """Remember the last ``trade_id`` of a product (for its heartbeats)."""
        if event.channel == MATCHES and event.last_seq:
            self.last_trade[event.symbol] = event.last_seq

    def timed(self, ts_ns: int, subscribed: Callable[[SubKey], bool]) -> list[TapeEvent]:
        """One ``heartbeat`` per subscribed product each new second of event time."""
        second = ts_ns // 1_000_000_000
        if second == self._second:
            return []
        self._second = second
        out: list[TapeEvent] = []
        for product in self.market.tape.symbols or [s.symbol for s in self.market.instruments]:
            if subscribed((product, HEARTBEAT)):
                self._heartbeat_seq += 1
                last = self.last_trade.get(product, 0)
                body = {"type": "heartbeat", "last_trade_id": last, "product_id": product,
                        "sequence": self._heartbeat_seq, "time": iso_time(ts_ns)}  # fmt: skip
                out.append(TapeEvent(ts_ns, product, HEARTBEAT, dumps(body)))
        return out

    def control(self, kind: str, body: dict[str, Any]) -> bytes:
        """A control message with ``"type": kind`` (clients ignore unknown types)."""
        return dumps({"type": kind, **body})


def _error(message: str, reason: str) -> bytes:
    return dumps({"type": "error", "message": message, "reason": reason})


def _product_info(spec: InstrumentSpec) -> dict[str, Any]:
    return {
        "id": spec.symbol,
        "base_currency": spec.base,
        "quote_currency": spec.quote,
        "base_min_size": str(spec.lot),
        "base_max_size": "1000000",
        "quote_increment": str(spec.tick),
        "base_increment": str(spec.lot),
        "display_name": f"{spec.base}/{spec.quote}",
        "min_market_funds": str(spec.min_notional),
        "max_market_funds": "1000000",
        "status": "online",
        "trading_disabled": False,
    }
