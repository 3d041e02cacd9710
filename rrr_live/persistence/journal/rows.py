"""Rows of the journal tables (migrations ``0004_journal``, ``0010``) to and from :class:`Received`.

One mapping, used by the writer, the spill buffer and every reader (tests, later replays).
Rows are plain tuples in table column order: what ``copy_records_to_table`` takes and what a
``SELECT *`` returns. A book side is stored packed (:func:`pack_levels`): one bytea column is
a memcpy for the binary COPY, where integer arrays cost the writer more than anything else.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from rrr_live.domain.events import TradeTick
from rrr_live.domain.market import BookUpdate, BookUpdateKind, Level, Received, TopOfBook
from rrr_live.domain.orders import Side

BOOK, TRADE, TOP = "journal_book_updates", "journal_trades", "journal_tops"
TABLES = (BOOK, TRADE, TOP)
COLUMNS: dict[str, tuple[str, ...]] = {
    BOOK: (
        "session", "seq", "recv_ns", "venue", "symbol", "kind", "ts_ns", "first_seq",
        "last_seq", "bids", "asks",
    ),
    TRADE: (
        "session", "seq", "recv_ns", "venue", "symbol", "ts_ns", "price_ticks", "size_lots",
        "aggressor", "trade_id",
    ),
    TOP: (
        "session", "seq", "recv_ns", "venue", "symbol", "ts_ns", "bid_ticks", "bid_lots",
        "ask_ticks", "ask_lots", "venue_seq",
    ),
}  # fmt: skip
RECV_NS_COLUMN = 2  # index of recv_ns in every row (the partition key)

Row = tuple[Any, ...]

_LEVEL = struct.Struct(">qq")  # (price ticks, size lots), big-endian: int8send of each
_pack_level = _LEVEL.pack
_KIND = {k: k.value for k in BookUpdateKind}


def pack_levels(levels: Sequence[Level]) -> bytes:
    """Pack one book side as 16 bytes a level, in order (``b""`` for none)."""
    return b"".join([_pack_level(p, s) for p, s in levels])


def unpack_levels(data: bytes) -> tuple[Level, ...]:
    """The levels :func:`pack_levels` packed.

    Raises:
        ValueError: when ``data`` is not a whole number of levels.
    """
    if len(data) % _LEVEL.size:
        raise ValueError(f"packed book side of {len(data)} bytes is not 16 bytes a level")
    return tuple(_LEVEL.iter_unpack(data))


def table_of(rec: Received) -> str:
    """Return the journal table that stores ``rec``'s event."""
    ev = rec.event
    if isinstance(ev, BookUpdate):
        return BOOK
    if isinstance(ev, TradeTick):
        return TRADE
    if isinstance(ev, TopOfBook):
        return TOP
    raise TypeError(f"the journal cannot store {type(ev).__name__}")


def to_row(rec: Received) -> tuple[str, Row]:
    """Return ``(table, row)`` for one received event.

    Raises:
        TypeError: for an event type the journal has no table for.
    """
    ev = rec.event
    if isinstance(ev, BookUpdate):  # nine events in ten: no shared head tuple to unpack
        return BOOK, (
            rec.session, rec.seq, rec.recv_ns, rec.venue, ev.symbol, _KIND[ev.kind], ev.ts_ns,
            ev.first_seq, ev.last_seq, pack_levels(ev.bids), pack_levels(ev.asks),
        )  # fmt: skip
    if isinstance(ev, TradeTick):
        return TRADE, (
            rec.session, rec.seq, rec.recv_ns, rec.venue, ev.symbol, ev.ts_ns, ev.price_ticks,
            ev.size_lots, int(ev.aggressor), ev.trade_id,
        )  # fmt: skip
    if isinstance(ev, TopOfBook):
        return TOP, (
            rec.session, rec.seq, rec.recv_ns, rec.venue, ev.symbol, ev.ts_ns, ev.bid_ticks,
            ev.bid_lots, ev.ask_ticks, ev.ask_lots, ev.venue_seq,
        )  # fmt: skip
    raise TypeError(f"the journal cannot store {type(ev).__name__}")


def upgrade_legacy_row(table: str, row: Sequence[Any]) -> Row:
    """Return ``row`` in today's column order.

    A book row of ``0004_journal`` (four integer arrays: bid prices, bid sizes, ask prices,
    ask sizes; spilled before the sides were packed) gets its sides packed.
    """
    if table == BOOK and len(row) == len(COLUMNS[BOOK]) + 2:
        bid_px, bid_sz, ask_px, ask_sz = row[9:]
        return (
            *row[:9],
            pack_levels(list(zip(bid_px, bid_sz, strict=True))),
            pack_levels(list(zip(ask_px, ask_sz, strict=True))),
        )
    return tuple(row)


def from_row(table: str, row: Sequence[Any]) -> Received:
    """Rebuild the :class:`Received` that ``to_row`` turned into ``row`` of ``table``.

    Raises:
        ValueError: for an unknown table.
    """
    session, seq, recv_ns, venue, symbol = row[:5]
    rest = row[5:]
    event: BookUpdate | TradeTick | TopOfBook
    if table == BOOK:
        kind, ts_ns, first_seq, last_seq, bids, asks = rest
        event = BookUpdate(
            BookUpdateKind(kind), symbol, ts_ns, unpack_levels(bids), unpack_levels(asks),
            first_seq, last_seq,
        )  # fmt: skip
    elif table == TRADE:
        ts_ns, price, size, aggressor, trade_id = rest
        event = TradeTick(ts_ns, symbol, price, size, Side(aggressor), trade_id)
    elif table == TOP:
        event = TopOfBook(symbol, *rest)
    else:
        raise ValueError(f"unknown journal table {table!r}")
    return Received(session, seq, recv_ns, venue, event)
