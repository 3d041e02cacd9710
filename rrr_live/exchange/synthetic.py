"""The synthetic universe for scale: many symbols, seeded, book-consistent, pre-encoded.

Each symbol's book is ``levels`` bids just below its mid and ``levels`` asks just above it
(integer ticks). A frame is one of: a size change of one level, a one-tick move of the mid (the
diff deletes the level that falls off and adds the new one on each side, so the book never
crosses), or a trade at the best bid or ask. Frames are spread evenly in event time at
``rate`` frames per second; the last frame before each ``bar_ns`` boundary carries
``closes_bar`` (lockstep works on the synthetic universe too). The whole tape is encoded before
the server sends a byte (:func:`synthetic_tape` returns a list), so the send loop only copies.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

from rrr_live.exchange.encode import TickEncoder
from rrr_live.exchange.tape import InstrumentSpec, ProtocolName, Tape, TapeEvent

START_NS = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z: a fixed, deterministic origin


def synthetic_symbols(protocol: ProtocolName, count: int) -> list[InstrumentSpec]:
    """``SYN0000USDT`` … (Binance) or ``SYN0000-USD`` … (Coinbase), tick 0.01, lot 0.001."""
    width = max(4, len(str(count - 1)))
    specs = []
    for i in range(count):
        base = f"SYN{i:0{width}d}"
        symbol = f"{base}USDT" if protocol == "binance" else f"{base}-USD"
        quote = "USDT" if protocol == "binance" else "USD"
        specs.append(InstrumentSpec(symbol, base, quote, Decimal("0.01"), Decimal("0.001")))
    return specs


class _Book:
    __slots__ = ("asks", "bids", "mid")

    def __init__(self, mid: int, sizes: list[int], levels: int) -> None:
        self.mid = mid
        self.bids = {mid - k: sizes[k - 1] for k in range(1, levels + 1)}
        self.asks = {mid + k: sizes[levels + k - 1] for k in range(1, levels + 1)}


def synthetic_events(
    encoder: TickEncoder,
    specs: list[InstrumentSpec],
    frames: int,
    rate: float,
    seed: int = 0,
    levels: int = 5,
    bar_ns: int = 1_000_000_000,
) -> Iterator[TapeEvent]:
    """Yield the initial snapshots, then ``frames`` book/trade frames (see module docstring)."""
    rng = random.Random(seed)
    books: list[_Book] = []
    for spec in specs:
        sizes = [_upto(rng, 5000) for _ in range(2 * levels)]
        book = _Book(rng.randint(1_000, 100_000), sizes, levels)
        books.append(book)
        yield encoder.snapshot(spec.symbol, START_NS, sorted(book.bids.items(), reverse=True),
                               sorted(book.asks.items()))  # fmt: skip
    step = 1e9 / rate
    held: list[TapeEvent] = []
    for i in range(frames):
        ts = START_NS + int((i + 1) * step)
        if held and held[0].ts_ns // bar_ns < ts // bar_ns:
            _close(held, bar_ns)  # the last frame of its bar
        yield from held
        k = int(rng.random() * len(specs))
        held = _frame(encoder, rng, specs[k].symbol, books[k], ts, levels)
    _close(held, bar_ns)
    yield from held


def _close(frame: list[TapeEvent], bar_ns: int) -> None:
    for event in frame:
        event.closes_bar = (event.ts_ns // bar_ns + 1) * bar_ns


def _upto(rng: random.Random, n: int) -> int:
    """1..n, uniform enough for sizes, without ``randint``'s overhead."""
    return 1 + int(rng.random() * n)


def _frame(
    encoder: TickEncoder, rng: random.Random, symbol: str, book: _Book, ts: int, levels: int
) -> list[TapeEvent]:
    roll = rng.random()
    if roll < 0.1:
        buy = rng.random() < 0.5
        price = min(book.asks) if buy else max(book.bids)
        return encoder.trade(symbol, ts, price, _upto(rng, 500), buyer_maker=not buy)
    if roll < 0.3:
        return [_move(encoder, symbol, book, ts, levels, up=rng.random() < 0.5,
                      size=_upto(rng, 5000))]  # fmt: skip
    side = book.bids if rng.random() < 0.5 else book.asks
    price = rng.choice(list(side))
    side[price] = _upto(rng, 5000)
    level = [(price, side[price])]
    is_bid = side is book.bids
    return [encoder.book(symbol, ts, level if is_bid else [], [] if is_bid else level)]


def _move(
    encoder: TickEncoder, symbol: str, book: _Book, ts: int, levels: int, up: bool, size: int
) -> TapeEvent:
    m, d = book.mid, levels
    if up:  # bid appears at m, lowest bid m-d goes; best ask m+1 goes, new ask m+d+1
        bids, asks = [(m, size), (m - d, 0)], [(m + 1, 0), (m + d + 1, size)]
    else:  # ask appears at m, highest ask m+d goes; best bid m-1 goes, new bid m-d-1
        bids, asks = [(m - 1, 0), (m - d - 1, size)], [(m, size), (m + d, 0)]
    for side, changes in ((book.bids, bids), (book.asks, asks)):
        for price, lots in changes:
            if lots:
                side[price] = lots
            else:
                side.pop(price, None)
    book.mid = m + 1 if up else m - 1
    return encoder.book(symbol, ts, bids, asks)


def synthetic_tape(
    protocol: ProtocolName,
    symbols: int,
    frames: int,
    rate: float = 100_000.0,
    seed: int = 0,
    bar_ns: int = 1_000_000_000,
    lazy: bool = False,
) -> Tape:
    """A pre-encoded synthetic tape of ``symbols`` instruments and ``frames`` frames.

    ``lazy=True`` encodes while serving instead (constant memory, about 0.7 kB an event less;
    the send rate is then bounded by encoding): for floods of millions of frames.

    Raises:
        ValueError: for a non-positive symbol count, frame count or rate.
    """
    if symbols < 1 or frames < 1 or not rate > 0:
        raise ValueError(f"synthetic needs symbols, frames, rate > 0 (got {symbols}, "
                         f"{frames}, {rate})")  # fmt: skip
    specs = synthetic_symbols(protocol, symbols)
    encoder = TickEncoder(protocol, specs)
    stream = synthetic_events(encoder, specs, frames, rate, seed, bar_ns=bar_ns)
    events = stream if lazy else list(stream)
    return Tape(protocol, events, instruments=specs, symbols=[s.symbol for s in specs])
