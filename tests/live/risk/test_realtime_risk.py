"""The real-time risk engine: halt policy, REDUCING, VaR limit, data quality, journal
escalation, fail closed, saved state."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.engine import run_backtest
from rrr_live.book.l2 import OrderBook
from rrr_live.domain.instrument import Instrument
from rrr_live.execution.models import FeeModel
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.risk.quality import JournalHealth, book_quality
from rrr_live.risk.reasons import LABELS, DenyReason
from rrr_live.risk.state import Denied, RiskSnapshot, TradingState
from rrr_live.strategy.decision import DecisionBatch, DecisionStep, OpenOrders
from rrr_live.strategy.signals import TimeSeriesMomentum
from rrr_live.strategy.sizing import Strategy, StrategyConfig
from tests.live.core.bars_util import random_walk

SYMS = ["A", "B", "C"]


def book(limits: RiskLimits, cash: float = 10_000.0) -> tuple[Portfolio, RiskEngine]:
    p = Portfolio(SYMS, cash)
    p.mark(np.arange(3), np.array([10.0, 20.0, 50.0]))
    return p, RiskEngine(limits, p)


def trade(p: Portfolio, idx: int, lots: int, price: float) -> None:
    p.apply_fills(np.array([idx]), np.array([lots]), np.array([price]), np.zeros(1))


def approve_in_order(p: Portfolio, risk: RiskEngine, idx, qty, price) -> np.ndarray:
    codes = risk.check_batch(0, idx, qty.astype(float), price)
    for i, q, px, c in zip(idx, qty, price, codes, strict=True):
        if c == 0:
            trade(p, int(i), int(q), float(px))
    return codes


# --- limits --------------------------------------------------------------------------------------
# a batch holds at most one order per symbol (check_batch refuses repeats)
orders = st.lists(
    st.tuples(st.integers(0, 2), st.integers(-300, 300).filter(bool)),
    min_size=1,
    max_size=3,
    unique_by=lambda o: o[0],
)


@settings(max_examples=150, deadline=None)
@given(start=st.lists(st.integers(-200, 200), min_size=3, max_size=3), batch=orders)
def test_no_approved_order_takes_gross_exposure_past_its_limit(start, batch):
    limit = 6_000.0
    p, risk = book(RiskLimits(max_gross_notional=limit, max_drawdown=1.0))
    for i, n in enumerate(start):
        trade(p, i, n, float(p.last_price[i]))
    idx = np.array([i for i, _ in batch])
    qty = np.array([q for _, q in batch])
    price = p.last_price[idx]
    gross = p.gross_exposure()
    for i, q, c in zip(idx, qty, risk.check_batch(0, idx, qty.astype(float), price), strict=True):
        if c:
            continue
        before = gross
        trade(p, int(i), int(q), float(p.last_price[i]))
        gross = p.gross_exposure()
        assert gross <= max(limit, before) + 1e-6  # an approved order never grows it past


@settings(max_examples=60, deadline=None)
@given(batch=orders, moves=st.lists(st.floats(-0.05, 0.05), min_size=3, max_size=30))
def test_no_approved_order_takes_the_portfolio_var_past_its_limit(batch, moves):
    p, risk = book(RiskLimits(max_var=400.0, max_drawdown=1.0))
    for k, m in enumerate(moves):  # returns for the EWMA covariance
        p.last_price[k % 3] *= 1 + m
        risk.on_mark(k)
    var = risk.var
    assert var is not None
    idx = np.array([i for i, _ in batch])
    qty = np.array([q for _, q in batch])
    for i, q, c in zip(
        idx, qty, risk.check_batch(0, idx, qty.astype(float), p.last_price[idx]), strict=True
    ):
        if c:
            assert c == DenyReason.VAR
            continue
        before = var.value(p.position_notional())
        trade(p, int(i), int(q), float(p.last_price[i]))
        after = var.value(p.position_notional())
        assert after <= max(400.0, before) + 1e-6


class ReducingNeverGrows(RuleBasedStateMachine):
    """Random marks, orders, data-quality flags, journal reports and resumes: an approved order
    never increases |position| while its symbol or the process is REDUCING, and only flatten
    orders pass while HALTED."""

    def __init__(self) -> None:
        super().__init__()
        self.p, self.risk = book(
            RiskLimits(max_position_notional=2_500, max_gross_notional=6_000, max_drawdown=0.08)
        )
        self.ts = 0

    @rule(sym=st.integers(0, 2), move=st.floats(-0.08, 0.08))
    def mark(self, sym, move):
        self.ts += 1
        self.p.last_price[sym] *= 1 + move
        self.risk.on_mark(self.ts)

    @rule(sym=st.integers(0, 2), bad=st.booleans())
    def quality(self, sym, bad):
        self.risk.on_book_quality(sym, "crossed book" if bad else "")

    @rule(health=st.sampled_from(list(JournalHealth)))
    def journal(self, health):
        self.ts += 1
        self.risk.on_journal(self.ts, health)

    @rule()
    def resume(self):
        self.ts += 1
        if self.risk.state is TradingState.HALTED:
            self.risk.on_journal(self.ts, JournalHealth.OK)
            self.risk.resume(self.ts)

    @rule(sym=st.integers(0, 2), lots=st.integers(-150, 150).filter(bool))
    def order(self, sym, lots):
        pos = int(self.p.position_lots[sym])
        state = self.risk.symbol_state(sym)
        px = float(self.p.last_price[sym])
        decision = self.risk.check(SYMS[sym], float(lots), px, self.ts)
        if not decision.ok:
            return
        assert state is not TradingState.HALTED
        if state is TradingState.REDUCING:
            assert abs(pos + lots) < abs(pos) and (pos + lots) * pos >= 0
        trade(self.p, sym, lots, px)

    @rule()
    def flatten(self):
        idx = np.flatnonzero(self.p.position_lots)
        if self.risk.state is not TradingState.HALTED or not idx.size:
            return
        lots = -self.p.position_lots[idx]
        codes = self.risk.check_flatten(idx, lots.astype(float))
        assert not codes.any()  # closing orders always pass
        assert self.risk.check(SYMS[int(idx[0])], 1.0, 10.0, self.ts) == Denied(DenyReason.HALTED)

    @invariant()
    def drawdown_at_limit_means_halted(self):
        hit = self.p.drawdown() >= self.risk.limits.max_drawdown
        if self.ts and hit and self.risk.machine.history:
            assert self.risk.state is TradingState.HALTED or self.risk.flatten_pending is False


TestReducingNeverGrows = ReducingNeverGrows.TestCase
TestReducingNeverGrows.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)


# --- halt policy in the backtest ----------------------------------------------------------------
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), limit=st.sampled_from([0.003, 0.006, 0.01]))
def test_drawdown_at_limit_halts_at_that_event_and_flattens_at_the_next_fills(seed, limit):
    bars = random_walk(3, 120, seed=seed)
    cfg = BacktestConfig(
        strategy=StrategyConfig(max_gross_leverage=3.0),
        risk=RiskLimits(max_drawdown=limit),
        fees=FeeModel(taker_rate=0.0005),
    )
    res = run_backtest(bars, TimeSeriesMomentum(3), cfg)
    eq = res.equity
    hit = np.flatnonzero(eq.drawdown.to_numpy() >= limit)
    if not hit.size:
        assert (eq.state != "halted").all()
        return
    first = int(hit[0])
    assert eq.state.iloc[first] == "halted" and (eq.state.iloc[:first] != "halted").all()
    halted_at = eq.ts.iloc[first]
    assert (res.orders.ts <= halted_at).all()  # the flatten orders, then nothing
    decided = res.fills.order_id.map(res.orders.set_index("order_id").ts)
    signed = np.where(res.fills.side == "buy", 1, -1) * res.fills.qty
    fills = res.fills.assign(n=signed, decided=decided)
    position = fills[fills.decided < halted_at].groupby("symbol").n.sum()
    position = position[position.abs() > 1e-12]
    sent = res.orders[res.orders.ts == halted_at]
    assert sorted(sent.symbol) == sorted(position.index)  # one closing order per position
    if first == len(eq) - 1:
        return  # halted at the last bar: no later bar to fill on
    closing = fills[fills.decided == halted_at].set_index("symbol").n
    assert np.allclose(closing.reindex(position.index), -position)  # flat at the next fills
    assert eq.gross_exposure.iloc[first + 1] == 0.0


def test_freeze_keeps_positions_and_flatten_closes_them():
    bars = random_walk(3, 150, seed=11)
    cfg = BacktestConfig(strategy=StrategyConfig(max_gross_leverage=3.0))
    flat = run_backtest(
        bars, TimeSeriesMomentum(3), replace(cfg, risk=RiskLimits(max_drawdown=0.005))
    )
    frozen = run_backtest(
        bars,
        TimeSeriesMomentum(3),
        replace(cfg, risk=RiskLimits(max_drawdown=0.005, on_halt="freeze")),
    )
    assert flat.state_changes[-1].new is TradingState.HALTED
    last = flat.equity.iloc[-1]
    assert last.gross_exposure == 0.0 and frozen.equity.iloc[-1].gross_exposure > 0


# --- fail closed, escalation, data quality ------------------------------------------------------
class BrokenPortfolio(Portfolio):
    """A portfolio whose valuation raises from the ``fail_at``-th call on."""

    def __init__(self, fail_at: int) -> None:
        super().__init__(SYMS, 10_000.0)
        self.calls, self.fail_at = 0, fail_at

    def valuation(self):
        self.calls += 1
        if self.calls >= self.fail_at:
            raise ZeroDivisionError("injected")
        return super().valuation()


def step_over(p: Portfolio) -> DecisionStep:
    risk = RiskEngine(RiskLimits(max_drawdown=0.5), p)
    return DecisionStep(Strategy(StrategyConfig()), risk, p, np.zeros(3))


def batch(t: int, weights=(0.3, 0.3, 0.3)) -> DecisionBatch:
    w = np.array(weights)
    return DecisionBatch(t, np.arange(3), np.array([10.0, 20.0, 50.0]), lambda: w)


@given(fail_at=st.integers(1, 6))
def test_an_exception_in_pnl_halts_and_flattens(fail_at):
    p = BrokenPortfolio(fail_at)
    step = step_over(p)
    open_orders = OpenOrders.empty(3)
    for t in range(1, 8):
        d = step.run(batch(t), open_orders)
        if d.state is TradingState.HALTED:
            break
        for s, n in zip(d.sym.tolist(), d.lots.tolist(), strict=True):
            trade(p, s, n, float(p.last_price[s]))
    assert t == fail_at and d.state is TradingState.HALTED and math.isnan(d.equity)
    assert "risk computation failed: ZeroDivisionError" in step.risk.machine.history[-1].reason
    held = np.flatnonzero(p.position_lots)
    assert d.sym.tolist() == held.tolist() and d.reduce_only == bool(held.size)
    assert (d.lots == -p.position_lots[held]).all() and not d.codes.any()
    assert held.size or fail_at == 1  # positions exist once the first decision traded


def test_non_finite_equity_halts():
    _, risk = book(RiskLimits())
    assert risk.on_mark(1, float("nan")) is TradingState.HALTED
    assert risk.machine.history[-1].reason.startswith("risk computation failed")


def test_journal_degraded_reduces_and_lost_halts_until_resumed():
    p, risk = book(RiskLimits(max_drawdown=0.5))
    trade(p, 0, 100, 10.0)
    assert risk.on_journal(1, JournalHealth.DEGRADED) is TradingState.REDUCING
    assert risk.check("A", 10, 10.0, 1) == Denied(DenyReason.REDUCING_ONLY)
    assert risk.check("A", -10, 10.0, 1).ok
    assert risk.on_journal(2, JournalHealth.OK) is TradingState.ACTIVE
    assert risk.on_journal(3, JournalHealth.LOST) is TradingState.HALTED
    assert risk.flatten_pending and risk.on_mark(4) is TradingState.HALTED
    assert risk.check("A", -10, 10.0, 5) == Denied(DenyReason.HALTED)
    assert risk.resume(6) is TradingState.ACTIVE and not risk.flatten_pending
    assert [c.reason for c in risk.machine.history][-2:] == ["journal lost data", "operator resume"]


def test_a_bad_book_makes_only_its_symbol_reducing():
    inst = Instrument.create("A", "0.01", "1", "0")
    ob = OrderBook(inst)
    assert book_quality(ob, 0) == "no snapshot yet"
    ob.apply_snapshot([(999, 5)], [(1001, 5)], ts_ns=1_000)
    assert book_quality(ob, 2_000, max_age_ns=5_000) == ""
    assert book_quality(ob, 10_000, max_age_ns=5_000).startswith("stale book")
    ob.apply_diff([(1, 1002, 3)], ts_ns=3_000)  # a bid above the ask
    assert book_quality(ob, 3_000) == "crossed book"
    ob.apply_snapshot([(999, 5)], [(1001, 5)], ts_ns=4_000)
    ob.mark_untradable("sequence gap")
    assert book_quality(ob, 4_000) == "sequence gap"
    p, risk = book(RiskLimits(max_drawdown=0.5))
    trade(p, 0, 50, 10.0)
    risk.on_book_quality(0, book_quality(ob, 4_000))
    assert risk.symbol_state(0) is TradingState.REDUCING and risk.state is TradingState.ACTIVE
    assert risk.check("A", 5, 10.0, 0) == Denied(DenyReason.SYMBOL_REDUCING)
    assert risk.check("A", -60, 10.0, 0) == Denied(DenyReason.SYMBOL_REDUCING)  # would flip
    assert risk.check("A", -5, 10.0, 0).ok and risk.check("B", 5, 20.0, 0).ok
    risk.on_book_quality(0, "")
    assert risk.check("A", 5, 10.0, 0).ok


def test_a_batch_with_a_repeated_symbol_is_refused():
    _, risk = book(RiskLimits())
    with pytest.raises(ValueError, match="one order per symbol"):
        risk.check_batch(0, np.array([0, 0]), np.ones(2), np.full(2, 10.0))


def test_denial_reasons_are_an_enum_with_labels():
    assert DenyReason.POSITION.label == "position limit" == LABELS[DenyReason.POSITION]
    assert DenyReason.from_code(np.int8(8)) is DenyReason.RATE
    assert Denied(DenyReason.VAR).reason == "portfolio VaR limit"
    assert len(set(LABELS)) == len(DenyReason)


# --- saved state --------------------------------------------------------------------------------
events = st.lists(
    st.one_of(
        st.tuples(st.just("mark"), st.integers(0, 2), st.floats(-0.04, 0.04)),
        st.tuples(st.just("order"), st.integers(0, 2), st.integers(-80, 80).filter(bool)),
        st.tuples(st.just("quality"), st.integers(0, 2), st.booleans()),
        st.tuples(st.just("journal"), st.integers(0, 1), st.booleans()),
    ),
    min_size=1,
    max_size=25,
)
SAVE_LIMITS = RiskLimits(
    max_position_notional=3_000,
    max_gross_notional=5_000,
    max_orders_per_window=3,
    rate_window_ns=4,
    max_drawdown=0.05,
    max_var=150.0,
)


def play(p: Portfolio, risk: RiskEngine, evs, t0: int) -> list:
    out = []
    for k, (kind, sym, x) in enumerate(evs):
        t = t0 + k
        if kind == "mark":
            p.last_price[sym] *= 1 + x
            out.append(risk.on_mark(t))
        elif kind == "order":
            decision = risk.check(SYMS[sym], float(x), float(p.last_price[sym]), t)
            out.append(decision)
            if decision.ok:
                trade(p, sym, x, float(p.last_price[sym]))
        elif kind == "quality":
            risk.on_book_quality(sym, "stale book" if x else "")
        else:
            health = JournalHealth.DEGRADED if x else JournalHealth.OK
            out.append(risk.on_journal(t, health))
        out.append((risk.state, risk.flatten_pending, risk.symbol_reducing.tolist()))
    return out


def copy_portfolio(p: Portfolio) -> Portfolio:
    q = Portfolio(p.symbols, p.initial_cash)
    q.cash, q.position_lots[:], q.avg_price[:] = p.cash, p.position_lots, p.avg_price
    q.last_price[:], q.realized[:] = p.last_price, p.realized
    return q


@settings(max_examples=80, deadline=None)
@given(before=events, after=events)
def test_save_restore_gives_identical_subsequent_decisions(before, after):
    p, risk = book(SAVE_LIMITS)
    play(p, risk, before, 0)
    saved = json.loads(json.dumps(risk.snapshot().to_dict()))
    q = copy_portfolio(p)
    restored = RiskEngine(SAVE_LIMITS, q)
    restored.restore(RiskSnapshot.from_dict(saved))
    assert restored.snapshot().to_dict() == risk.snapshot().to_dict()
    t0 = len(before)
    assert play(q, restored, after, t0) == play(p, risk, after, t0)


def test_a_snapshot_for_another_universe_or_malformed_is_refused():
    _, risk = book(RiskLimits())
    with pytest.raises(ValueError, match="different universe"):
        risk.restore(replace(risk.snapshot(), symbol_quality=("",)))
    with pytest.raises(ValueError, match="malformed risk snapshot"):
        RiskSnapshot.from_dict({"state": "active"})
    with pytest.raises(ValueError, match="VaR limit"):
        RiskEngine(RiskLimits(max_var=1.0), Portfolio(SYMS, 1.0)).restore(risk.snapshot())
