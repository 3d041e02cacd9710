"""Level-2 order book in integer ticks and lots, fed by snapshots and diffs.

The book is venue-neutral: a feed adapter (Coinbase ``level2``, Binance depth diffs, replay)
converts wire messages into ``(price_ticks, size_lots)`` levels and calls :meth:`apply_snapshot`
and :meth:`apply_diff`. A diff sets the *absolute* size of a level; size 0 removes it (the
semantics of both Coinbase ``l2update`` and Binance ``depthUpdate``). Sequence numbers are
optional; a diff whose sequence is not newer than the last applied one is ignored as stale.
Gap detection (which needs the venue's own rules) stays in the adapter, which calls
:meth:`mark_untradable` and re-snapshots. Updates are atomic: a message is validated whole
before any level changes, and a rejected one leaves the levels as they were and the book
untradable with the reason, never half-applied and reporting tradable.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import Any, TypeVar

from rrr_live.domain.errors import BookError
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.orders import Side

Level = tuple[int, int]
_T = TypeVar("_T")


class BookState(Enum):
    """Whether the book can be traded against."""

    TRADABLE = "tradable"
    UNTRADABLE = "untradable"


class OrderBook:
    """An L2 book for one instrument.

    Args:
        instrument: the instrument whose ticks and lots the levels are in.
    """

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self._sizes: dict[Side, dict[int, int]] = {Side.BUY: {}, Side.SELL: {}}
        self._prices: dict[Side, list[int]] = {Side.BUY: [], Side.SELL: []}
        # the same containers by name: an enum-keyed lookup costs a Python-level hash
        self._bid_sizes, self._ask_sizes = self._sizes[Side.BUY], self._sizes[Side.SELL]
        self._bid_prices, self._ask_prices = self._prices[Side.BUY], self._prices[Side.SELL]
        self.ts_ns = 0
        self.last_sequence: int | None = None
        self._has_snapshot = False
        self._halt_reason = "no snapshot yet"
        self.version = 0

    # --- updates -----------------------------------------------------------------------------
    def apply_snapshot(
        self,
        bids: Iterable[Level],
        asks: Iterable[Level],
        ts_ns: int,
        sequence: int | None = None,
    ) -> None:
        """Replace the whole book with ``bids`` and ``asks`` (``(price_ticks, size_lots)``).

        Every level is validated before anything changes; size 0 levels are skipped.

        Raises:
            BookError: if a level is malformed; the levels stay as they were and the book is
                marked untradable (the venue's book moved on without us).
        """
        try:
            checked = [
                (side, _check_level(self.instrument.symbol, side, level))
                for side, levels in ((Side.BUY, bids), (Side.SELL, asks))
                for level in _checked_iter(self, levels)
            ]
        except BookError as e:
            raise self._reject(f"snapshot rejected ({e})") from e
        for side in (Side.BUY, Side.SELL):
            self._sizes[side].clear()
            self._prices[side].clear()
        self._commit_diff(
            [lv for side, lv in checked if side is Side.BUY],
            [lv for side, lv in checked if side is Side.SELL],
            ts_ns,
            None,
        )
        self.last_sequence = sequence
        self._has_snapshot = True
        self._halt_reason = ""

    def apply_diff(
        self,
        changes: Iterable[tuple[Side, int, int]],
        ts_ns: int,
        sequence: int | None = None,
    ) -> bool:
        """Set the absolute size of each ``(side, price_ticks, size_lots)``; size 0 deletes.

        The whole diff is validated first: it is applied entirely or not at all.

        Returns:
            ``False`` when the diff was ignored as stale (sequence not newer), else ``True``.

        Raises:
            BookError: if no snapshot was applied yet, or a change is malformed (then the
                levels stay as they were and the book is marked untradable: a lost diff means
                it no longer matches the venue's).
        """
        if self._stale_diff(sequence):
            return False
        bids: list[Level] = []
        asks: list[Level] = []
        for side, price, size in [_check_change(self, c) for c in _checked_iter(self, changes)]:
            (bids if side is Side.BUY else asks).append((price, size))
        self._commit_diff(bids, asks, ts_ns, sequence)
        return True

    def apply_sides(
        self,
        bids: Iterable[Level],
        asks: Iterable[Level],
        ts_ns: int,
        sequence: int | None = None,
    ) -> bool:
        """:meth:`apply_diff` with the changed levels given per side (as feeds produce them).

        Returns:
            ``False`` when the diff was ignored as stale (sequence not newer), else ``True``.

        Raises:
            BookError: as :meth:`apply_diff` (nothing applied, the book marked untradable).
        """
        if self._stale_diff(sequence):
            return False
        bid_list, ask_list = _checked_iter(self, bids), _checked_iter(self, asks)
        if not (_well_formed(bid_list) and _well_formed(ask_list)):
            try:  # name the bad level
                for side, levels in ((Side.BUY, bid_list), (Side.SELL, ask_list)):
                    for level in levels:
                        _check_level(self.instrument.symbol, side, level)
            except BookError as e:
                raise self._reject(f"diff rejected ({e})") from e
        self._commit_diff(bid_list, ask_list, ts_ns, sequence)
        return True

    def _stale_diff(self, sequence: int | None) -> bool:
        if not self._has_snapshot:
            raise BookError(f"{self.instrument.symbol}: diff before the first snapshot")
        last = self.last_sequence
        return sequence is not None and last is not None and sequence <= last

    def _commit_diff(
        self, bids: list[Level], asks: list[Level], ts_ns: int, sequence: int | None
    ) -> None:
        """Set validated levels (absolute sizes, 0 deletes), the time and the sequence."""
        for levels, sizes, prices in (
            (bids, self._bid_sizes, self._bid_prices),
            (asks, self._ask_sizes, self._ask_prices),
        ):
            for price, size in levels:
                if size == 0:
                    if sizes.pop(price, None) is not None:
                        del prices[bisect_left(prices, price)]
                    continue
                if price not in sizes:
                    insort(prices, price)
                sizes[price] = size
        self.ts_ns = ts_ns
        if sequence is not None:
            self.last_sequence = sequence
        self.version += 1

    def mark_untradable(self, reason: str) -> None:
        """Flag the book as unusable (feed gap, stale data) until the next snapshot."""
        self._halt_reason = reason or "marked untradable"

    def _reject(self, message: str) -> BookError:
        self._halt_reason = f"rejected update: {message}"
        return BookError(f"{self.instrument.symbol}: {message}")

    # --- queries -----------------------------------------------------------------------------
    def best(self, side: Side) -> Level | None:
        """Return the best ``(price, size)`` on ``side`` (BUY = bids) or ``None`` if empty."""
        prices = self._prices[side]
        if not prices:
            return None
        price = prices[-1] if side is Side.BUY else prices[0]
        return price, self._sizes[side][price]

    def best_bid(self) -> Level | None:
        """Return the best bid level."""
        return self.best(Side.BUY)

    def best_ask(self) -> Level | None:
        """Return the best ask level."""
        return self.best(Side.SELL)

    def mid_ticks(self) -> float | None:
        """Return the mid price in (possibly half) ticks, or ``None`` if a side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2.0

    def mid_price(self) -> float | None:
        """Return the mid price in quote currency."""
        mid = self.mid_ticks()
        return None if mid is None else mid * self.instrument.tick

    def spread_ticks(self) -> int | None:
        """Return best ask minus best bid in ticks."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return ask[0] - bid[0]

    def size_at(self, side: Side, price: int) -> int:
        """Return the size resting at ``price`` on ``side`` (0 if no level)."""
        return self._sizes[side].get(price, 0)

    def levels(self, side: Side) -> Iterator[Level]:
        """Yield levels of ``side`` from best to worst."""
        prices = self._prices[side]
        ordered = reversed(prices) if side is Side.BUY else iter(prices)
        sizes = self._sizes[side]
        for price in ordered:
            yield price, sizes[price]

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """Return the best ``n`` bid and ask levels, best first."""
        if n < 0:
            raise BookError(f"top(n) needs n >= 0, got {n}")
        bids = self._prices[Side.BUY][::-1][:n]
        asks = self._prices[Side.SELL][:n]
        return (
            [(p, self._sizes[Side.BUY][p]) for p in bids],
            [(p, self._sizes[Side.SELL][p]) for p in asks],
        )

    def depth(self, side: Side) -> int:
        """Return the number of price levels on ``side``."""
        return len(self._prices[side])

    def is_crossed(self) -> bool:
        """Return whether best bid >= best ask (a locked or crossed book)."""
        bids, asks = self._bid_prices, self._ask_prices
        return bool(bids and asks) and bids[-1] >= asks[0]

    @property
    def state(self) -> BookState:
        """TRADABLE when snapshotted, not flagged, both sides present and not crossed."""
        return BookState.TRADABLE if not self.untradable_reason() else BookState.UNTRADABLE

    def untradable_reason(self) -> str:
        """Return why the book is untradable, or ``""`` when it is tradable."""
        if self._halt_reason:
            return self._halt_reason
        if not self._prices[Side.BUY] or not self._prices[Side.SELL]:
            return "one side empty"
        if self.is_crossed():
            return "crossed book"
        return ""


def _checked_iter(book: OrderBook, items: Iterable[_T]) -> list[_T]:
    try:
        return list(items)
    except TypeError as e:
        raise book._reject(f"levels are not iterable ({e})") from e


def _check_level(symbol: str, side: Side, level: object) -> Level:
    """Return ``level`` as ``(price, size)`` or raise (the caller marks the book)."""
    if not isinstance(level, tuple | list) or len(level) != 2:
        raise BookError(f"{symbol}: bad level {level!r} on {side.name}")
    price, size = level
    if type(price) is not int or type(size) is not int or price <= 0 or size < 0:
        raise BookError(f"{symbol}: bad level price={price!r} size={size!r} on {side.name}")
    return price, size


def _well_formed(levels: list[Any]) -> bool:
    """Whether every level is an ``(int price > 0, int size >= 0)`` tuple (the common case)."""
    for level in levels:
        if type(level) is not tuple or len(level) != 2:
            return False
        price, size = level
        if type(price) is not int or type(size) is not int or price <= 0 or size < 0:
            return False
    return True


def _check_change(book: OrderBook, change: object) -> tuple[Side, int, int]:
    if type(change) is tuple and len(change) == 3:  # the common, well-formed case first
        side, price, size = change
        if type(side) is Side and type(price) is int and type(size) is int and price > 0 <= size:
            return change
    if not isinstance(change, tuple | list) or len(change) != 3:
        raise book._reject(f"bad change {change!r}")
    side, price, size = change
    try:
        side = Side(side)
        level = _check_level(book.instrument.symbol, side, (price, size))
    except (ValueError, BookError) as e:
        raise book._reject(f"bad level {change!r}") from e
    return side, level[0], level[1]
