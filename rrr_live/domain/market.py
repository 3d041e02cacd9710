"""Normalized market-data events: what a feed adapter emits and the journal stores.

Wire schemas (Coinbase, Binance) live in ``rrr_live.feeds``; they are converted into these
venue-neutral events with prices in integer ticks and sizes in integer lots of the
instrument. A :class:`Received` envelope adds where and when the event arrived: the feed
session and its receive sequence are the journal's key, so a replayed or reconnected feed
never overwrites what was stored before.

The event types are frozen ``msgspec.Struct`` classes, not dataclasses: the feed builds two per
received event, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field)
cost several times more. ``gc=False``: they hold only ints, strings, enums, tuples and other
events, so they can never be part of a reference cycle, and the garbage collector need not
traverse the thousands of them a journal queue holds.
"""

from __future__ import annotations

from enum import Enum

import msgspec

from rrr_live.domain.events import TradeTick

Level = tuple[int, int]


class BookUpdateKind(Enum):
    """A full replacement of the book or a set of absolute level changes."""

    SNAPSHOT = "snapshot"
    DIFF = "diff"


class BookUpdate(msgspec.Struct, frozen=True, gc=False):
    """A book snapshot or diff in ``(price_ticks, size_lots)`` levels; size 0 deletes (diff).

    ``first_seq``/``last_seq`` are the venue's update ids (Binance ``U``/``u``, or the
    snapshot's ``lastUpdateId`` in both); 0 when the venue has none (Coinbase level 2).
    ``ts_ns`` is the venue's event time (0 when the venue gives none).
    """

    kind: BookUpdateKind
    symbol: str
    ts_ns: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    first_seq: int = 0
    last_seq: int = 0


class TopOfBook(msgspec.Struct, frozen=True, gc=False):
    """Best bid and ask as the venue reports them (Binance ``bookTicker``, Coinbase ``ticker``)."""

    symbol: str
    ts_ns: int
    bid_ticks: int
    bid_lots: int
    ask_ticks: int
    ask_lots: int
    venue_seq: int = 0


MarketEvent = BookUpdate | TradeTick | TopOfBook


class Received(msgspec.Struct, frozen=True, gc=False):
    """One normalized event as it arrived: the journal's unit.

    Args:
        session: the feed session id (new on every connect), e.g. ``"binance-<uuid4hex>"``.
        seq: receive sequence within the session (1, 2, …, gap-free; several events parsed
            from one frame get consecutive numbers).
        recv_ns: local receive time (injected clock).
        venue: ``"coinbase"`` or ``"binance"``.
        event: the normalized event.
    """

    session: str
    seq: int
    recv_ns: int
    venue: str
    event: MarketEvent
