"""The book keeper: one ``OrderBook`` per symbol, fed by normalized events.

It applies snapshots and diffs, tells the adapter when a book needs a resync (a crossed book
or a rejected update), and marks symbols untradable with a reason when the feed dropped,
desynchronised or went stale (by receive time on the injected clock).
"""

from __future__ import annotations

from decimal import Decimal

from rrr_live.book.l2 import OrderBook
from rrr_live.domain.errors import BookError
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind, MarketEvent

BookLevels = dict[str, list[list[str]]]


class BookKeeper:
    """Books for a set of instruments.

    Args:
        instruments: the symbols to keep books for (others are ignored).
        max_age_ns: a book not updated for this long (receive time) is stale; ``None`` never.
    """

    def __init__(self, instruments: dict[str, Instrument], max_age_ns: int | None = None) -> None:
        self.books = {s: OrderBook(i) for s, i in instruments.items()}
        self.max_age_ns = max_age_ns
        self.last_update_ns: dict[str, int] = {}

    def apply(self, event: MarketEvent, recv_ns: int) -> str:
        """Apply one event; return why its symbol needs a resync, or ``""``."""
        if not isinstance(event, BookUpdate):
            return ""
        book = self.books.get(event.symbol)
        if book is None:
            return ""
        try:
            if event.kind is BookUpdateKind.SNAPSHOT:
                book.apply_snapshot(event.bids, event.asks, event.ts_ns, event.last_seq or None)
            else:
                book.apply_sides(event.bids, event.asks, event.ts_ns, event.last_seq or None)
        except BookError:
            return "rejected_update"
        self.last_update_ns[event.symbol] = recv_ns
        if book.is_crossed():
            book.mark_untradable("crossed book")
            return "crossed"
        return ""

    def mark_untradable(self, symbol: str, reason: str) -> None:
        """Flag one symbol's book until its next snapshot."""
        book = self.books.get(symbol)
        if book is not None:
            book.mark_untradable(reason)

    def mark_all_untradable(self, reason: str) -> None:
        """Flag every book (the connection dropped or went silent)."""
        for book in self.books.values():
            book.mark_untradable(reason)

    def check_stale(self, now_ns: int) -> list[str]:
        """Mark books not updated within ``max_age_ns`` untradable; return their symbols."""
        if self.max_age_ns is None:
            return []
        stale = [
            s
            for s, book in self.books.items()
            if not book.untradable_reason()
            and now_ns - self.last_update_ns.get(s, now_ns) > self.max_age_ns
        ]
        for s in stale:
            self.books[s].mark_untradable("stale")
        return stale

    def top_json(self, depth: int = 5) -> dict[str, BookLevels]:
        """Return each book's top ``depth`` levels as exact decimal strings."""
        out: dict[str, BookLevels] = {}
        for symbol, book in self.books.items():
            inst = book.instrument
            bids, asks = book.top(depth)
            out[symbol] = {
                "bids": [
                    [_plain(inst.ticks_to_decimal(p)), _plain(inst.lot_size * s)] for p, s in bids
                ],
                "asks": [
                    [_plain(inst.ticks_to_decimal(p)), _plain(inst.lot_size * s)] for p, s in asks
                ],
            }
        return out


def _plain(value: Decimal) -> str:
    """Return ``value`` without exponent or trailing zeros (``"0.3513"``, ``"672"``)."""
    text = f"{value.normalize():f}"
    return text
