"""The tick venue: orders go to the venue simulation, fills come from its matching engines.

Marks, risk, sizing and cancel/replace are the shared decision step's; only where orders go
and where fills come from differ from a bars-only run: approved orders become venue requests
on a :class:`~rrr_live.execution.venue.SimulatedBroker` (one matching engine per symbol behind
a :class:`~rrr_live.execution.venue.SimulatedVenue`), fed the tick frame's market-data events
in event time; the fill reports update the portfolio between decisions. The convention is in
:mod:`rrr_live.backtest.ticks`. Flatten orders after a halt are always IOC market orders.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.backtest.base import BacktestLoop
from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.ticks import market_events, prepare_ticks
from rrr_live.domain.events import ExecKind, ExecReport
from rrr_live.domain.instrument import Rounding
from rrr_live.domain.orders import Order, OrderStatus, OrderType, Side, TimeInForce
from rrr_live.execution.venue import OrderRequest, SimulatedBroker, SimulatedVenue
from rrr_live.strategy.decision import Decision, OpenOrders
from rrr_live.strategy.history import BarPanel
from rrr_live.strategy.signals import SignalProvider

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
_ENDS = (ExecKind.EXPIRED, ExecKind.REJECTED, ExecKind.CANCELED)
_OPEN_AT_END = (OrderStatus.PENDING_NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class TickVenue:
    """Orders on tick-fed matching engines (see the module docstring).

    Args:
        loop: the loop that takes the fills.
        ticks: the tick frame (see :mod:`rrr_live.backtest.ticks`).

    Raises:
        BacktestInputError: if the tick frame is unusable.
    """

    def __init__(self, loop: BacktestLoop, ticks: pd.DataFrame) -> None:
        self.loop, self.config = loop, loop.config
        symbols = loop.panel.symbols
        self.events = market_events(prepare_ticks(ticks, symbols, loop.instruments), symbols)
        venue = SimulatedVenue(
            loop.instruments, self.config.fees, self.config.latency, self.config.ticks.wait_for_open
        )
        self.broker = SimulatedBroker(venue)
        self.index = {s: i for i, s in enumerate(symbols)}
        self.open = OpenOrders.empty(len(symbols))
        self.oid = np.zeros(len(symbols), dtype=np.int64)
        self.cursor = 0
        self.now_ns = 0
        self.sent: dict[int, Order] = {}
        self.cancel_reason: dict[int, str] = {}

    def advance(self, r0: int, r1: int, t: int) -> None:
        """Feed every event up to ``t`` and let every engine reach ``t``."""
        self.now_ns = t
        events, c = self.events, self.cursor
        while c < len(events) and events[c].ts_ns <= t:
            self._handle(self.broker.on_market(events[c]))
            c += 1
        self.cursor = c
        self._handle(self.broker.advance(t))

    def _handle(self, reports: list[tuple[int, ExecReport]]) -> None:
        for oid, rep in reports:
            order = self.sent[oid]
            sym = self.index[order.symbol]
            live = self.open.lots[sym] != 0 and self.oid[sym] == oid
            if rep.fill is not None:
                f = rep.fill
                lots = f.qty_lots * int(f.side)
                self.loop.on_fills(
                    np.array([f.ts_ns]),
                    np.array([oid]),
                    np.array([sym], dtype=np.int64),
                    np.array([lots], dtype=np.int64),
                    np.array([f.price_ticks]),
                    np.array([f.price]),
                    np.array([f.fee]),
                )
                if live:
                    self.open.lots[sym] -= lots
                    if self.open.lots[sym] == 0:
                        self.open.clear(np.array([sym]))
            elif live and rep.kind in _ENDS:
                self.open.clear(np.array([sym]))

    def send(self, t: int, r0: int, ids: I64, d: Decision, ok: B) -> None:
        """Submit the approved orders to the broker."""
        for s, n, px, oid in zip(
            d.sym[ok].tolist(),
            d.lots[ok].tolist(),
            d.ref[ok].tolist(),
            ids[ok].tolist(),
            strict=True,
        ):
            self.sent[oid] = self.broker.send(oid, self._request(oid, s, n, px, d.reduce_only), t)
            self.open.lots[s], self.open.reduce_only[s] = n, d.reduce_only
            self.oid[s] = oid
        self.open.count = int(np.count_nonzero(self.open.lots))

    def _request(self, oid: int, sym: int, lots: int, ref: float, flatten: bool) -> OrderRequest:
        side = Side.BUY if lots > 0 else Side.SELL
        symbol = self.loop.panel.symbols[sym]
        rule = self.config.ticks
        if rule.order_type == "market" or flatten:
            return OrderRequest(
                str(oid), symbol, side, OrderType.MARKET, abs(lots), tif=TimeInForce.IOC
            )
        favour = Rounding.DOWN if side is Side.BUY else Rounding.UP
        inst = self.loop.instruments[sym]
        price = inst.price_to_ticks(ref, favour) + rule.limit_offset_ticks * side
        return OrderRequest(str(oid), symbol, side, OrderType.LIMIT, abs(lots), max(price, 1))

    def cancel(self, sym: I64, reason: str) -> None:
        """Request cancellation (it travels with the latency; fills before it count)."""
        for s in sym.tolist():
            oid = int(self.oid[s])
            self.cancel_reason[oid] = reason
            self.broker.cancel(oid, self.now_ns)
        self.open.clear(sym)

    def finish(self) -> None:
        """Give every order its final status."""
        self.loop.order_status = {oid: self._final(oid, o) for oid, o in self.sent.items()}

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


class TickBacktest(BacktestLoop):
    """Bar decisions, tick fills: the shared loop with the :class:`TickVenue`.

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
        self.venue = TickVenue(self, ticks)
