"""Backtest-live parity kit: one recording, one model, the backtest side and the comparison.

The recording is a seeded random walk of 1-second bars expanded into ticks by the replay
exchange's own expansion (:func:`rrr_live.exchange.bars.expand_bars`). Both sides read that one
tape:

* the runner side (:mod:`tests.live.parity.runner_side`) gets it over real websockets from the
  replay exchange in lockstep mode and trades on its paper venue;
* the backtest side (:func:`run_backtest_side`) gets the same tape as a tick frame and runs
  :class:`~rrr_live.backtest.tick_loop.TickBacktest` (``SimulatedBroker``).

Both turn trades into bars with the one :class:`~rrr_live.service.bars.BarBuilder`, parse
frames with the one :class:`~rrr_live.feeds.binance_wire.BinanceParser`, and score with the one
saved model. The outcome of each side is a :class:`Outcome` of canonical records (decisions,
orders, fills) whose sha256 hashes are compared; :func:`first_difference` names the first record
that differs.

Mutations (:class:`Mutation`) are injected into the backtest side only, to prove the comparison
catches a divergence: a one-bar feature lag, or a fee the runner side does not charge.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.data import panel_from_bars
from rrr_live.backtest.tick_loop import TickBacktest
from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.exchange.bars import Bar, expand_bars
from rrr_live.exchange.tape import Tape, TapeEvent
from rrr_live.execution.models import FeeModel
from rrr_live.features.engine import FeatureEngine
from rrr_live.features.spec import FeatureDef, FeatureSpec
from rrr_live.feeds.binance_wire import BinanceParser
from rrr_live.models import LoadedEnsemble, load_model, save_model
from rrr_live.models.window import RingWindow
from rrr_live.risk.limits import RiskLimits
from rrr_live.service.bars import BarBuilder, ClosedBar
from rrr_live.strategy.history import BarPanel, HistoryView
from rrr_live.strategy.sizing import StrategyConfig
from tests.live.models.conftest import FEATURE_NAMES, make_ensemble

S = 1_000_000_000
T0 = 1_700_000_000 * S
TICK = Decimal("0.01")
LOT = Decimal("0.01")
MIN_NOTIONAL = 1.0  # the replay exchange's instruments (InstrumentSpec.min_notional)
INITIAL_CASH = 100_000.0
TAKER_FEE = 0.001  # both sides: the paper venue charges it, the backtest's venue simulation too
SPEC = FeatureSpec("fs-parity", tuple(FeatureDef.of(n, "log_return", window=i + 1)
                                      for i, n in enumerate(FEATURE_NAMES)))  # fmt: skip
STRATEGY = StrategyConfig(mode="linear", score_scale=40.0, max_weight=0.05, max_gross_leverage=0.5)
LIMITS = RiskLimits(max_position_notional=6_000.0, max_drawdown=0.5)
INTERVAL = "1s"


# ----------------------------------------------------------------------------- the recording
def recording_bars(symbols: Sequence[str], n_bars: int, seed: int) -> list[Bar]:
    """Seeded random-walk 1-second bars (volume large enough that orders fill on one level)."""
    rng = np.random.default_rng(seed)
    bars = []
    for k, symbol in enumerate(symbols):
        price = 100.0 + 10 * k
        for i in range(n_bars):
            o = price
            c = o * float(np.exp(0.004 * rng.standard_normal()))
            hi = max(o, c) * (1 + 0.001 * rng.random())
            lo = min(o, c) * (1 - 0.001 * rng.random())
            bars.append(Bar(symbol, T0 + i * S, S, o, hi, lo, c, 20_000.0))
            price = c
    return bars


def recording(symbols: Sequence[str], n_bars: int = 50, seed: int = 5) -> Tape:
    """The tape both sides replay (Binance protocol, for the paper venue)."""
    return expand_bars("binance", recording_bars(symbols, n_bars, seed), tick=TICK, lot=LOT)


def instruments(symbols: Sequence[str]) -> dict[str, Instrument]:
    """The tape's instruments as the parser and the backtest see them."""
    return {s: Instrument.create(s, str(TICK), str(LOT), str(MIN_NOTIONAL)) for s in symbols}


def save_parity_model(directory: Path, symbols: Sequence[str], seed: int = 4) -> Path:
    """Save a seeded real ensemble (the saver, sha256 manifest) for ``symbols`` at 1 s bars."""
    spec = {**SPEC.to_dict(), "fingerprint": SPEC.fingerprint()}
    save_model(directory, make_ensemble(seed=seed), feature_spec=spec,
               metadata={"universe": list(symbols), "bar_interval": INTERVAL})  # fmt: skip
    return directory


# ------------------------------------------------------------------ trades -> decision batches
@dataclass(frozen=True, slots=True)
class BarClosed:
    """The exchange's lockstep ``bar_closed`` control frame for close time ``t``."""

    t: int


Step = tuple[str, int, float, float] | BarClosed  # a trade (symbol, ts ns, price, qty) or a close


def trade_of(tick: TradeTick, inst: Instrument) -> tuple[str, int, float, float]:
    """A parsed trade as the bar builder takes it."""
    return (
        tick.symbol,
        tick.ts_ns,
        inst.ticks_to_price(tick.price_ticks),
        inst.lots_to_size(tick.size_lots),
    )


class Batcher:
    """Trades into event-time bars; a lockstep close hands over the bars closing at ``t``."""

    def __init__(self, interval_ns: int) -> None:
        self.bars = BarBuilder(interval_ns)
        self.closed: list[ClosedBar] = []

    def on_step(self, step: Step) -> list[ClosedBar] | None:
        """Take one step; return the batch a ``bar_closed`` completes (else ``None``)."""
        if isinstance(step, BarClosed):
            done = self.closed + self.bars.watermark(step.t)
            self.closed = [b for b in done if b.end_ns > step.t]
            return [b for b in done if b.end_ns <= step.t]
        closed = self.bars.on_trade(*step)
        if closed is not None:
            self.closed.append(closed)
        return None


def tape_steps(tape: Tape, parser: BinanceParser, insts: dict[str, Instrument]) -> Iterator[Step]:
    """The steps a lockstep client sees: the tape's trades, a close after each bar's closes."""
    pending = 0
    for event in tape.events:
        if pending and event.closes_bar != pending:
            yield BarClosed(pending)
            pending = 0
        if event.channel == "trade":
            frame = json.dumps({"stream": f"{event.symbol.lower()}@trade",
                                "data": json.loads(event.payload)})  # fmt: skip
            for tick in parser.parse(frame).events:
                assert isinstance(tick, TradeTick)
                yield trade_of(tick, insts[tick.symbol])
        pending = event.closes_bar or pending
    if pending:
        yield BarClosed(pending)


# ------------------------------------------------------------------------------ the backtest side
@dataclass(frozen=True)
class Mutation:
    """A divergence injected into the backtest side only.

    Attributes:
        feature_lag_bars: Score each batch with the features of ``n`` batches earlier.
        taker_fee: Taker fee rate of the simulated venue (the paper venue charges ``TAKER_FEE``).
    """

    feature_lag_bars: int = 0
    taker_fee: float = TAKER_FEE


class ModelSignal:
    """Scores a panel batch by batch with the feature engine, the windows and the saved model.

    Per batch, as the runner's trader: update the engine with the batch's bars, push finite
    feature rows into the windows, score, and leave rows whose features are not finite or
    whose window is not full without a forecast (NaN).
    """

    name = "parity-model"

    def __init__(self, model: LoadedEnsemble, universe: Sequence[str], lag: int = 0) -> None:
        self.model, self.universe, self.lag = model, list(universe), lag
        self.engine = FeatureEngine(SPEC, self.universe)
        self.window = RingWindow(len(self.universe), max(model.window_length, 1), len(SPEC.names))
        self.past: list[np.ndarray] = []

    def scores(self, ts_ns: int, symbols: Sequence[str], history: HistoryView) -> np.ndarray:
        """Not used: the scores are precomputed (see :meth:`precompute`)."""
        raise NotImplementedError("ModelSignal scores the whole panel in precompute")

    def precompute(self, panel: BarPanel) -> np.ndarray:
        """Forecast of every panel row (NaN where none is made)."""
        out = np.full(len(panel.ts_ns), np.nan)
        starts = panel.batch_starts.tolist()
        for r0, r1 in itertools.pairwise(starts):
            out[r0:r1] = self._batch(panel, r0, r1)
        return out

    def _batch(self, panel: BarPanel, r0: int, r1: int) -> np.ndarray:
        idx = panel.symbol_id[r0:r1]
        names = [self.universe[i] for i in idx.tolist()]
        self.engine.update_batch(
            names, ts_ns=panel.close_ns[r0:r1].tolist(), open_=panel.open[r0:r1].tolist(),
            high=panel.high[r0:r1].tolist(), low=panel.low[r0:r1].tolist(),
            close=panel.close[r0:r1].tolist(), volume=panel.volume[r0:r1].tolist(),
        )  # fmt: skip
        feats = np.asarray(self.engine.features(names), dtype=np.float32)
        self.past.append(feats)
        if self.lag:  # the mutation: an older batch's features (same symbols in this recording)
            feats = self.past[max(0, len(self.past) - 1 - self.lag)]
        finite = np.isfinite(feats).all(axis=1)
        if finite.any():
            self.window.push(feats[finite], idx[finite])
        usable = finite & self.window.ready(idx)
        wins = self.window.windows(idx)  # as the inference worker: rows or windows, not both
        rows = None if self.model.needs_windows else feats
        forecast = np.asarray(self.model.predict(rows, wins), dtype=np.float64)
        return np.where(usable, forecast, np.nan)


def bar_frame(batches: Iterable[list[ClosedBar]]) -> pd.DataFrame:
    """The closed bars as a canonical bar frame (``ts`` = bar open)."""
    rows = [(b.symbol, b.start_ns, b.open, b.high, b.low, b.close, b.volume)
            for batch in batches for b in batch]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["symbol", "ts_ns", "open", "high", "low", "close",
                                        "volume"])  # fmt: skip
    frame["ts"] = pd.to_datetime(frame.pop("ts_ns"), unit="ns", utc=True)
    frame["interval"] = INTERVAL
    return frame


def tick_frame(tape: Tape) -> pd.DataFrame:
    """The tape as the tick backtest's frame (book snapshots/diffs and trades)."""
    rows: list[tuple[int, str, str, str, float, float]] = []
    for e in tape.events:
        rows.extend(_tick_rows(e))
    return pd.DataFrame(rows, columns=["ts_ns", "symbol", "kind", "side", "price", "size"])


def _tick_rows(e: TapeEvent) -> list[tuple[int, str, str, str, float, float]]:
    if e.channel == "trade":
        body = json.loads(e.payload)
        side = "sell" if body["m"] else "buy"
        return [(e.ts_ns, e.symbol, "trade", side, float(body["p"]), float(body["q"]))]
    if e.bids is None and e.asks is None and not e.snapshot:
        return []
    kind = "snapshot" if e.snapshot else "diff"
    levels = [("bid", p, s) for p, s in e.bids or ()] + [("ask", p, s) for p, s in e.asks or ()]
    return [(e.ts_ns, e.symbol, kind, side, float(p), float(s)) for side, p, s in levels]


def backtest_config(mutation: Mutation) -> BacktestConfig:
    """The backtest's costs and rules (the runner side's, plus the mutation)."""
    return BacktestConfig(
        initial_cash=INITIAL_CASH, strategy=STRATEGY, risk=LIMITS,
        fees=FeeModel(maker_rate=0.0, taker_rate=mutation.taker_fee),
        tick_size=str(TICK), lot_size=str(LOT), min_notional=str(MIN_NOTIONAL),
        periods_per_year=86400.0,
    )  # fmt: skip


def run_backtest_side(tape: Tape, model_dir: Path, mutation: Mutation | None = None) -> Outcome:
    """The recording through the tick backtest (``SimulatedBroker``); canonical records."""
    mutation = mutation or Mutation()
    symbols = sorted(tape.symbols)
    insts = instruments(symbols)
    batcher = Batcher(S)
    steps = tape_steps(tape, BinanceParser(insts), insts)
    batches = [b for b in (batcher.on_step(s) for s in steps) if b]
    panel = panel_from_bars(bar_frame(batches))
    model = load_model(model_dir)
    signal = ModelSignal(model, panel.symbols, mutation.feature_lag_bars)
    loop = TickBacktest(panel, signal, backtest_config(mutation), tick_frame(tape))
    result = loop.run()
    return backtest_outcome(result.orders, result.fills, result.equity, loop.lot)


# ---------------------------------------------------------------------------- canonical records
@dataclass
class Outcome:
    """One side's canonical records (JSON-able lists, in time order)."""

    decisions: list[list[Any]] = field(default_factory=list)
    orders: list[list[Any]] = field(default_factory=list)
    fills: list[list[Any]] = field(default_factory=list)

    def hashes(self) -> dict[str, str]:
        """sha256 of each canonical list."""
        return {k: sha256_of(v) for k, v in self.lists().items()}

    def lists(self) -> dict[str, list[list[Any]]]:
        """The three lists by name."""
        return {"decisions": self.decisions, "orders": self.orders, "fills": self.fills}


def sha256_of(records: list[list[Any]]) -> str:
    """Hash of a canonical record list (compact, sorted JSON)."""
    text = json.dumps(records, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def decision_record(ts_ns: int, state: str, equity: float) -> list[Any]:
    """One batch: decision time, trading state after the marks, equity (to 1e-6).

    Equity is rounded: the paper venue states each fee in decimals of 1e-8 (Binance's grid),
    the backtest's simulation keeps the float, so the two cash sums differ in the last bits.
    """
    return [ts_ns, state, f"{float(equity):.6f}"]


def order_record(ts_ns: int, symbol: str, lots: int, status: str) -> list[Any]:
    """One order the step decided: time, symbol, signed lots, risk/venue outcome."""
    return [ts_ns, symbol, lots, status]


def fill_record(ts_ns: int, symbol: str, lots: int, avg_price: Decimal, fee: float) -> list[Any]:
    """The fills of one order: its time, symbol, signed filled lots, average price, fee."""
    return [ts_ns, symbol, lots, str(avg_price.quantize(Decimal("1e-8"))), f"{float(fee):.6f}"]


def backtest_outcome(
    orders: pd.DataFrame, fills: pd.DataFrame, equity: pd.DataFrame, lot: np.ndarray
) -> Outcome:
    """Canonical records of a backtest result."""
    out = Outcome()
    for ts, state, eq in zip(equity["ts"], equity["state"], equity["equity"], strict=True):
        out.decisions.append(decision_record(pd.Timestamp(ts).value, str(state), float(eq)))
    lot_of = float(lot[0])
    for o in orders.itertuples():
        lots = round(o.qty / lot_of) * (1 if o.side == "buy" else -1)
        status = "denied" if o.status == "denied" else "sent"
        out.orders.append(order_record(pd.Timestamp(o.ts).value, o.symbol, lots, status))
    ts_of = dict(zip(orders["order_id"], orders["ts"], strict=True))
    for oid, grp in fills.groupby("order_id", sort=True):
        n = int(grp["qty_lots"].sum())
        notional = sum(Decimal(int(k)) * Decimal(int(q)) for k, q in
                       zip(grp["price_ticks"], grp["qty_lots"], strict=True))  # fmt: skip
        sign = 1 if grp["side"].iloc[0] == "buy" else -1
        avg = Decimal(notional) / n * TICK
        out.fills.append(fill_record(pd.Timestamp(ts_of[oid]).value, str(grp["symbol"].iloc[0]),
                                     sign * n, avg, float(grp["fee"].sum())))  # fmt: skip
    return out


def before(outcome: Outcome, t: int) -> Outcome:
    """The same outcome with only the fills of orders decided before ``t``.

    End of data: the tick backtest processes an order at the next market event, and the tape
    has none after its last close, so the last batch's orders expire there ("expired at end of
    data") while the paper venue fills them on the book standing at that close.
    """
    return Outcome(outcome.decisions, outcome.orders, [f for f in outcome.fills if f[0] < t])


def first_difference(a: Outcome, b: Outcome) -> str:
    """The earliest record (by decision time) that differs between two outcomes ('' if none).

    Each record starts with its decision time; among the lists' first differences the earliest
    is named (at one time: decisions, then orders, then fills).
    """
    found = []
    for rank, (name, left) in enumerate(a.lists().items()):
        right = b.lists()[name]
        for i in range(max(len(left), len(right))):
            x = left[i] if i < len(left) else None
            y = right[i] if i < len(right) else None
            if x != y:
                t = min(r[0] for r in (x, y) if r is not None)
                found.append((t, rank, f"{name}[{i}]: runner {x} != backtest {y}"))
                break
    return min(found)[2] if found else ""
