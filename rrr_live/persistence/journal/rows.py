"""Rows of the journal tables (migration ``0004_journal``) to and from :class:`Received`.

One mapping, used by the writer, the spill buffer and every reader (tests, later replays).
Rows are plain tuples in table column order: what ``copy_records_to_table`` takes and what a
``SELECT *`` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rrr_live.domain.events import TradeTick
from rrr_live.domain.market import BookUpdate, BookUpdateKind, Received, TopOfBook
from rrr_live.domain.orders import Side

BOOK, TRADE, TOP = "journal_book_updates", "journal_trades", "journal_tops"
TABLES = (BOOK, TRADE, TOP)
COLUMNS: dict[str, tuple[str, ...]] = {
    BOOK: (
        "session", "seq", "recv_ns", "venue", "symbol", "kind", "ts_ns", "first_seq",
        "last_seq", "bid_px", "bid_sz", "ask_px", "ask_sz",
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
    head = (rec.session, rec.seq, rec.recv_ns, rec.venue, ev.symbol)
    if isinstance(ev, BookUpdate):
        return BOOK, (
            *head, ev.kind.value, ev.ts_ns, ev.first_seq, ev.last_seq,
            [p for p, _ in ev.bids], [s for _, s in ev.bids],
            [p for p, _ in ev.asks], [s for _, s in ev.asks],
        )  # fmt: skip
    if isinstance(ev, TradeTick):
        return TRADE, (
            *head, ev.ts_ns, ev.price_ticks, ev.size_lots, int(ev.aggressor), ev.trade_id,
        )  # fmt: skip
    if isinstance(ev, TopOfBook):
        return TOP, (
            *head, ev.ts_ns, ev.bid_ticks, ev.bid_lots, ev.ask_ticks, ev.ask_lots, ev.venue_seq,
        )  # fmt: skip
    raise TypeError(f"the journal cannot store {type(ev).__name__}")


def from_row(table: str, row: Sequence[Any]) -> Received:
    """Rebuild the :class:`Received` that ``to_row`` turned into ``row`` of ``table``.

    Raises:
        ValueError: for an unknown table.
    """
    session, seq, recv_ns, venue, symbol = row[:5]
    rest = row[5:]
    event: BookUpdate | TradeTick | TopOfBook
    if table == BOOK:
        kind, ts_ns, first_seq, last_seq, bid_px, bid_sz, ask_px, ask_sz = rest
        event = BookUpdate(
            BookUpdateKind(kind), symbol, ts_ns,
            tuple(zip(bid_px, bid_sz, strict=True)), tuple(zip(ask_px, ask_sz, strict=True)),
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
