"""Binance spot combined-stream wire schemas and their conversion to normalized events.

Frames arrive as ``{"stream": "<symbol>@<kind>", "data": {...}}``. Used kinds: ``depth``
(``depthUpdate`` diffs), ``trade``, ``aggTrade``, ``bookTicker``; any other stream (e.g.
``kline_1m``) is reported as ignored, not as an error. Replies to ``SUBSCRIBE`` are acks.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind, Level, TopOfBook
from rrr_live.domain.orders import Side
from rrr_live.feeds.errors import Rejected
from rrr_live.feeds.parsed import Parsed, ScaledSymbols, decode_or_reject
from rrr_live.feeds.timeparse import ms_to_ns
from rrr_live.feeds.units import InstrumentScales


class Envelope(msgspec.Struct):
    """A combined-stream frame, or a reply to a request (``id`` with ``result``/``error``)."""

    stream: str = ""
    data: msgspec.Raw = msgspec.Raw(b"null")
    id: int | str | None = None
    result: Any = None
    error: Any = None
    code: int | None = None
    msg: str = ""


class DepthUpdate(msgspec.Struct):
    """A depth diff: absolute sizes, update ids ``U`` (first) to ``u`` (last)."""

    E: int
    s: str
    U: int
    u: int
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]


class Trade(msgspec.Struct):
    """A raw trade; ``m`` is whether the buyer was the maker."""

    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class AggTrade(msgspec.Struct):
    """An aggregated trade (id ``a``)."""

    s: str
    a: int
    p: str
    q: str
    T: int
    m: bool


class BookTicker(msgspec.Struct):
    """Best bid/ask with their sizes, update id ``u``."""

    u: int
    s: str
    b: str
    B: str
    a: str
    A: str


class DepthSnapshot(msgspec.Struct):
    """REST ``GET /api/v3/depth``."""

    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


_ENVELOPE = msgspec.json.Decoder(Envelope)
_DEPTH = msgspec.json.Decoder(DepthUpdate)
_TRADE = msgspec.json.Decoder(Trade)
_AGG = msgspec.json.Decoder(AggTrade)
_TICKER = msgspec.json.Decoder(BookTicker)
_SNAPSHOT = msgspec.json.Decoder(DepthSnapshot)


def _levels(sc: InstrumentScales, raw: list[tuple[str, str]]) -> tuple[Level, ...]:
    return tuple((sc.price(p), sc.size(s)) for p, s in raw)


def stream_kind(stream: str) -> str:
    """Return the kind of a stream name: ``"btcusdt@depth@100ms"`` -> ``"depth"``."""
    _, _, rest = stream.partition("@")
    return rest.partition("@")[0]


class BinanceParser:
    """Turns Binance combined-stream frames and REST depth snapshots into normalized events.

    Args:
        instruments: the symbols by name (from ``exchangeInfo``); others are rejected.
    """

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self.symbols = ScaledSymbols(instruments)

    def parse(self, frame: str | bytes) -> Parsed:
        """Parse one text frame.

        Raises:
            Rejected: with the reason label when the frame is malformed or unknown.
        """
        env: Envelope = decode_or_reject(_ENVELOPE, frame)
        if not env.stream:
            return self._reply(env)
        kind = stream_kind(env.stream)
        if kind == "depth":
            return Parsed([self._depth(decode_or_reject(_DEPTH, env.data))])
        if kind == "aggTrade":
            m: AggTrade = decode_or_reject(_AGG, env.data)
            return Parsed([self._trade(m.s, m.a, m.p, m.q, m.T, m.m)])
        if kind == "trade":
            t: Trade = decode_or_reject(_TRADE, env.data)
            return Parsed([self._trade(t.s, t.t, t.p, t.q, t.T, t.m)])
        if kind == "bookTicker":
            return Parsed([self._ticker(decode_or_reject(_TICKER, env.data))])
        return Parsed(control="ignored", detail=kind or env.stream)

    @staticmethod
    def _reply(env: Envelope) -> Parsed:
        if env.error is not None or env.code is not None:
            return Parsed(control="error", detail=str(env.error or f"{env.code} {env.msg}"))
        if env.id is not None:
            return Parsed(control="ack", detail=str(env.id))
        raise Rejected("schema", "neither a stream frame nor a reply")

    def _depth(self, m: DepthUpdate) -> BookUpdate:
        sc = self.symbols[m.s]
        if m.u < m.U or m.U <= 0:
            raise Rejected("schema", f"{m.s} update ids U={m.U} u={m.u}")
        return BookUpdate(
            BookUpdateKind.DIFF, m.s, ms_to_ns(m.E), _levels(sc, m.b), _levels(sc, m.a), m.U, m.u
        )

    def _trade(
        self, symbol: str, tid: int, p: str, q: str, t_ms: int, buyer_maker: bool
    ) -> TradeTick:
        sc = self.symbols[symbol]
        lots = sc.size(q)
        if lots <= 0:
            raise Rejected("schema", f"{symbol} trade {tid} of size {q}")
        aggressor = Side.SELL if buyer_maker else Side.BUY
        return TradeTick(ms_to_ns(t_ms), symbol, sc.price(p), lots, aggressor, tid)

    def _ticker(self, m: BookTicker) -> TopOfBook:
        sc = self.symbols[m.s]
        return TopOfBook(m.s, 0, sc.price(m.b), sc.size(m.B), sc.price(m.a), sc.size(m.A), m.u)

    def snapshot(self, symbol: str, body: bytes | str) -> BookUpdate:
        """Convert a REST depth snapshot of ``symbol`` (``first_seq = last_seq = lastUpdateId``).

        Raises:
            Rejected: when the body is malformed.
        """
        sc = self.symbols[symbol]
        snap: DepthSnapshot = decode_or_reject(_SNAPSHOT, body)
        bids, asks = _levels(sc, snap.bids), _levels(sc, snap.asks)
        last = snap.lastUpdateId
        return BookUpdate(BookUpdateKind.SNAPSHOT, symbol, 0, bids, asks, last, last)
