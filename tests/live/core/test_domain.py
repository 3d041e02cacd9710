from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rrr_live.clock import LiveClock, SimulatedClock
from rrr_live.domain.errors import InstrumentError, InvalidOrderTransition
from rrr_live.domain.instrument import Instrument, Rounding, to_grid_against, to_grid_array
from rrr_live.domain.orders import (
    VALID_TRANSITIONS,
    Order,
    OrderIdGenerator,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)


def btc() -> Instrument:
    return Instrument.create("BTC-USD", "0.01", "0.00001", "10")


def test_instrument_precision_and_scaled_conversions():
    inst = btc()
    assert inst.price_precision == 2 and inst.size_precision == 5
    assert inst.price_to_ticks("43250.17") == 4325017
    assert inst.price_to_ticks(0.3) == 30  # float noise snaps to the grid
    assert inst.price_to_ticks(100.004, Rounding.DOWN) == 10000
    assert inst.price_to_ticks(100.004, Rounding.UP) == 10001
    assert inst.price_to_ticks("100.005") == 10000  # banker's rounding at exactly half
    assert inst.size_to_lots("0.123456") == 12345  # sizes round down by default
    assert inst.size_to_lots(0.123456, Rounding.UP) == 12346
    assert inst.ticks_to_decimal(4325017) == Decimal("43250.17")
    assert inst.lots_to_size(12345) == pytest.approx(0.12345)
    assert inst.notional(10000, 100000) == pytest.approx(100.0)


def test_min_notional_is_exact():
    inst = btc()  # 10 USD minimum
    assert inst.min_notional_units == 100_000_000  # 10 / (0.01 * 0.00001)
    assert inst.meets_min_notional(100000, 1000)  # 1000.00 * 0.01 = 10.00 exactly
    assert not inst.meets_min_notional(99999, 1000)


def test_instrument_rejects_bad_definitions():
    with pytest.raises(InstrumentError, match="tick_size"):
        Instrument.create("X", "0", "1")
    with pytest.raises(InstrumentError, match="min_notional"):
        Instrument.create("X", "0.01", "1", "-1")
    with pytest.raises(InstrumentError, match="not a number"):
        Instrument.create("X", "abc", "1")
    with pytest.raises(InstrumentError, match="non-finite"):
        btc().price_to_ticks(float("nan"))


def test_grid_array_and_against_rounding():
    values = np.array([100.004, 100.0, 99.996])
    assert to_grid_array(values, 0.01, Rounding.DOWN).tolist() == [10000, 10000, 9999]
    assert to_grid_array(values, 0.01, Rounding.UP).tolist() == [10001, 10000, 10000]
    side = np.array([1, -1, 1])
    assert to_grid_against(values, np.full(3, 0.01), side).tolist() == [10001, 10000, 10000]


def test_grid_price_factors_give_correctly_rounded_floats():
    mul, div = btc().grid_price_factors()
    assert 4325017 * mul / div == 43250.17
    mul, div = Instrument.create("Y", "5", "1").grid_price_factors()
    assert 7 * mul / div == 35.0


@given(st.integers(min_value=1, max_value=10**9))
def test_ticks_roundtrip(ticks):
    inst = btc()
    assert inst.price_to_ticks(inst.ticks_to_decimal(ticks)) == ticks
    assert inst.price_to_ticks(inst.ticks_to_price(ticks)) == ticks


def test_order_validation():
    with pytest.raises(ValueError, match="LIMIT order needs price"):
        Order(1, "X", Side.BUY, OrderType.LIMIT, 10)
    with pytest.raises(ValueError, match="cannot rest"):
        Order(1, "X", Side.BUY, OrderType.MARKET, 10)
    with pytest.raises(ValueError, match="post_only"):
        Order(1, "X", Side.BUY, OrderType.LIMIT, 10, 5, TimeInForce.IOC, post_only=True)
    with pytest.raises(ValueError, match="qty_lots"):
        Order(1, "X", Side.BUY, OrderType.MARKET, 0, tif=TimeInForce.IOC)


def test_order_state_machine_examples():
    o = Order(1, "X", Side.BUY, OrderType.LIMIT, 10, 100)
    with pytest.raises(InvalidOrderTransition):
        o.fill(1, 100)  # not accepted yet
    o.transition(OrderStatus.ACCEPTED)
    o.fill(4, 100)
    o.fill(2, 103)
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.leaves_lots == 4
    assert o.avg_fill_ticks == pytest.approx((4 * 100 + 2 * 103) / 6)
    with pytest.raises(InvalidOrderTransition):
        o.fill(5, 100)
    o.transition(OrderStatus.CANCELED)
    assert o.status.is_terminal
    with pytest.raises(InvalidOrderTransition):
        o.transition(OrderStatus.ACCEPTED)


class OrderMachine(RuleBasedStateMachine):
    """Random operations; the order must only ever make transitions in VALID_TRANSITIONS."""

    def __init__(self) -> None:
        super().__init__()
        self.order = Order(1, "X", Side.SELL, OrderType.LIMIT, 20, 50)
        self.seen: list[tuple[OrderStatus, OrderStatus]] = []

    def _attempt(self, action) -> None:
        before = self.order.status
        filled = self.order.filled_lots
        try:
            action()
        except InvalidOrderTransition:
            assert self.order.status is before and self.order.filled_lots == filled
            return
        self.seen.append((before, self.order.status))

    @rule(new=st.sampled_from(list(OrderStatus)))
    def transition(self, new):
        self._attempt(lambda: self.order.transition(new))

    @rule(lots=st.integers(min_value=-2, max_value=25))
    def fill(self, lots):
        self._attempt(lambda: self.order.fill(lots, 50))

    @rule(qty=st.integers(min_value=1, max_value=40))
    def amend(self, qty):
        self._attempt(lambda: self.order.amend(qty, 51))

    @invariant()
    def only_valid_transitions(self):
        for before, after in self.seen:
            assert after is before or after in VALID_TRANSITIONS[before]
        assert 0 <= self.order.filled_lots <= self.order.qty_lots
        if self.order.status is OrderStatus.FILLED:
            assert self.order.filled_lots == self.order.qty_lots


TestOrderMachine = OrderMachine.TestCase


def test_ids_and_clocks():
    ids = OrderIdGenerator(7)
    assert [ids.next_id() for _ in range(3)] == [7, 8, 9]
    clock = SimulatedClock(100)
    assert clock.advance(50) == 150
    clock.set(200)
    assert clock.now_ns() == 200
    with pytest.raises(ValueError, match="backwards"):
        clock.set(199)
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert LiveClock().now_ns() > 1_600_000_000 * 10**9
