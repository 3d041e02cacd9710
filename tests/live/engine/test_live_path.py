"""The decision step outside a backtest: a minimal event-driven trader on the venue simulation,
the shape of the live runner (book events in, decision at a bar close, orders to the venue)."""

import numpy as np

from rrr_live.book.l2 import OrderBook
from rrr_live.domain.events import ExecReport
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind
from rrr_live.domain.orders import OrderType, Side, TimeInForce
from rrr_live.execution.models import FeeModel
from rrr_live.execution.venue import OrderRequest, SimulatedBroker, SimulatedVenue
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.risk.quality import book_quality
from rrr_live.risk.state import TradingState
from rrr_live.strategy.decision import DecisionBatch, DecisionStep, OpenOrders
from rrr_live.strategy.sizing import Strategy, StrategyConfig

INSTS = [Instrument.create(s, "0.01", "1", "0") for s in ("A", "B")]
SEC = 10**9


class Trader:
    """Books from market events, decisions at bar closes, orders through a broker."""

    def __init__(self, limits: RiskLimits) -> None:
        self.books = [OrderBook(i) for i in INSTS]
        self.portfolio = Portfolio(["A", "B"], 100_000.0)
        self.risk = RiskEngine(limits, self.portfolio)
        strategy = Strategy(StrategyConfig(max_gross_leverage=1.0))
        self.step = DecisionStep(strategy, self.risk, self.portfolio, np.zeros(2))
        self.open = OpenOrders.empty(2)
        self.broker = SimulatedBroker(SimulatedVenue(INSTS, FeeModel(taker_rate=0.001)))
        self.next_id = 1

    def on_book(self, event: BookUpdate) -> None:
        book = self.books[0 if event.symbol == "A" else 1]
        book.apply_snapshot(event.bids, event.asks, event.ts_ns)
        self._fills(self.broker.on_market(event))

    def _fills(self, reports: list[tuple[int, ExecReport]]) -> None:
        for _, rep in reports:
            if rep.fill is not None:
                i = 0 if rep.fill.symbol == "A" else 1
                self.portfolio.apply_fill(rep.fill)
                self.open.lots[i] -= rep.fill.qty_lots * int(rep.fill.side)
                self.open.clear(np.flatnonzero(self.open.lots == 0))

    def decide(self, t: int, weights: np.ndarray) -> None:
        for i, book in enumerate(self.books):
            self.risk.on_book_quality(i, book_quality(book, t, self.risk.limits.stale_after_ns))
        mids = np.array([b.mid_price() or np.nan for b in self.books])
        batch = DecisionBatch(t, np.arange(2), mids, lambda: weights)
        d = self.step.run(batch, self.open)
        for s, n, code in zip(d.sym.tolist(), d.lots.tolist(), d.codes.tolist(), strict=True):
            if code:
                continue
            side = Side.BUY if n > 0 else Side.SELL
            req = OrderRequest(
                str(self.next_id), "AB"[s], side, OrderType.MARKET, abs(n), tif=TimeInForce.IOC
            )
            self.broker.send(self.next_id, req, t)
            self.next_id += 1
            self.open.lots[s] = n
            self.open.count = int(np.count_nonzero(self.open.lots))
        self._fills(self.broker.advance(t))


def snap(symbol: str, ts: int, bid: int, ask: int) -> BookUpdate:
    return BookUpdate(BookUpdateKind.SNAPSHOT, symbol, ts, ((bid, 10**6),), ((ask, 10**6),))


def test_a_stale_book_keeps_its_symbol_from_growing_while_the_other_trades():
    trader = Trader(RiskLimits(max_drawdown=0.5, stale_after_ns=5 * SEC))
    trader.on_book(snap("A", 1 * SEC, 9_999, 10_001))
    trader.on_book(snap("B", 1 * SEC, 4_999, 5_001))
    trader.decide(2 * SEC, np.array([0.2, 0.2]))
    assert trader.portfolio.position_lots.tolist() == [200, 400]  # 20 000 each at the asks
    trader.on_book(snap("B", 9 * SEC, 4_999, 5_001))  # A's book is now 9 s old
    trader.decide(10 * SEC, np.array([0.4, 0.4]))
    assert trader.risk.symbol_state(0) is TradingState.REDUCING
    a, b = trader.portfolio.position_lots.tolist()
    assert a == 200 and b > 700  # A held back; B grew (to 0.4 of equity after costs)
    trader.decide(11 * SEC, np.array([0.0, 0.4]))  # reducing A is still allowed
    assert trader.portfolio.position_lots.tolist() == [0, b]
