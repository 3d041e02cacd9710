"""The replay exchange's tape: market events in event-time order, already encoded for the wire.

A source (a recorded session, bars expanded into ticks, the synthetic universe) produces
:class:`TapeEvent` s in one venue protocol. Each carries its wire payload (encoded once, before the
send loop) plus the book change it makes, so the server can keep its own books for REST depth
and Coinbase snapshots without decoding what it sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

ProtocolName = Literal["coinbase", "binance"]
PriceSize = tuple[str, str]

# Tape channels. Binance: the stream suffix after "<symbol>@" (depth, trade, aggTrade, bookTicker,
# kline_1m, ...). Coinbase: the channel a message belongs to.
DEPTH = "depth"
LEVEL2 = "level2"
MATCHES = "matches"
TICKER = "ticker"
# Events that only set the server's book (an initial or recorded REST snapshot); never sent.
BOOK_ONLY = ""


@dataclass(slots=True)
class TapeEvent:
    """One market event on the tape.

    Args:
        ts_ns: event time (nanoseconds since the epoch).
        symbol: the venue's symbol (``NKNUSDT``, ``BAND-GBP``).
        channel: the tape channel (see module constants); ``BOOK_ONLY`` is never sent.
        payload: the wire bytes: Binance the stream's ``data`` object, Coinbase the message.
        bids: book levels this event sets (price, size strings; size 0 deletes), or None.
        asks: same for asks.
        snapshot: the levels replace the book instead of changing it.
        first_seq: Binance ``U`` (0 where the venue has none).
        last_seq: Binance ``u`` / ``lastUpdateId``.
        closes_bar: the close time of the bar this event completes, or 0.
    """

    ts_ns: int
    symbol: str
    channel: str
    payload: bytes
    bids: tuple[PriceSize, ...] | None = None
    asks: tuple[PriceSize, ...] | None = None
    snapshot: bool = False
    first_seq: int = 0
    last_seq: int = 0
    closes_bar: int = 0


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """What the REST metadata endpoints say about one generated instrument.

    Args:
        symbol: the venue's symbol (``SYN0001USDT`` on Binance, ``SYN0001-USD`` on Coinbase).
        base: base asset.
        quote: quote asset.
        tick: price increment.
        lot: size increment.
        min_notional: smallest order value in the quote asset.
    """

    symbol: str
    base: str
    quote: str
    tick: Decimal
    lot: Decimal
    min_notional: Decimal = Decimal("1")


@dataclass
class Tape:
    """Everything a source gives the server.

    Args:
        protocol: the wire protocol the payloads are in.
        events: the events in event-time order (a list, or a lazy iterable for big tapes).
        instruments: generated instrument metadata (empty for recordings).
        rest: recorded REST bodies by route name (``exchangeInfo``, ``products``).
    """

    protocol: ProtocolName
    events: Iterable[TapeEvent]
    instruments: list[InstrumentSpec] = field(default_factory=list)
    rest: dict[str, bytes] = field(default_factory=dict)
    symbols: list[str] = field(default_factory=list)
