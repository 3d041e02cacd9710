"""The venue simulation behind client order ids, fed domain market-data events."""

import pytest

from rrr_live.domain.errors import UnknownOrderError
from rrr_live.domain.events import ExecKind, Liquidity, TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind, TopOfBook
from rrr_live.domain.orders import OrderStatus, OrderType, Side, TimeInForce
from rrr_live.execution.models import FeeModel, LatencyModel
from rrr_live.execution.venue import (
    OrderRequest,
    SimulatedBroker,
    SimulatedVenue,
    VenueRequestError,
)

X = Instrument.create("X", "0.01", "1", "0")
Y = Instrument.create("Y", "0.5", "1", "0")
FEES = FeeModel(maker_rate=-0.0001, taker_rate=0.001)


def snapshot(symbol: str, ts: int, bids, asks) -> BookUpdate:
    return BookUpdate(BookUpdateKind.SNAPSHOT, symbol, ts, tuple(bids), tuple(asks))


def venue(latency_ns: int = 0) -> SimulatedVenue:
    v = SimulatedVenue([X, Y], FEES, LatencyModel(base_ns=latency_ns))
    v.on_market(snapshot("X", 1, [(9_990, 50)], [(10_000, 30), (10_010, 100)]))
    v.on_market(snapshot("Y", 1, [(100, 5)], [(102, 5)]))
    return v


def test_market_order_fills_after_latency_with_client_ids_and_taker_fees():
    v = venue(latency_ns=10)
    v.submit(OrderRequest("c-1", "X", Side.BUY, OrderType.MARKET, 50, tif=TimeInForce.IOC), 5)
    assert v.advance(14) == []  # still in flight
    reports = v.on_market(BookUpdate(BookUpdateKind.DIFF, "X", 20, (), ((10_000, 10),)))
    # the order arrived at 15, before the diff at 20: it met 30 at 100.00 and 20 at 100.10
    fills = [
        (r.client_id, r.report.fill.price_ticks, r.report.fill.qty_lots)
        for r in reports
        if r.report.fill
    ]
    assert fills == [("c-1", 10_000, 30), ("c-1", 10_010, 20)]
    fee = reports[-1].report.fill.fee
    assert fee == pytest.approx(0.001 * 20 * 100.10) and v.order("c-1").status is OrderStatus.FILLED


def test_resting_limit_fills_from_trades_as_maker_and_cancel_by_client_id():
    v = venue()
    v.submit(OrderRequest("bid", "X", Side.BUY, OrderType.LIMIT, 20, price_ticks=9_990), 2)
    v.submit(OrderRequest("y", "Y", Side.SELL, OrderType.LIMIT, 3, price_ticks=103), 2)
    v.advance(2)
    reports = v.on_market(TradeTick(3, "X", 9_990, 60, Side.SELL, trade_id=7))
    fill = reports[0].report.fill
    assert reports[0].client_id == "bid" and fill.qty_lots == 10  # 50 queued ahead
    assert fill.liquidity is Liquidity.MAKER and fill.fee == pytest.approx(-0.0001 * 10 * 99.9)
    assert [o.order_id for o in v.open_orders("X")] == [v.order("bid").order_id]
    v.cancel("y", 4)
    (canceled,) = v.advance(4)
    assert canceled.client_id == "y" and canceled.report.kind is ExecKind.CANCELED
    assert v.on_market(TopOfBook("X", 5, 9_990, 1, 10_000, 1)) == []  # no depth: no change


def test_bad_requests_are_refused_with_a_reason():
    v = venue()
    req = OrderRequest("dup", "X", Side.BUY, OrderType.MARKET, 1, tif=TimeInForce.IOC)
    v.submit(req, 1)
    with pytest.raises(VenueRequestError, match="already used"):
        v.submit(req, 1)
    with pytest.raises(VenueRequestError, match="not traded here"):
        v.submit(OrderRequest("z", "Z", Side.BUY, OrderType.MARKET, 1, tif=TimeInForce.IOC), 1)
    with pytest.raises(UnknownOrderError, match="unknown client order id"):
        v.cancel("nope", 1)
    with pytest.raises(ValueError, match="MARKET order cannot rest"):
        v.submit(OrderRequest("gtc", "X", Side.BUY, OrderType.MARKET, 1), 1)
    broker = SimulatedBroker(v)
    with pytest.raises(ValueError, match="is not order id"):
        broker.send(
            5, OrderRequest("6", "X", Side.BUY, OrderType.MARKET, 1, tif=TimeInForce.IOC), 1
        )


def test_broker_reports_under_our_order_ids():
    broker = SimulatedBroker(venue())
    req = OrderRequest("41", "Y", Side.BUY, OrderType.MARKET, 2, tif=TimeInForce.IOC)
    broker.send(41, req, 3)
    ((oid, rep), *_rest) = [x for x in broker.advance(3) if x[1].fill]
    assert oid == 41 and rep.fill.price_ticks == 102 and rep.fill.price == 51.0


def test_advance_answers_in_universe_order_and_only_engines_with_requests_in_flight():
    v = venue(latency_ns=10)
    v.submit(OrderRequest("y", "Y", Side.BUY, OrderType.LIMIT, 1, price_ticks=100), 5)
    v.submit(OrderRequest("x", "X", Side.BUY, OrderType.LIMIT, 1, price_ticks=9_980), 6)
    assert v.advance(14) == []  # neither has arrived
    assert [r.client_id for r in v.advance(16)] == ["x", "y"]  # X before Y, as listed
    assert v.advance(100) == []  # nothing left in flight
    v.cancel("y", 101)
    assert [(r.client_id, r.report.kind) for r in v.advance(111)] == [("y", ExecKind.CANCELED)]
    assert [o.order_id for o in v.open_orders("X")] == [v.order("x").order_id]
