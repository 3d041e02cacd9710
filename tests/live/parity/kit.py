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
saved model. The outcome of each side is an :class:`~rrr_live.backtest.parity.Outcome` of
canonical records (decisions, orders, fills) whose sha256 hashes are compared;
:func:`~rrr_live.backtest.parity.first_difference` names the first record that differs (the
records, the comparison and the model signal are ``parity_report``'s, in
:mod:`rrr_live.backtest.parity`).

Mutations (:class:`Mutation`) are injected into the backtest side only, to prove the comparison
catches a divergence: a one-bar feature lag, or a fee the runner side does not charge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.data import panel_from_bars
from rrr_live.backtest.parity import (  # noqa: F401 - Outcome, before, first_difference: re-exported
    ModelSignal,
    Outcome,
    backtest_outcome,
    before,
    first_difference,
)
from rrr_live.backtest.tick_loop import TickBacktest
from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.exchange.bars import Bar, expand_bars
from rrr_live.exchange.tape import Tape, TapeEvent
from rrr_live.execution.models import FeeModel
from rrr_live.features.spec import FeatureDef, FeatureSpec
from rrr_live.feeds.binance_wire import BinanceParser
from rrr_live.models import load_model, save_model
from rrr_live.risk.limits import RiskLimits
from rrr_live.service.bars import BarBuilder, ClosedBar
from rrr_live.service.parity import bar_frame
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
    panel = panel_from_bars(bar_frame(batches, INTERVAL))
    model = load_model(model_dir)
    signal = ModelSignal(model, panel.symbols, SPEC, mutation.feature_lag_bars)
    loop = TickBacktest(panel, signal, backtest_config(mutation), tick_frame(tape))
    result = loop.run()
    return backtest_outcome(result.orders, result.fills, result.equity, insts)
