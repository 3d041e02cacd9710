"""Bars of the model's interval built from trades on event (exchange) time.

A symbol's bar ``(start, start + interval]`` closes on the first trade of that symbol past its
end, or when :meth:`BarBuilder.watermark` passes its end (quiet symbols). A trade stamped exactly
at a bar's end belongs to that bar: the backtest applies every tick with ``ts <= t`` before
deciding at ``t``, and the replay exchange puts a published bar's close trade at its close time.
An interval without trades makes no bar (as in the backtest panel, a missing bar).

Feed-gap policy: a bar whose interval overlaps a reported feed gap (a reconnect, a resync, a
sequence hole) is emitted with ``gapped=True``; the trader skips that symbol's decision and does
not feed the bar to the feature engine, because its OHLCV are missing trades. Late trades (older
than the symbol's open bar) are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_GAPS = 64


@dataclass(frozen=True, slots=True)
class ClosedBar:
    """One closed bar.

    Attributes:
        symbol: Instrument symbol.
        start_ns: Interval start (event time).
        end_ns: Interval end; the decision time of the bar.
        open: First trade price.
        high: Highest trade price.
        low: Lowest trade price.
        close: Last trade price.
        volume: Traded quantity.
        trades: Number of trades.
        gapped: The interval overlaps a feed gap (see the module policy).
    """

    symbol: str
    start_ns: int
    end_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    gapped: bool = False

    @property
    def ts_ns(self) -> int:
        """Bar timestamp as the feature engine reads it (the close)."""
        return self.end_ns


@dataclass(slots=True)
class _Open:
    start_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int = 1
    gapped: bool = False


@dataclass
class BarBuilder:
    """Per-symbol event-time bar aggregation.

    Args:
        interval_ns: Bar length in nanoseconds.
    """

    interval_ns: int
    late_trades: int = 0
    _open: dict[str, _Open] = field(default_factory=dict)
    _closed_end: dict[str, int] = field(default_factory=dict)
    _gaps: list[tuple[frozenset[str] | None, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.interval_ns <= 0:
            raise ValueError(f"bar interval must be positive, got {self.interval_ns} ns")

    def on_trade(self, symbol: str, ts_ns: int, price: float, qty: float) -> ClosedBar | None:
        """Add a trade; return the symbol's previous bar when this trade closes it."""
        start = ts_ns - 1 - (ts_ns - 1) % self.interval_ns
        bar = self._open.get(symbol)
        if start < self._closed_end.get(symbol, -1) or (bar is not None and start < bar.start_ns):
            self.late_trades += 1
            return None
        if bar is not None and start == bar.start_ns:
            bar.high, bar.low = max(bar.high, price), min(bar.low, price)
            bar.close, bar.volume, bar.trades = price, bar.volume + qty, bar.trades + 1
            return None
        self._open[symbol] = _Open(
            start, price, price, price, price, qty, gapped=self._in_gap(symbol, start)
        )
        return None if bar is None else self._close(symbol, bar)

    def watermark(self, ts_ns: int) -> list[ClosedBar]:
        """Close every open bar whose end is at or before ``ts_ns`` (sorted by symbol).

        A trade of a closed bar's interval arriving later is dropped as late.
        """
        done = [s for s, b in self._open.items() if b.start_ns + self.interval_ns <= ts_ns]
        return [self._close(s, self._open.pop(s)) for s in sorted(done)]

    def feed_gap(self, symbols: list[str] | None, from_ns: int, to_ns: int) -> None:
        """Mark open bars overlapping ``[from_ns, to_ns]`` as gapped (``None``: every symbol).

        Bars opened later whose interval overlaps the gap (the trades of the gap are lost)
        are marked too; the last ``MAX_GAPS`` gaps are remembered for that.
        """
        self._gaps.append((None if symbols is None else frozenset(symbols), from_ns, to_ns))
        del self._gaps[:-MAX_GAPS]
        for s, b in self._open.items():
            if symbols is not None and s not in symbols:
                continue
            if b.start_ns <= to_ns and from_ns < b.start_ns + self.interval_ns:
                b.gapped = True

    def _in_gap(self, symbol: str, start: int) -> bool:
        end = start + self.interval_ns
        return any(
            (syms is None or symbol in syms) and start <= hi and lo < end
            for syms, lo, hi in self._gaps
        )

    def _close(self, symbol: str, b: _Open) -> ClosedBar:
        self._closed_end[symbol] = b.start_ns + self.interval_ns
        return ClosedBar(
            symbol, b.start_ns, b.start_ns + self.interval_ns, b.open, b.high, b.low, b.close,
            b.volume, b.trades, b.gapped,
        )  # fmt: skip
