"""The bar loop with fills from tick-fed matching engines (convention: :mod:`.ticks`).

Marks, risk, sizing and cancel/replace are the vectorized bar loop's; only where orders go and
where fills come from differ: orders are :class:`~rrr_live.domain.orders.Order` objects sent to
one :class:`~rrr_live.execution.matching.MatchingEngine` per symbol, and the engines' fill
reports update the portfolio between decisions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.result import BacktestResult
from rrr_live.backtest.ticks import Message, prepare_ticks
from rrr_live.backtest.vectorized import BarBacktest
from rrr_live.domain.events import ExecKind, ExecReport
from rrr_live.domain.instrument import Rounding
from rrr_live.domain.orders import Order, OrderStatus, OrderType, Side, TimeInForce
from rrr_live.execution.matching import MatchingEngine
from rrr_live.risk.limits import OK
from rrr_live.strategy.history import BarPanel
from rrr_live.strategy.signals import SignalProvider

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_ENDS = (ExecKind.EXPIRED, ExecKind.REJECTED, ExecKind.CANCELED)
_OPEN_AT_END = (OrderStatus.PENDING_NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class TickBacktest(BarBacktest):
    """Bar decisions, tick fills (see :mod:`rrr_live.backtest.ticks`).

    Args:
        panel: bars laid out by :func:`~rrr_live.backtest.data.panel_from_bars`.
        signal: the score provider.
        config: costs, limits, sizing, tick order routing (``config.ticks``).
        ticks: the tick frame (see :mod:`rrr_live.backtest.ticks`).

    Raises:
        BacktestInputError: if the tick frame is unusable.
    """

    def __init__(
        self,
        panel: BarPanel,
        signal: SignalProvider,
        config: BacktestConfig,
        ticks: pd.DataFrame,
    ) -> None:
        super().__init__(panel, signal, config)
        self.messages: list[Message] = prepare_ticks(ticks, panel.symbols, self.instruments)
        wait = config.ticks.wait_for_open
        self.engines = [
            MatchingEngine(inst, config.fees, config.latency, wait) for inst in self.instruments
        ]
        self.cursor = 0
        self.now_ns = 0
        self.sent: dict[int, Order] = {}
        self.cancel_reason: dict[int, str] = {}

    def run(self) -> BacktestResult:
        """Run every decision batch, feeding ticks up to each bar close first."""
        starts = self.panel.batch_starts
        for k in range(self.panel.n_batches):
            r0 = int(starts[k])
            self.now_ns = int(self.panel.close_ns[r0])
            self._feed(self.now_ns)
            self._step(k, r0, int(starts[k + 1]))
        self.order_status = {oid: self._final(oid, o) for oid, o in self.sent.items()}
        return self.result()

    # --- market data in, fills out -----------------------------------------------------------
    def _feed(self, t: int) -> None:
        msgs, c = self.messages, self.cursor
        while c < len(msgs) and msgs[c][0] <= t:
            ts, sym, kind, rows = msgs[c]
            eng = self.engines[sym]
            if kind == "snapshot":
                bids = [(p, n) for side, p, n in rows if side is Side.BUY]
                asks = [(p, n) for side, p, n in rows if side is Side.SELL]
                reports = eng.on_snapshot(bids, asks, ts)
            elif kind == "diff":
                reports = eng.on_diff(rows, ts)
            else:
                side, price, size = rows[0]
                reports = eng.on_trade(price, size, side, ts)
            self._handle(sym, reports)
            c += 1
        self.cursor = c
        for sym, eng in enumerate(self.engines):
            self._handle(sym, eng.advance(t))

    def _handle(self, sym: int, reports: list[ExecReport]) -> None:
        for rep in reports:
            live = self.pend_lots[sym] != 0 and self.pend_oid[sym] == rep.order_id
            if rep.fill is not None:
                f = rep.fill
                lots = f.qty_lots * int(f.side)
                idx = np.array([sym], dtype=np.int64)
                price, fee = np.array([f.price]), np.array([f.fee])
                self.portfolio.apply_fills(idx, np.array([lots], dtype=np.int64), price, fee)
                self.fills.add(
                    ts=np.array([f.ts_ns]),
                    order_id=np.array([f.order_id]),
                    sym=idx,
                    lots=np.array([lots]),
                    ticks=np.array([f.price_ticks]),
                    price=price,
                    fee=fee,
                )
                if live:
                    self.pend_lots[sym] -= lots
                    self.n_pending -= int(self.pend_lots[sym] == 0)
            elif live and rep.kind in _ENDS:
                self.pend_lots[sym] = 0
                self.n_pending -= 1

    def _fill(self, r0: int, idx: I64) -> None:
        """Fills come from the engines while ticks are fed; nothing happens at the bar."""

    # --- orders out --------------------------------------------------------------------------
    def _send(self, t: int, r0: int, sym: I64, lots: I64, ref: F64, pos_in_batch: I64) -> None:
        codes, ids = self._check_and_record(t, sym, lots, ref)
        for s, n, px, oid, code in zip(
            sym.tolist(), lots.tolist(), ref.tolist(), ids.tolist(), codes.tolist(), strict=True
        ):
            if code != OK:
                continue
            order = self._order(oid, s, n, px, t)
            self.sent[oid] = order
            self.engines[s].submit(order, t)
            self.pend_lots[s], self.pend_oid[s] = n, oid
            self.n_pending += 1

    def _order(self, oid: int, sym: int, lots: int, ref: float, t: int) -> Order:
        side = Side.BUY if lots > 0 else Side.SELL
        symbol = self.panel.symbols[sym]
        rule = self.config.ticks
        if rule.order_type == "market":
            return Order(
                oid, symbol, side, OrderType.MARKET, abs(lots), tif=TimeInForce.IOC, ts_ns=t
            )
        favour = Rounding.DOWN if side is Side.BUY else Rounding.UP
        price = self.instruments[sym].price_to_ticks(ref, favour) + rule.limit_offset_ticks * side
        return Order(oid, symbol, side, OrderType.LIMIT, abs(lots), max(price, 1), ts_ns=t)

    def _cancel(self, sym: I64, reason: str) -> None:
        for s in sym.tolist():
            oid = int(self.pend_oid[s])
            self.cancel_reason[oid] = reason
            self.engines[s].cancel(oid, self.now_ns)
        self.pend_lots[sym] = 0
        self.n_pending -= len(sym)

    def _final(self, oid: int, order: Order) -> tuple[str, str]:
        if order.status is OrderStatus.FILLED:
            return "filled", ""
        if order.status in _OPEN_AT_END:
            status, reason = "canceled", "expired at end of data"
        elif order.status is OrderStatus.CANCELED:
            status, reason = "canceled", self.cancel_reason.get(oid, order.reason)
        else:
            status, reason = order.status.value, order.reason
        if order.filled_lots:
            status = "partially_filled"
        return status, reason
