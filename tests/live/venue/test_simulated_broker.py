"""The Broker protocol over the in-process venue simulation (the backtest's venue)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind
from rrr_live.execution.venue import SimulatedVenue
from rrr_live.venue.broker import Broker
from rrr_live.venue.model import Decision, OrderIntent, client_order_id
from rrr_live.venue.simulated import SimulatedVenueBroker, client_ids

pytestmark = pytest.mark.asyncio
INST = Instrument.create("BTCUSDT", "0.01", "0.001", 0, "USDT")


def _intent(seq: int, side: str, qty: str, price: str) -> OrderIntent:
    d = Decision("m", "fs", seq)
    return OrderIntent(client_order_id("sim", d), "sim", "BTCUSDT", side, "LIMIT",
                       Decimal(qty), Decimal(price), d)  # fmt: skip


async def _drive(broker: Broker, intent: OrderIntent) -> str:
    """A driver written against the protocol only."""
    return (await broker.submit(intent)).state


async def test_simulated_broker_speaks_the_protocol() -> None:
    broker = SimulatedVenueBroker(SimulatedVenue([INST]))
    snap = BookUpdate(
        BookUpdateKind.SNAPSHOT, "BTCUSDT", 10, ((10_000, 5_000),), ((10_010, 5_000),)
    )
    broker.on_market(snap)
    take, rest = _intent(1, "BUY", "2", "100.10"), _intent(2, "BUY", "1", "99.50")
    assert await _drive(broker, take) == "FILLED"
    assert (await broker.query(take.client_id)).filled_qty == 2  # type: ignore[union-attr]
    assert take.client_id in client_ids(broker.reports)  # accepted and filled on arrival
    assert await _drive(broker, rest) == "NEW"
    assert [s.client_id for s in await broker.open_orders()] == [rest.client_id]
    assert (await broker.cancel(rest.client_id)).state == "CANCELED"
    assert await broker.open_orders() == []
    assert await broker.query("sim-ff-0") is None
    reports = broker.on_market(BookUpdate(BookUpdateKind.DIFF, "BTCUSDT", 20, (), ((10_010, 0),)))
    assert client_ids(reports) == []
