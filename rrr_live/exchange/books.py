"""The replay exchange's own books: what it has sent, applied lazily.

Each depth event the market emits is appended to its symbol's pending list (cheap in the send
loop); a REST depth request or a Coinbase subscription applies the pending events first. The
book keeps the venue's price and size strings so what it serves is byte-for-byte the venue's.
"""

from __future__ import annotations

from decimal import Decimal

from rrr_live.exchange.tape import PriceSize, TapeEvent

_APPLY_EVERY = 4096  # bounds the pending list when nobody asks for a book


class ServerBook:
    """One symbol's aggregated book at the last update id the market emitted.

    Args:
        symbol: the venue symbol.
    """

    __slots__ = ("_pending", "asks", "bids", "last_seq", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: dict[Decimal, PriceSize] = {}
        self.asks: dict[Decimal, PriceSize] = {}
        self.last_seq = 0
        self._pending: list[TapeEvent] = []

    def push(self, event: TapeEvent) -> None:
        """Queue one emitted book event (applied on the next read)."""
        self._pending.append(event)
        if len(self._pending) >= _APPLY_EVERY:
            self.flush()

    def flush(self) -> None:
        """Apply every pending event in order."""
        pending, self._pending = self._pending, []
        for event in pending:
            self._apply(event)

    def _apply(self, event: TapeEvent) -> None:
        if event.snapshot:
            self.bids.clear()
            self.asks.clear()
            self.last_seq = event.last_seq
        elif event.last_seq and event.last_seq <= self.last_seq:
            return  # Binance: already contained in the seeding snapshot
        _set(self.bids, event.bids or ())
        _set(self.asks, event.asks or ())
        if event.last_seq:
            self.last_seq = event.last_seq

    def top(self, depth: int | None = None) -> tuple[list[PriceSize], list[PriceSize]]:
        """Return ``(bids best-first, asks best-first)``, at most ``depth`` levels a side."""
        self.flush()
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:depth]]
        asks = [self.asks[p] for p in sorted(self.asks)[:depth]]
        return bids, asks


def _set(side: dict[Decimal, PriceSize], levels: tuple[PriceSize, ...]) -> None:
    for price, size in levels:
        key = Decimal(price)
        if Decimal(size) == 0:
            side.pop(key, None)
        else:
            side[key] = (price, size)


class Books:
    """The server's books by symbol (created on first use)."""

    def __init__(self) -> None:
        self._books: dict[str, ServerBook] = {}

    def get(self, symbol: str) -> ServerBook:
        """The book of ``symbol`` (empty when nothing was emitted for it yet)."""
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = ServerBook(symbol)
        return book

    def known(self, symbol: str) -> bool:
        """Whether any book event was emitted for ``symbol``."""
        return symbol in self._books
