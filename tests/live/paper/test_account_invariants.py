"""The paper account's books balance for any order sequence against the replayed tape."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_live.domain.instrument import Instrument
from rrr_live.domain.orders import Side
from rrr_live.exchange.paper.account import Asset, Balance, NewOrder, PaperAccount
from rrr_live.exchange.paper.errors import BinanceError
from rrr_live.exchange.synthetic import synthetic_tape
from rrr_live.execution.models import FeeModel, LatencyModel

TAPE = list(synthetic_tape("binance", 1, 600, rate=1000.0, seed=9).events)
SYMBOL = "SYN0000USDT"
START = {"USDT": Decimal(5000), "SYN0000": Decimal(20)}

order = st.tuples(
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from(["LIMIT", "MARKET", "LIMIT_MAKER"]),
    st.integers(1, 4000),  # lots of 0.001
    st.integers(-20, 20),  # ticks away from the touch
    st.integers(0, 60),  # tape events before the next action
    st.booleans(),  # cancel the oldest open order first
)


def _account(latency_ns: int) -> PaperAccount:
    inst = Instrument.create(SYMBOL, "0.01", "0.001", "1", "USDT")
    return PaperAccount(
        {SYMBOL: Asset(inst, "SYN0000", "USDT")},
        {k: Balance(v) for k, v in START.items()},
        FeeModel(-0.0001, 0.001),
        LatencyModel(latency_ns),
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(order, min_size=1, max_size=25), st.sampled_from([0, 3_000_000]))
def test_balances_equal_start_plus_trades(actions: list[tuple], latency_ns: int) -> None:
    acc, tape = _account(latency_ns), iter(TAPE)
    for event in tape:  # the seeding snapshots
        acc.on_tape(event)
        if event.channel:
            break
    for side, kind, lots, away, steps, cancel in actions:
        for event in [e for _, e in zip(range(steps), tape, strict=False)]:
            acc.on_tape(event)
        if cancel and acc.open_by_client:
            acc.cancel(acc.orders[min(acc.open_by_client.values())])
        touch = acc.best(SYMBOL, Side.BUY)
        price = None if kind == "MARKET" else (touch or Decimal(100)) + Decimal(away) / 100
        new = NewOrder(SYMBOL, side, kind, "IOC" if kind == "MARKET" else "GTC",
                       Decimal(lots) / 1000, price, f"c{len(acc.orders)}")  # fmt: skip
        try:
            acc.place(new)
        except BinanceError as err:
            assert err.code == -2010
    _check(acc, latency_ns)


def _check(acc: PaperAccount, latency_ns: int) -> None:
    delta = {"USDT": Decimal(0), "SYN0000": Decimal(0)}
    for t in acc.trades:
        sign = 1 if t["isBuyer"] else -1
        delta["SYN0000"] += sign * Decimal(t["qty"])
        delta["USDT"] -= sign * Decimal(t["quoteQty"]) + Decimal(t["commission"])
    for asset, bal in acc.balances.items():
        assert bal.free + bal.locked == START[asset] + delta[asset]
        assert bal.locked >= 0
        assert bal.free >= 0 or latency_ns  # with latency the book can move before the fill
    open_locks = {"USDT": Decimal(0), "SYN0000": Decimal(0)}
    for o in acc.orders.values():
        if o.is_open:
            open_locks["USDT" if o.side == "BUY" else "SYN0000"] += o.lock_left
        else:
            assert o.lock_left == 0 and o.client_id not in acc.open_by_client
        assert o.executed == sum(Decimal(t["qty"]) for t in acc.trades_of(o.order_id))
    assert {a: b.locked for a, b in acc.balances.items()} == open_locks
