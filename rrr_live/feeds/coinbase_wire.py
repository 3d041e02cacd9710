"""Coinbase Exchange ws-feed wire schemas and their conversion to normalized events.

Channels: ``level2``/``level2_batch`` (``snapshot``, ``l2update``), ``ticker``, ``matches``
(``match``, ``last_match``), ``heartbeat``; plus ``subscriptions`` and ``error`` replies.
Prices are exact integer ticks and sizes lots of the product (from ``/products``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind, Level, MarketEvent, TopOfBook
from rrr_live.domain.orders import Side
from rrr_live.feeds.errors import Rejected
from rrr_live.feeds.parsed import Parsed, ScaledSymbols, decode_or_reject
from rrr_live.feeds.timeparse import iso_to_ns
from rrr_live.feeds.units import InstrumentScales


class Snapshot(msgspec.Struct, tag_field="type", tag="snapshot"):
    """The full level-2 book of a product, sent after subscribing."""

    product_id: str
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    time: str = ""


class L2Update(msgspec.Struct, tag_field="type", tag="l2update"):
    """Absolute sizes of changed levels, ``[side, price, size]``."""

    product_id: str
    changes: list[tuple[str, str, str]]
    time: str


class Ticker(msgspec.Struct, tag_field="type", tag="ticker"):
    """Best bid/ask after a trade (sizes only on newer feeds)."""

    product_id: str
    sequence: int = 0
    best_bid: str = ""
    best_ask: str = ""
    best_bid_size: str = "0"
    best_ask_size: str = "0"
    time: str = ""


class Match(msgspec.Struct, tag_field="type", tag="match"):
    """A trade; ``side`` is the maker's side."""

    product_id: str
    trade_id: int
    side: str
    size: str
    price: str
    time: str
    sequence: int = 0


class LastMatch(Match, tag="last_match"):
    """The product's most recent trade, sent once after subscribing to ``matches``."""


class Heartbeat(msgspec.Struct, tag_field="type", tag="heartbeat"):
    """Once a second per product on the ``heartbeat`` channel."""

    product_id: str = ""
    sequence: int = 0
    last_trade_id: int = 0
    time: str = ""


class Subscriptions(msgspec.Struct, tag_field="type", tag="subscriptions"):
    """The server's answer to a (un)subscribe: the channels now active."""

    channels: list[Any] = []


class Error(msgspec.Struct, tag_field="type", tag="error"):
    """The server refused a request."""

    message: str = ""
    reason: str = ""


class _Typed(msgspec.Struct):
    type: str


Message = Snapshot | L2Update | Ticker | Match | LastMatch | Heartbeat | Subscriptions | Error
_DECODER: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)
_TYPE_DECODER = msgspec.json.Decoder(_Typed)
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}


def _levels(sc: InstrumentScales, raw: list[tuple[str, str]]) -> tuple[Level, ...]:
    return tuple((sc.price(p), sc.size(s)) for p, s in raw)


def _side(text: str) -> Side:
    try:
        return _SIDES[text]
    except KeyError:
        raise Rejected("schema", f"side {text!r}") from None


class CoinbaseParser:
    """Turns Coinbase ws-feed frames into normalized events.

    Args:
        instruments: the products by id (from ``/products``); others are rejected.
    """

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.symbols = ScaledSymbols(instruments)

    def parse(self, frame: str | bytes) -> Parsed:
        """Parse one text frame.

        Raises:
            Rejected: with the reason label when the frame is malformed or unknown.
        """
        try:
            msg = decode_or_reject(_DECODER, frame)
        except Rejected as e:
            if e.reason == "schema" and "$.type" in e.detail:
                kind = decode_or_reject(_TYPE_DECODER, frame)
                return Parsed(control="ignored", detail=kind.type)
            raise
        return self._convert(msg)

    def _convert(self, msg: Message) -> Parsed:
        if isinstance(msg, L2Update):
            return Parsed([self._l2update(msg)])
        if isinstance(msg, Match):
            return Parsed(
                [self._match(msg)], detail="last_match" if isinstance(msg, LastMatch) else ""
            )
        if isinstance(msg, Snapshot):
            sc = self.symbols[msg.product_id]
            ts = iso_to_ns(msg.time) if msg.time else 0
            bids, asks = _levels(sc, msg.bids), _levels(sc, msg.asks)
            return Parsed([BookUpdate(BookUpdateKind.SNAPSHOT, msg.product_id, ts, bids, asks)])
        if isinstance(msg, Ticker):
            return Parsed(self._ticker(msg))
        if isinstance(msg, Heartbeat):
            return Parsed(control="heartbeat", detail=msg.product_id)
        if isinstance(msg, Subscriptions):
            return Parsed(control="subscriptions")
        return Parsed(control="error", detail=f"{msg.message}: {msg.reason}".strip(": "))

    def _l2update(self, msg: L2Update) -> BookUpdate:
        sc = self.symbols[msg.product_id]
        to_ticks, to_lots = sc.price, sc.size
        bids: list[Level] = []
        asks: list[Level] = []
        for side, price, size in msg.changes:
            if side == "buy":
                bids.append((to_ticks(price), to_lots(size)))
            elif side == "sell":
                asks.append((to_ticks(price), to_lots(size)))
            else:
                _side(side)  # raises Rejected
        return BookUpdate(
            BookUpdateKind.DIFF, msg.product_id, iso_to_ns(msg.time), tuple(bids), tuple(asks)
        )

    def _match(self, msg: Match) -> TradeTick:
        sc = self.symbols[msg.product_id]
        lots = sc.size(msg.size)
        if lots <= 0 or msg.trade_id <= 0:
            raise Rejected("schema", f"trade {msg.trade_id} of size {msg.size}")
        aggressor = Side.SELL if _side(msg.side) is Side.BUY else Side.BUY
        return TradeTick(
            iso_to_ns(msg.time), msg.product_id, sc.price(msg.price), lots, aggressor, msg.trade_id
        )

    def _ticker(self, msg: Ticker) -> list[MarketEvent]:
        sc = self.symbols[msg.product_id]
        if not msg.best_bid or not msg.best_ask:
            return []
        ts = iso_to_ns(msg.time) if msg.time else 0
        return [
            TopOfBook(
                msg.product_id, ts, sc.price(msg.best_bid), sc.size(msg.best_bid_size or "0"),
                sc.price(msg.best_ask), sc.size(msg.best_ask_size or "0"), msg.sequence,
            )
        ]  # fmt: skip
