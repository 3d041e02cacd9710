import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rrr_live.domain.events import Fill, Liquidity
from rrr_live.domain.orders import Side
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.risk.reasons import LABELS, DenyReason
from rrr_live.risk.state import Approved, Denied, TradingState


def fill(symbol: str, side: Side, lots: int, price: float, fee: float = 0.0) -> Fill:
    return Fill(
        0, 1, symbol, side, round(price * 100), lots, price, float(lots), fee, Liquidity.TAKER
    )


def test_average_cost_realized_and_unrealized_pnl():
    p = Portfolio(["A"], 1000.0)
    p.apply_fill(fill("A", Side.BUY, 10, 10.0, fee=1.0))
    p.apply_fill(fill("A", Side.BUY, 10, 12.0))
    assert p.avg_price[0] == pytest.approx(11.0)
    p.apply_fill(fill("A", Side.SELL, 5, 13.0))
    assert p.realized[0] == pytest.approx(10.0) and p.position("A") == 15
    p.apply_fill(fill("A", Side.SELL, 20, 9.0))  # closes 15, opens 5 short at 9
    assert p.realized[0] == pytest.approx(10.0 + 15 * (9.0 - 11.0))
    assert p.position("A") == -5 and p.avg_price[0] == 9.0
    p.mark_symbol("A", 8.0)
    assert p.unrealized()[0] == pytest.approx(5.0)
    assert p.equity() - 1000.0 == pytest.approx(p.realized.sum() + p.unrealized().sum() - 1.0)
    assert p.gross_exposure() == pytest.approx(40.0) and p.net_exposure() == pytest.approx(-40.0)


def test_equity_curve_and_high_water_mark():
    p = Portfolio(["A"], 100.0)
    p.apply_fill(fill("A", Side.BUY, 10, 10.0))
    for ts, px in enumerate([10.0, 12.0, 9.0]):
        p.mark_symbol("A", px)
        p.record(ts)
    ts, eq = p.equity_curve()
    assert ts.tolist() == [0, 1, 2] and eq.tolist() == [100.0, 120.0, 90.0]
    assert p.high_water_mark == 120.0 and p.drawdown() == pytest.approx(0.25)


trades = st.lists(
    st.tuples(
        st.sampled_from(["A", "B"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 50),
        st.integers(1, 50_000).map(lambda t: t / 100),
        st.floats(0, 5),
    ),
    max_size=40,
)


@given(trades)
def test_portfolio_conservation(ts):
    p = Portfolio(["A", "B"], 10_000.0)
    for sym, side, lots, price, fee in ts:
        p.apply_fill(fill(sym, side, lots, price, fee))
    for sym in ("A", "B"):
        assert p.position(sym) == sum(lt * int(sd) for s, sd, lt, _, _ in ts if s == sym)
    flows = [-lt * int(sd) * px for _, sd, lt, px, _ in ts] + [-f for *_, f in ts]
    assert p.cash == pytest.approx(10_000.0 + math.fsum(flows), rel=1e-12, abs=1e-6)
    assert p.fees_paid == pytest.approx(math.fsum(f for *_, f in ts), abs=1e-9)
    identity = p.initial_cash + p.realized.sum() + p.unrealized().sum() - p.fees_paid
    assert p.equity() == pytest.approx(identity, rel=1e-9, abs=1e-6)


def test_batch_and_scalar_fills_agree():
    a, b = Portfolio(["A", "B"], 0.0), Portfolio(["A", "B"], 0.0)
    a.apply_fills(np.array([0, 1]), np.array([3, -2]), np.array([10.0, 20.0]), np.array([0.1, 0.2]))
    b.apply_fill(fill("A", Side.BUY, 3, 10.0, 0.1))
    b.apply_fill(fill("B", Side.SELL, 2, 20.0, 0.2))
    assert a.cash == pytest.approx(b.cash) and a.position_lots.tolist() == b.position_lots.tolist()
    with pytest.raises(ValueError, match="unique"):
        a.apply_fills(np.array([0, 0]), np.array([1, 1]), np.ones(2), np.zeros(2))


# --- risk ---------------------------------------------------------------------------------------
def make(limits: RiskLimits) -> tuple[Portfolio, RiskEngine]:
    p = Portfolio(["A", "B"], 1_000.0)
    p.mark_symbol("A", 10.0)
    p.mark_symbol("B", 10.0)
    return p, RiskEngine(limits, p)


def test_pre_trade_limits_name_the_reason():
    p, risk = make(
        RiskLimits(
            max_position_notional=500,
            max_gross_notional=800,
            max_net_notional=600,
            max_order_notional=400,
            price_band_bps=100,
            max_drawdown=0.5,
        )
    )
    assert risk.check("A", 30, 10.0, 0) == Approved()
    assert risk.check("A", 50, 10.0, 0) == Denied(DenyReason.ORDER_NOTIONAL)
    assert risk.check("A", 10, 10.0, 0, limit_price=10.2, mid=10.0) == Denied(DenyReason.PRICE_BAND)
    p.apply_fill(fill("A", Side.BUY, 40, 10.0))
    assert risk.check("A", 20, 10.0, 0) == Denied(DenyReason.POSITION)
    assert risk.check("A", -20, 10.0, 0) == Approved()  # reducing is always fine
    p.apply_fill(fill("B", Side.BUY, 20, 10.0))
    assert risk.check("B", 15, 10.0, 0) == Denied(DenyReason.NET)
    assert risk.check("B", -30, 10.0, 0) == Approved()  # net shrinks
    p.apply_fill(fill("B", Side.SELL, 60, 10.0))  # B = -40: gross 800, net 0
    assert risk.check("B", -5, 10.0, 0) == Denied(DenyReason.GROSS)


def test_batch_checks_are_sequential_in_batch_order():
    _, risk = make(RiskLimits(max_gross_notional=500, max_drawdown=0.5))
    codes = risk.check_batch(0, np.array([0, 1]), np.array([30.0, 30.0]), np.array([10.0, 10.0]))
    assert [LABELS[c] for c in codes] == ["", "gross notional limit"]


def test_order_rate_limit_window():
    _, risk = make(RiskLimits(max_orders_per_window=2, rate_window_ns=100, max_drawdown=0.5))
    codes = risk.check_batch(0, np.array([0, 1]), np.ones(2), np.full(2, 10.0))
    assert [LABELS[c] for c in codes] == ["", ""]
    codes = risk.check_batch(0, np.array([0]), np.ones(1), np.full(1, 10.0))
    assert [LABELS[c] for c in codes] == ["order rate limit"]
    assert risk.check("A", 1, 10.0, 99) == Denied(DenyReason.RATE)
    assert risk.check("A", 1, 10.0, 100) == Approved()


def test_price_move_breach_reduces_then_recovers_and_drawdown_halts():
    p, risk = make(RiskLimits(max_position_notional=500, max_drawdown=0.02))
    p.apply_fill(fill("A", Side.BUY, 45, 10.0))
    assert risk.on_mark(1) is TradingState.ACTIVE
    p.mark_symbol("A", 11.5)  # 517.5 > 500 by price alone
    assert risk.on_mark(2) is TradingState.REDUCING
    assert risk.check("A", 1, 11.5, 3) == Denied(DenyReason.REDUCING_ONLY)
    assert risk.check("A", -50, 11.5, 3) == Denied(DenyReason.REDUCING_ONLY)  # would flip
    assert risk.check("A", -5, 11.5, 3) == Approved()
    p.mark_symbol("A", 11.0)  # 495: within the limit, but equity 1045 vs high-water mark 1067.5
    assert risk.on_mark(4) is TradingState.HALTED  # 1 - 1045 / 1067.5 = 2.1 % >= 2 %
    assert risk.check("A", -1, 11.0, 5) == Denied(DenyReason.HALTED)
    assert [c.new for c in risk.machine.history] == [TradingState.REDUCING, TradingState.HALTED]
    risk.machine.reset(6)
    assert risk.state is TradingState.ACTIVE


def test_reducing_returns_to_active_when_the_breach_clears():
    p, risk = make(RiskLimits(max_gross_notional=500, max_drawdown=0.5))
    p.apply_fill(fill("A", Side.BUY, 45, 10.0))
    p.mark_symbol("A", 11.5)
    assert risk.on_mark(1) is TradingState.REDUCING
    p.mark_symbol("A", 11.0)
    assert risk.on_mark(2) is TradingState.ACTIVE


def test_equity_basis_scales_limits():
    _, risk = make(RiskLimits(max_position_notional=0.5, basis="equity", max_drawdown=0.5))
    assert risk.check("A", 50, 10.0, 0) == Approved()  # 500 <= 0.5 * 1000
    assert risk.check("A", 51, 10.0, 0) == Denied(DenyReason.POSITION)


class RiskInvariants(RuleBasedStateMachine):
    """Random fills, marks and orders: nothing passes while HALTED, REDUCING only reduces,
    and no approved order increases an exposure past its limit."""

    def __init__(self) -> None:
        super().__init__()
        self.limits = RiskLimits(
            max_position_notional=600,
            max_gross_notional=900,
            max_net_notional=700,
            max_drawdown=0.05,
        )
        self.p = Portfolio(["A", "B"], 1_000.0)
        self.p.mark_symbol("A", 10.0)
        self.p.mark_symbol("B", 10.0)
        self.risk = RiskEngine(self.limits, self.p)
        self.ts = 0

    @rule(sym=st.integers(0, 1), px=st.integers(500, 1500).map(lambda x: x / 100))
    def move_price(self, sym, px):
        self.p.mark(np.array([sym]), np.array([px]))
        self.ts += 1
        self.risk.on_mark(self.ts)

    @rule(sym=st.integers(0, 1), qty=st.integers(-80, 80).filter(bool))
    def order(self, sym, qty):
        price = float(self.p.last_price[sym])
        state = self.risk.state
        pos = float(self.p.positions()[sym])
        gross, net = self.p.gross_exposure(), self.p.net_exposure()
        decision = self.risk.check(self.p.symbols[sym], qty, price, self.ts)
        if not decision.ok:
            return
        post = pos + qty
        assert state is not TradingState.HALTED
        if state is TradingState.REDUCING:
            assert abs(post) < abs(pos) and post * pos >= 0
        if abs(post) > abs(pos):
            assert abs(post) * price <= self.limits.max_position_notional + 1e-9
            assert gross + (abs(post) - abs(pos)) * price <= self.limits.max_gross_notional + 1e-9
        if abs(net + qty * price) > abs(net):
            assert abs(net + qty * price) <= self.limits.max_net_notional + 1e-9
        side = Side.BUY if qty > 0 else Side.SELL
        self.p.apply_fill(fill(self.p.symbols[sym], side, abs(qty), price))
        self.p.mark(np.array([sym]), np.array([price]))

    @precondition(lambda self: self.risk.state is TradingState.HALTED)
    @rule()
    def halted_is_sticky(self):
        self.ts += 1
        assert self.risk.on_mark(self.ts) is TradingState.HALTED

    @invariant()
    def drawdown_at_limit_means_halted(self):
        if self.ts and self.p.drawdown() >= self.limits.max_drawdown:
            assert self.risk.state is TradingState.HALTED


TestRiskInvariants = RiskInvariants.TestCase
TestRiskInvariants.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
