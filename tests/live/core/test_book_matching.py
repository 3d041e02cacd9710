import pytest

from rrr_live.book.l2 import BookState, OrderBook
from rrr_live.domain.errors import BookError, UnknownOrderError
from rrr_live.domain.events import ExecKind, Liquidity
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.orders import Order, OrderStatus, OrderType, Side, TimeInForce
from rrr_live.execution.matching import MatchingEngine
from rrr_live.execution.models import FeeModel, LatencyModel

INST = Instrument.create("X", "0.01", "1", "0")
BIDS = [(9900, 10), (9800, 20)]
ASKS = [(10000, 5), (10100, 10), (10200, 20)]
FEES = FeeModel(maker_rate=-0.0001, taker_rate=0.0005)


def engine(latency: LatencyModel | None = None, inst: Instrument = INST) -> MatchingEngine:
    eng = MatchingEngine(inst, FEES, latency)
    eng.on_snapshot(BIDS, ASKS, ts_ns=1)
    return eng


def send(eng: MatchingEngine, order: Order, ts: int = 2):
    eng.submit(order, ts)
    return eng.advance(ts)


def fills(reports):
    return [(r.fill.price_ticks, r.fill.qty_lots, r.fill.liquidity) for r in reports if r.fill]


# --- book -------------------------------------------------------------------------------------
def test_book_snapshot_diff_top_and_mid():
    book = OrderBook(INST)
    assert book.state is BookState.UNTRADABLE
    book.apply_snapshot(BIDS, ASKS, ts_ns=10, sequence=5)
    assert book.state is BookState.TRADABLE
    assert book.best_bid() == (9900, 10) and book.best_ask() == (10000, 5)
    assert book.mid_price() == pytest.approx(99.5) and book.spread_ticks() == 100
    assert book.apply_diff([(Side.BUY, 9950, 3), (Side.SELL, 10000, 0)], ts_ns=11, sequence=6)
    assert book.top(2) == ([(9950, 3), (9900, 10)], [(10100, 10), (10200, 20)])
    assert not book.apply_diff([(Side.BUY, 9950, 99)], ts_ns=12, sequence=6)  # stale
    assert book.size_at(Side.BUY, 9950) == 3 and book.last_sequence == 6
    assert list(book.levels(Side.SELL)) == [(10100, 10), (10200, 20)]


def test_book_crossed_and_untradable_states():
    book = OrderBook(INST)
    with pytest.raises(BookError, match="before the first snapshot"):
        book.apply_diff([(Side.BUY, 1, 1)], ts_ns=1)
    book.apply_snapshot(BIDS, ASKS, ts_ns=1)
    book.apply_diff([(Side.BUY, 10000, 1)], ts_ns=2)
    assert book.is_crossed() and book.untradable_reason() == "crossed book"
    book.apply_diff([(Side.BUY, 10000, 0)], ts_ns=3)
    assert book.state is BookState.TRADABLE
    book.mark_untradable("sequence gap")
    assert book.state is BookState.UNTRADABLE and book.untradable_reason() == "sequence gap"
    book.apply_snapshot(BIDS, ASKS, ts_ns=4)
    assert book.state is BookState.TRADABLE
    book.apply_snapshot(BIDS, [], ts_ns=5)
    assert book.untradable_reason() == "one side empty"
    with pytest.raises(BookError, match="bad level"):
        book.apply_diff([(Side.SELL, 10000, -1)], ts_ns=6)


# --- taking liquidity ---------------------------------------------------------------------------
def test_market_order_walks_the_book_with_taker_fees():
    eng = engine()
    order = Order(1, "X", Side.BUY, OrderType.MARKET, 12, tif=TimeInForce.IOC)
    reports = send(eng, order)
    assert [r.kind for r in reports] == [ExecKind.ACCEPTED, ExecKind.FILL, ExecKind.FILL]
    assert fills(reports) == [(10000, 5, Liquidity.TAKER), (10100, 7, Liquidity.TAKER)]
    assert order.status is OrderStatus.FILLED
    fees = [r.fill.fee for r in reports if r.fill]
    assert fees == pytest.approx([5 * 100.0 * 0.0005, 7 * 101.0 * 0.0005])
    # the liquidity we took is not available again until the feed updates those levels
    again = send(eng, Order(2, "X", Side.BUY, OrderType.MARKET, 5, tif=TimeInForce.IOC), 3)
    assert fills(again) == [(10100, 3, Liquidity.TAKER), (10200, 2, Liquidity.TAKER)]
    eng.on_diff([(Side.SELL, 10000, 5)], ts_ns=4)
    third = send(eng, Order(3, "X", Side.BUY, OrderType.MARKET, 1, tif=TimeInForce.IOC), 5)
    assert fills(third) == [(10000, 1, Liquidity.TAKER)]


def test_ioc_fills_what_crosses_and_expires_the_rest():
    eng = engine()
    order = Order(1, "X", Side.BUY, OrderType.LIMIT, 10, 10050, TimeInForce.IOC)
    reports = send(eng, order)
    assert fills(reports) == [(10000, 5, Liquidity.TAKER)]
    assert reports[-1].kind is ExecKind.EXPIRED and order.status is OrderStatus.EXPIRED
    assert order.filled_lots == 5 and eng.open_orders() == []


def test_fok_fills_completely_or_not_at_all():
    eng = engine()
    big = Order(1, "X", Side.BUY, OrderType.LIMIT, 16, 10100, TimeInForce.FOK)
    reports = send(eng, big)
    assert fills(reports) == [] and big.status is OrderStatus.EXPIRED
    exact = Order(2, "X", Side.BUY, OrderType.LIMIT, 15, 10100, TimeInForce.FOK)
    reports = send(eng, exact, 3)
    assert fills(reports) == [(10000, 5, Liquidity.TAKER), (10100, 10, Liquidity.TAKER)]
    assert exact.status is OrderStatus.FILLED


def test_post_only_rejected_when_it_would_cross_and_rests_otherwise():
    eng = engine()
    crossing = Order(1, "X", Side.BUY, OrderType.LIMIT, 3, 10000, post_only=True)
    reports = send(eng, crossing)
    assert reports[0].kind is ExecKind.REJECTED and "post-only" in reports[0].reason
    assert crossing.status is OrderStatus.REJECTED
    passive = Order(2, "X", Side.BUY, OrderType.LIMIT, 3, 9950, post_only=True)
    reports = send(eng, passive, 3)
    assert [r.kind for r in reports] == [ExecKind.ACCEPTED]
    assert eng.open_orders() == [passive] and eng.queue_ahead(2) == 0


def test_min_notional_and_untradable_book_reject():
    inst = Instrument.create("X", "0.01", "1", "150")
    eng = engine(inst=inst)
    small = Order(1, "X", Side.BUY, OrderType.LIMIT, 1, 9900)  # 99.00 < 150
    assert send(eng, small)[0].reason.startswith("below min notional")
    market = Order(2, "X", Side.SELL, OrderType.MARKET, 1, tif=TimeInForce.IOC)  # 1 x 99.00
    assert send(eng, market, 3)[0].kind is ExecKind.REJECTED
    ok = Order(3, "X", Side.BUY, OrderType.LIMIT, 2, 9900)  # 198.00
    assert send(eng, ok, 4)[0].kind is ExecKind.ACCEPTED
    eng.book.mark_untradable("gap")
    late = Order(4, "X", Side.BUY, OrderType.LIMIT, 2, 9900)
    assert send(eng, late, 5)[0].reason == "book untradable: gap"


# --- resting orders, queue and priority ---------------------------------------------------------
def test_price_time_priority_and_partial_fills_from_trades():
    eng = engine()
    a = Order(1, "X", Side.BUY, OrderType.LIMIT, 5, 9900)
    b = Order(2, "X", Side.BUY, OrderType.LIMIT, 5, 9900)
    c = Order(3, "X", Side.BUY, OrderType.LIMIT, 5, 9950)
    for i, o in enumerate((a, b, c)):
        send(eng, o, 2 + i)
    assert eng.open_orders() == [c, a, b]  # better price first, then time
    assert eng.queue_ahead(1) == 10 and eng.queue_ahead(3) == 0
    r1 = eng.on_trade(9900, 13, Side.SELL, ts_ns=10)
    # a trade at 9900 went *through* C's 9950 bid, so C fills fully; then 10 public lots ahead
    # of A are consumed and A gets the remaining 3
    assert [(r.order_id, r.fill.qty_lots, r.fill.price_ticks) for r in r1] == [
        (3, 5, 9950),
        (1, 3, 9900),
    ]
    assert all(r.fill.liquidity is Liquidity.MAKER for r in r1)
    r2 = eng.on_trade(9900, 6, Side.SELL, ts_ns=11)
    assert [(r.order_id, r.fill.qty_lots) for r in r2] == [(1, 2), (2, 4)]
    assert a.status is OrderStatus.FILLED and b.status is OrderStatus.PARTIALLY_FILLED
    maker_fee = r2[0].fill.fee
    assert maker_fee == pytest.approx(-0.0001 * 2 * 99.0)


def test_queue_moves_up_when_level_shrinks_and_crossing_quote_fills_as_maker():
    eng = engine()
    a = Order(1, "X", Side.BUY, OrderType.LIMIT, 8, 9900)
    send(eng, a)
    eng.on_diff([(Side.BUY, 9900, 4)], ts_ns=3)
    assert eng.queue_ahead(1) == 4
    reports = eng.on_diff([(Side.SELL, 9900, 6)], ts_ns=4)  # an ask crosses our bid
    assert fills(reports) == [(9900, 6, Liquidity.MAKER)]
    assert a.status is OrderStatus.PARTIALLY_FILLED and a.leaves_lots == 2


def test_cancel_and_replace_semantics():
    eng = engine()
    a = Order(1, "X", Side.BUY, OrderType.LIMIT, 5, 9900)
    b = Order(2, "X", Side.BUY, OrderType.LIMIT, 5, 9900)
    send(eng, a)
    send(eng, b, 3)
    eng.replace(1, 4, qty_lots=3, price_ticks=None)  # smaller: keeps priority
    assert [r.kind for r in eng.advance(4)] == [ExecKind.REPLACED]
    assert eng.open_orders() == [a, b] and a.qty_lots == 3
    eng.replace(1, 5, qty_lots=4, price_ticks=None)  # larger: back of the queue
    eng.advance(5)
    assert eng.open_orders() == [b, a]
    eng.replace(2, 6, qty_lots=7, price_ticks=10000)  # now crosses: takes liquidity
    reports = eng.advance(6)
    assert fills(reports) == [(10000, 5, Liquidity.TAKER)]
    assert b.status is OrderStatus.PARTIALLY_FILLED and b.price_ticks == 10000
    eng.cancel(2, 7)
    assert [r.kind for r in eng.advance(7)] == [ExecKind.CANCELED]
    assert b.status is OrderStatus.CANCELED
    eng.cancel(2, 8)
    assert eng.advance(8)[0].kind is ExecKind.CANCEL_REJECTED
    eng.replace(2, 9, qty_lots=9, price_ticks=9900)
    assert eng.advance(9)[0].kind is ExecKind.REPLACE_REJECTED
    with pytest.raises(UnknownOrderError):
        eng.cancel(99, 10)


def test_latency_orders_arrive_in_event_time():
    eng = engine(LatencyModel(base_ns=1_000))
    order = Order(1, "X", Side.BUY, OrderType.MARKET, 5, tif=TimeInForce.IOC)
    eng.submit(order, now_ns=100)
    assert eng.advance(1_099) == [] and order.status is OrderStatus.PENDING_NEW
    # the diff at 1_100 happens after the arrival: the order sees the old book
    reports = eng.on_diff([(Side.SELL, 10000, 0)], ts_ns=1_100)
    assert fills(reports) == [(10000, 5, Liquidity.TAKER)]
    assert reports[-1].ts_ns == 1_100


def test_latency_jitter_is_deterministic():
    model = LatencyModel(base_ns=10, jitter_ns=100, seed=3)
    delays = [model.delay_ns(k) for k in range(50)]
    assert delays == [LatencyModel(10, 100, 3).delay_ns(k) for k in range(50)]
    assert all(10 <= d <= 110 for d in delays) and len(set(delays)) > 10


def test_wait_for_open_parks_orders_until_the_book_is_tradable():
    eng = MatchingEngine(INST, FEES, wait_for_open=True)
    eng.on_snapshot([], [], ts_ns=1)  # a closed session: no levels
    early = Order(1, "X", Side.BUY, OrderType.MARKET, 7, tif=TimeInForce.IOC)
    parked = Order(2, "X", Side.BUY, OrderType.MARKET, 1, tif=TimeInForce.IOC)
    assert [r.kind for r in send(eng, early)] == [ExecKind.ACCEPTED]
    send(eng, parked, 3)
    eng.cancel(2, 4)
    assert [r.kind for r in eng.advance(4)] == [ExecKind.CANCELED]
    reports = eng.on_snapshot(BIDS, ASKS, ts_ns=10)  # the open: parked orders go, in order
    assert fills(reports) == [(10000, 5, Liquidity.TAKER), (10100, 2, Liquidity.TAKER)]
    assert {r.ts_ns for r in reports} == {10} and early.status is OrderStatus.FILLED
    plain = engine()
    plain.on_snapshot([], [], ts_ns=2)
    late = send(plain, Order(3, "X", Side.BUY, OrderType.MARKET, 1, tif=TimeInForce.IOC), 3)
    assert late[0].kind is ExecKind.REJECTED
