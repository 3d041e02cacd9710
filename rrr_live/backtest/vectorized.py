"""The bar venue: orders fill at the next bar's open through the impact and fee models.

This is the venue of a bars-only backtest (the fill convention is in
:mod:`rrr_live.backtest.engine`). It is vectorized over the symbols of a batch, so one code path
serves any universe size; decisions come from the shared decision step.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rrr_live.backtest.base import BacktestLoop
from rrr_live.backtest.config import BacktestConfig
from rrr_live.domain.instrument import to_grid_against
from rrr_live.portfolio.numeric import nonzero1d
from rrr_live.strategy.decision import Decision, OpenOrders
from rrr_live.strategy.history import BarPanel
from rrr_live.strategy.signals import SignalProvider

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


class BarVenue:
    """Market orders filled at the open of the symbol's next bar (see ``engine``'s docstring).

    Args:
        loop: the loop whose panel, config and grids the venue uses and which takes the fills.
    """

    def __init__(self, loop: BacktestLoop) -> None:
        self.loop, self.panel, self.config = loop, loop.panel, loop.config
        n = len(self.panel.symbols)
        self.open = OpenOrders.empty(n)
        self.oid = np.zeros(n, dtype=np.int64)
        self.dec = np.zeros(n, dtype=np.int64)
        self.arrival = np.zeros(n, dtype=np.int64)
        self.order_adv = np.full(n, np.nan)
        # ADV of each symbol as known at its latest decision (impact of orders sent then)
        self.adv_now = np.full(n, np.nan) if loop.adv is not None else None
        latency = self.config.latency
        # with zero latency every unfilled order is due on the symbol's next bar
        self.has_latency = latency.base_ns > 0 or latency.jitter_ns > 0

    def advance(self, r0: int, r1: int, t: int) -> None:
        """Fill the open orders that are due on the bars of this batch."""
        idx = self.panel.symbol_id[r0:r1]
        if self.open.count:
            self._fill(r0, idx)
        if self.adv_now is not None and self.loop.adv is not None:
            self.adv_now[idx] = self.loop.adv[r0:r1]

    def send(self, t: int, r0: int, ids: I64, d: Decision, ok: B) -> None:
        """Take the approved orders: they wait for a later bar."""
        s = d.sym[ok]
        self.open.lots[s] = d.lots[ok]
        self.open.reduce_only[s] = d.reduce_only
        self.open.count = int(np.count_nonzero(self.open.lots))
        self.oid[s] = ids[ok]
        self.dec[s] = t
        self.arrival[s] = t + self._latency(ids[ok])
        if self.adv_now is not None:
            self.order_adv[s] = self.adv_now[s]

    def _latency(self, ids: I64) -> I64:
        model = self.config.latency
        if model.jitter_ns == 0:
            return np.full(len(ids), model.base_ns, dtype=np.int64)
        return np.array([model.delay_ns(int(i)) for i in ids], dtype=np.int64)

    def cancel(self, sym: I64, reason: str) -> None:
        """Cancel the open orders of ``sym`` (immediately: the bar venue has no latency here)."""
        self.loop.on_cancel(self.oid[sym], reason)
        self.open.clear(sym)

    def finish(self) -> None:
        """Expire what is still open at the end of data."""
        if self.open.count:
            self.cancel(nonzero1d(self.open.lots), "expired at end of data")

    def _fill(self, r0: int, idx: I64) -> None:
        panel, lot_open = self.panel, self.open.lots
        has = nonzero1d(lot_open[idx])
        if not has.size:
            return
        rows, sym = r0 + has, idx[has]
        if self.has_latency:
            due = (panel.ts_ns[rows] >= self.dec[sym]) & (panel.close_ns[rows] > self.arrival[sym])
            if not due.all():
                rows, sym = rows[due], sym[due]
        loop = self.loop
        lots = lot_open[sym]
        side = np.sign(lots)
        qty = np.abs(lots) * loop.lot[sym]
        raw = self.config.impact.fill_prices(panel.open[rows], side, qty, self.order_adv[sym])
        ticks = to_grid_against(raw, loop.tick[sym], side)
        price = ticks * loop.price_mul[sym] / loop.price_div[sym]
        fee = self.config.fees.taker_fees(qty * price)
        ts = np.maximum(panel.ts_ns[rows], self.arrival[sym])
        loop.on_fills(ts, self.oid[sym], sym, lots, ticks, price, fee)
        self.open.clear(sym)


class BarBacktest(BacktestLoop):
    """The bars-only backtest: the shared loop with the :class:`BarVenue`.

    Args:
        panel: bars laid out by :func:`~rrr_live.backtest.data.panel_from_bars`.
        signal: the score provider.
        config: costs, limits, sizing.
    """

    def __init__(self, panel: BarPanel, signal: SignalProvider, config: BacktestConfig) -> None:
        super().__init__(panel, signal, config)
        self.venue = BarVenue(self)
