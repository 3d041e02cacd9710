"""The trader pipeline: closed bars → features → inference → the one decision step → orders.

One batch is the bars of every symbol closing at the same ``end_ns`` (what the backtest calls a
decision batch). Per batch, in order:

1. gapped bars (see :mod:`rrr_live.service.bars`) are dropped: no features, no decision for
   that symbol;
2. the remaining bars go to ``FeatureEngine.update_batch`` and the feature windows;
3. the champion and shadow models score the batch in the inference thread (rows whose
   features are not finite or whose window is not full get NaN: the step leaves them alone);
4. ``DecisionStep.run`` marks, runs the risk engine, sizes and checks every order; no forecast
   (no model, stale) means no decision; a sharded runner's portfolio gate (the risk ledger,
   :mod:`rrr_live.shards.ledger`) syncs while the models score (every batch, before the step)
   and checks the step's orders against the account-wide limits after it;
5. approved orders go to the :class:`~rrr_live.venue.broker.Broker` as market orders under
   deterministic client ids (batch sequence, leg); risk denials and venue refusals are
   reported; fills update the portfolio at the venue's average price.

Everything observable is returned as a :class:`BatchReport` for the journal, with the batch's
latency stamps on the injected monotonic clock: ``decided_ns`` when the step's orders left the
risk engine (or, with no order, when the decision was made), and per order the venue's answer
time (``ack_ns``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from rrr_live.features.engine import FeatureEngine
from rrr_live.inference.worker import BatchScores, InferenceWorker
from rrr_live.models.window import RingWindow
from rrr_live.risk.reasons import DenyReason
from rrr_live.service.bars import ClosedBar
from rrr_live.shards.gate import PortfolioGate
from rrr_live.strategy.decision import Decision, DecisionBatch, DecisionStep, OpenOrders
from rrr_live.venue.broker import Broker
from rrr_live.venue.model import Decision as OrderOrigin
from rrr_live.venue.model import OrderIntent, OrderState, client_order_id
from rrr_live.venue.rest import VenueRejected

CASH_MARGIN = 1.05  # buys are sent at once only while cash covers them with this slack
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_Windows = npt.NDArray[np.floating]


@dataclass
class BatchReport:
    """What one decision batch did.

    Attributes:
        ts_ns: Decision time (bar close).
        seq: Batch sequence number (part of every client order id).
        symbols: Symbols decided (gapped ones excluded).
        skipped_gapped: Symbols whose decision was skipped for a feed gap.
        scores: The model forecasts.
        decision: The step's decision (``None`` when no forecast was made).
        orders: Venue answers for the orders sent.
        intents: The orders sent (aligned with ``orders``).
        denied: ``(symbol, reason)`` of orders the risk engine denied.
        rejected: ``(client id, message)`` of orders the venue refused.
        closes: The decided symbols' bar closes (``symbols`` order).
        bars: The decided bars (``symbols`` order; the journal keeps them for warm-up).
        closing_send_ns: Send stamp of the frame that released the batch (0: none).
        decided_ns: Monotonic time the decision left the risk engine (0: nothing decided).
        ack_ns: Monotonic ``(sent, answered)`` times of each order sent to the venue.
    """

    ts_ns: int
    seq: int
    symbols: list[str]
    skipped_gapped: list[str]
    scores: BatchScores | None = None
    decision: Decision | None = None
    orders: list[OrderState] = field(default_factory=list)
    intents: list[OrderIntent] = field(default_factory=list)
    denied: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    closes: list[float] = field(default_factory=list)
    bars: list[ClosedBar] = field(default_factory=list)
    closing_send_ns: int = 0
    decided_ns: int = 0
    ack_ns: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class TraderParts:
    """The objects a trader drives (built by the service from its configuration).

    Attributes:
        universe: Traded symbols, in universe order (the portfolio's order).
        engine: Incremental feature engine over the universe.
        window: Feature windows (T = the model's window length, >= 1).
        worker: Inference worker.
        step: The one decision step (its portfolio and risk engine).
        broker: Where orders go.
        prefix: Client order id prefix of this runner.
        lot_qty: Base quantity of one lot, per universe symbol.
        feature_spec: Feature spec id recorded with every order.
        order_concurrency: Orders of one phase (sells, then buys) in flight at once.
        ledger: The portfolio-wide risk gate of a sharded runner (``None``: not sharded).
    """

    universe: Sequence[str]
    engine: FeatureEngine
    window: RingWindow
    worker: InferenceWorker
    step: DecisionStep
    broker: Broker
    prefix: str
    lot_qty: Sequence[Decimal]
    feature_spec: str
    order_concurrency: int = 16
    ledger: PortfolioGate | None = None


class Trader:
    """Runs decision batches (see the module docstring).

    Args:
        parts: What it drives.
        clock: Monotonic nanoseconds (the replay exchange's send stamps use the same clock).
    """

    def __init__(self, parts: TraderParts, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.p = parts
        self.clock = clock
        self.index = {s: i for i, s in enumerate(parts.universe)}
        self.open = OpenOrders.empty(len(parts.universe))
        self.seq = 0
        self.last_end_ns = -1  # bar close of the last batch decided or warmed up

    def warm(self, bars: Sequence[ClosedBar]) -> None:
        """Feed one bar close's bars to the features and windows without deciding (warm-up).

        Raises:
            ValueError: bars of different close times or of symbols outside the universe.
        """
        ts = _one_time(bars)
        clean = sorted((b for b in bars if not b.gapped), key=lambda b: self.index[b.symbol])
        if clean:
            self._features(clean, np.array([self.index[b.symbol] for b in clean], dtype=np.int64))
        self.last_end_ns = max(self.last_end_ns, ts)

    async def on_bars(self, bars: Sequence[ClosedBar], closing_send_ns: int = 0) -> BatchReport:
        """Decide on the bars closing at one time (every bar must share ``end_ns``).

        Args:
            bars: The batch.
            closing_send_ns: Send stamp of the frame that released it (latency start).

        Raises:
            ValueError: bars of different close times or of symbols outside the universe.
        """
        ts = _one_time(bars)
        self.seq += 1
        self.last_end_ns = max(self.last_end_ns, ts)
        clean = sorted((b for b in bars if not b.gapped), key=lambda b: self.index[b.symbol])
        report = BatchReport(ts, self.seq, [b.symbol for b in clean],
                             sorted(b.symbol for b in bars if b.gapped),
                             closes=[b.close for b in clean], bars=clean,
                             closing_send_ns=closing_send_ns)  # fmt: skip
        if not clean:
            return report
        idx = np.array([self.index[b.symbol] for b in clean], dtype=np.int64)
        feats = self._features(clean, idx)
        windows = self.p.window.windows(idx)
        price = np.array([b.close for b in clean], dtype=np.float64)
        report.scores = scores = await self._score_and_sync(ts, idx, price, feats, windows)
        if scores.forecast is None:
            report.decided_ns = self.clock()
            return report
        forecast = np.where(self._usable(feats, idx), scores.forecast, np.nan)
        strategy = self.p.step.strategy
        batch = DecisionBatch(ts, idx, price, lambda: strategy.base_weights(forecast, None))
        ledger = self.p.ledger
        report.decision = d = self.p.step.run(batch, self.open)
        if ledger is not None:
            await ledger.reserve(ts, d, self.p.step)
        report.decided_ns = self.clock()
        await self._cancel(d)
        await self._send(d, report, scores.champion_version)
        return report

    async def _score_and_sync(
        self, ts: int, idx: I64, price: F64, feats: npt.NDArray[np.float32], windows: _Windows
    ) -> BatchScores:
        """Score the batch; a shard syncs its ledger meanwhile (the models run in a thread).

        The sync comes before the step so the account's state applies to this batch's step,
        and it runs on every batch, scored or not, so the account always sees this shard.
        """
        scoring = self.p.worker.score(ts, ts, feats, windows)
        ledger = self.p.ledger
        if ledger is None:
            return await scoring
        self.p.step.portfolio.mark(idx, price)
        scores, _ = await asyncio.gather(scoring, ledger.sync(ts, self.p.step.risk))
        return scores

    def _features(self, clean: Sequence[ClosedBar], idx: I64) -> npt.NDArray[np.float32]:
        self.p.engine.update_batch(
            [b.symbol for b in clean],
            ts_ns=[b.end_ns for b in clean],
            open_=[b.open for b in clean],
            high=[b.high for b in clean],
            low=[b.low for b in clean],
            close=[b.close for b in clean],
            volume=[b.volume for b in clean],
        )
        feats = np.asarray(self.p.engine.features([b.symbol for b in clean]), dtype=np.float32)
        finite = np.isfinite(feats).all(axis=1)  # warm-up rows never enter a window
        if finite.any():
            self.p.window.push(feats[finite], idx[finite])
        return feats

    def _usable(self, feats: npt.NDArray[np.float32], idx: I64) -> npt.NDArray[np.bool_]:
        need = max(1, self.p.worker.champion_window())
        return np.isfinite(feats).all(axis=1) & self.p.window.ready(idx, need)

    async def _cancel(self, d: Decision) -> None:
        # One open order per symbol at most: market orders settle at once, so nothing is left.
        if len(d.cancel):
            self.open.clear(d.cancel)

    async def _send(self, d: Decision, report: BatchReport, version: str) -> None:
        origin = OrderOrigin(version, self.p.feature_spec, self.seq)
        legs: list[_Leg] = []
        for leg, (s, lots, code) in enumerate(
            zip(d.sym.tolist(), d.lots.tolist(), d.codes.tolist(), strict=True)
        ):
            symbol = self.p.universe[s]
            if code != DenyReason.OK:
                report.denied.append((symbol, DenyReason(code).name))
                continue
            intent = OrderIntent(
                client_order_id(self.p.prefix, origin, leg), self.p.prefix, symbol,
                "BUY" if lots > 0 else "SELL", "MARKET", abs(lots) * self.p.lot_qty[s], None,
                origin,
            )  # fmt: skip
            legs.append(_Leg(s, lots, float(d.ref[leg]), intent))
        # Sells first (they free cash), then buys. Within a phase every order is of another
        # symbol and the venue answers each atomically, so sending a phase's orders at once
        # gives the answers one at a time would (the lockstep parity proves it) -- unless the
        # buys could exhaust the cash, when the venue's arrival order would pick which one
        # fails: then buys go one by one, in leg order.
        sells = [g for g in legs if g.lots < 0]
        buys = [g for g in legs if g.lots > 0]
        await self._phase(sells, report, self.p.order_concurrency)
        await self._phase(buys, report, self.p.order_concurrency if self._cash_covers(buys) else 1)

    def _cash_covers(self, buys: Sequence[_Leg]) -> bool:
        need = sum(g.lots * float(self.p.lot_qty[g.s]) * g.ref for g in buys)
        return need * CASH_MARGIN <= self.p.step.portfolio.cash

    async def _phase(self, legs: Sequence[_Leg], report: BatchReport, concurrency: int) -> None:
        if not legs:
            return
        answers = await self.p.broker.submit_many([g.intent for g in legs], concurrency, self.clock)
        for g, a in zip(legs, answers, strict=True):  # leg order, whatever the answer order
            if isinstance(a.outcome, VenueRejected):
                report.rejected.append((g.intent.client_id, str(a.outcome)))
                continue
            report.ack_ns.append((a.sent_ns, a.answered_ns))
            report.orders.append(a.outcome)
            report.intents.append(g.intent)
            self._apply_fill(g.s, g.lots, a.outcome, g.ref)

    def _apply_fill(self, s: int, lots: int, state: OrderState, ref: float) -> None:
        if state.filled_qty <= 0:
            return
        filled_lots = int(state.filled_qty / self.p.lot_qty[s]) * (1 if lots > 0 else -1)
        price = float(state.avg_price) if state.avg_price is not None else ref
        self.p.step.portfolio.apply_fills(
            np.array([s], dtype=np.int64),
            np.array([filled_lots], dtype=np.int64),
            np.array([price]),
            np.array([float(state.commission)]),  # the venue's fee: one fee rule
        )


@dataclass(frozen=True, slots=True)
class _Leg:
    """One approved order of a decision: universe index, signed lots, reference price."""

    s: int
    lots: int
    ref: float
    intent: OrderIntent


def _one_time(bars: Sequence[ClosedBar]) -> int:
    times = {b.end_ns for b in bars}
    if len(times) != 1:
        raise ValueError(f"a decision batch needs bars of one close time, got {sorted(times)}")
    return times.pop()
