"""Published bars expanded into ticks on event time.

Bars are read by ONE function, :func:`read_published_bars` (the lead repoints it when the
published table changes name or shape). Expansion of a bar ``[T, T + I)`` with OHLCV
``o, h, l, c, v`` (prices rounded to the instrument's tick, volume to its lot):

* path: ``o -> l -> h -> c`` when ``c >= o``, else ``o -> h -> l -> c`` (the usual
  "extreme against the move first" convention); four points at ``T + k * I / 4``, k = 1..4, so
  the close lands on ``T + I``, the bar's close time;
* at each point ``p``: first a book update that re-centres the book on ``p`` (``levels`` levels a
  side; the trade side's best level is ``p`` itself: best ask ``p`` on an up-move, best bid ``p``
  on a down-move, the other side one tick away), sent as the absolute diff from the previous
  book (levels that disappear get size 0), then a trade of ``v / 4`` lots at ``p`` (the rest of
  the division goes to the close), buyer-initiated when the path went up to ``p``;
* level sizes: ``max(1, v // (4 * levels))`` lots;
* the book update and the trade at the close point carry ``closes_bar = T + I``.

The first bar of a symbol starts from a snapshot at ``T`` centred on its open. Symbols are
merged by event time (ties in symbol order), so every symbol's close at ``T + I`` is contiguous
on the tape: lockstep waits once per bar time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from rrr_live.exchange.encode import TickEncoder
from rrr_live.exchange.tape import InstrumentSpec, ProtocolName, Tape, TapeEvent


@dataclass(frozen=True, slots=True)
class Bar:
    """One published bar (prices as floats, as the table stores them).

    Args:
        symbol: the bar table's symbol (also the venue symbol served).
        ts_ns: bar open time.
        interval_ns: bar length.
        open: first price.
        high: highest price.
        low: lowest price.
        close: last price.
        volume: traded quantity.
    """

    symbol: str
    ts_ns: int
    interval_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float


PUBLISHED_BARS_SQL = """
SELECT symbol, ts, open, high, low, close, volume
FROM market_bars
WHERE source = $1 AND interval = $2 AND symbol = ANY($3::text[])
  AND ts >= $4 AND ts < $5
ORDER BY ts, symbol
"""


async def read_published_bars(
    dsn: str,
    source: str,
    interval: str,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    interval_ns: int,
) -> list[Bar]:
    """Read published bars from PostgreSQL (``market_bars`` today; repoint here).

    Args:
        dsn: asyncpg connection string of the ``rrr`` database.
        source: bar source (``bundled``, ``synthetic``, ...).
        interval: bar interval label (``1d``, ``1m``, ...).
        symbols: which symbols.
        start: first bar open time included (timezone-aware).
        end: bar open times before this.
        interval_ns: the interval in nanoseconds.
    """
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(PUBLISHED_BARS_SQL, source, interval, list(symbols), start, end,
                                timeout=60)  # fmt: skip
    finally:
        await conn.close()
    return [_bar(row, interval_ns) for row in rows]


def _bar(row: Any, interval_ns: int) -> Bar:
    ts: datetime = row["ts"]
    seconds = int(ts.timestamp())
    ns = seconds * 1_000_000_000 + ts.microsecond * 1000
    return Bar(row["symbol"], ns, interval_ns, float(row["open"]), float(row["high"]),
               float(row["low"]), float(row["close"]), float(row["volume"]))  # fmt: skip


def _units(value: float, increment: Decimal) -> int:
    return int((Decimal(repr(value)) / increment).to_integral_value(ROUND_HALF_EVEN))


class _SymbolPath:
    """Expands one symbol's bars; keeps its current book between bars."""

    def __init__(self, encoder: TickEncoder, spec: InstrumentSpec, levels: int) -> None:
        self.encoder, self.spec, self.levels = encoder, spec, levels
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def _target(self, p: int, up: bool, size: int) -> tuple[dict[int, int], dict[int, int]]:
        best_bid, best_ask = (p - 1, p) if up else (p, p + 1)
        bids = {max(best_bid - k, 1): size for k in range(self.levels)}
        asks = {best_ask + k: size for k in range(self.levels)}
        return bids, asks

    def expand(self, bar: Bar) -> Iterator[TapeEvent]:
        tick, lot = self.spec.tick, self.spec.lot
        o, h, lo, c = (_units(x, tick) for x in (bar.open, bar.high, bar.low, bar.close))
        path = [o, lo, h, c] if c >= o else [o, h, lo, c]
        volume = max(_units(bar.volume, lot), 0)
        size = max(1, volume // (4 * self.levels))
        if not self.bids and not self.asks:
            self.bids, self.asks = self._target(o, True, size)
            yield self.encoder.snapshot(self.spec.symbol, bar.ts_ns, sorted(self.bids.items(),
                                        reverse=True), sorted(self.asks.items()))  # fmt: skip
        previous = o
        close_ns = bar.ts_ns + bar.interval_ns
        for k, p in enumerate(path, 1):
            ts = bar.ts_ns + k * bar.interval_ns // 4
            up = p >= previous
            closes = close_ns if k == 4 else 0
            yield self._move_book(ts, p, up, size, closes)
            lots = volume // 4 + (volume % 4 if k == 4 else 0)
            if lots > 0:
                yield from self.encoder.trade(self.spec.symbol, ts, p, lots, buyer_maker=not up,
                                              closes_bar=closes)  # fmt: skip
            previous = p

    def _move_book(self, ts: int, p: int, up: bool, size: int, closes: int) -> TapeEvent:
        bids, asks = self._target(p, up, size)
        db = _diff(self.bids, bids)
        da = _diff(self.asks, asks)
        self.bids, self.asks = bids, asks
        return self.encoder.book(self.spec.symbol, ts, db, da, closes_bar=closes)


def _diff(old: dict[int, int], new: dict[int, int]) -> list[tuple[int, int]]:
    gone = [(p, 0) for p in old if p not in new]
    changed = [(p, s) for p, s in new.items() if old.get(p) != s]
    return sorted(gone + changed)


def bar_specs(
    protocol: ProtocolName, symbols: Sequence[str], tick: Decimal, lot: Decimal
) -> list[InstrumentSpec]:
    """Instrument metadata for bar symbols served as they are named in the table."""
    quote = "USDT" if protocol == "binance" else "USD"
    return [InstrumentSpec(s, s, quote, tick, lot) for s in symbols]


def expand_bars(
    protocol: ProtocolName,
    bars: Sequence[Bar],
    tick: Decimal = Decimal("0.01"),
    lot: Decimal = Decimal("1"),
    levels: int = 5,
) -> Tape:
    """Expand bars (any symbol order) into one event-time-ordered tape (see module docstring).

    Raises:
        ValueError: when ``bars`` is empty.
    """
    if not bars:
        raise ValueError("no bars to expand")
    symbols = sorted({b.symbol for b in bars})
    specs = bar_specs(protocol, symbols, tick, lot)
    encoder = TickEncoder(protocol, specs)
    per_symbol = {s.symbol: _SymbolPath(encoder, s, levels) for s in specs}
    ordered = sorted(bars, key=lambda b: (b.symbol, b.ts_ns))
    streams = [
        _numbered(rank, per_symbol[sym], [b for b in ordered if b.symbol == sym])
        for rank, sym in enumerate(symbols)
    ]
    # At one instant the closing events come first: a bar's closes stay contiguous even when
    # another symbol's first snapshot shares the time.
    merged = heapq.merge(
        *streams, key=lambda item: (item[0].ts_ns, not item[0].closes_bar, item[1], item[2])
    )
    events = [event for event, _, _ in merged]
    return Tape(protocol, events, instruments=specs, symbols=symbols)


def _numbered(
    rank: int, path: _SymbolPath, bars: list[Bar]
) -> Iterator[tuple[TapeEvent, int, int]]:
    n = 0
    for bar in bars:
        for event in path.expand(bar):
            n += 1
            yield event, rank, n
