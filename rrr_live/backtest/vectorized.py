"""The vectorized bar loop: every batch is processed with numpy over its symbols.

This is the general path (any universe size, any batch size); the fill, mark and decision
conventions are those of :mod:`rrr_live.backtest.engine`. Per batch it costs a few dozen small
numpy calls, so it is fastest when batches hold many symbols; for tiny universes the scalar
loop in :mod:`rrr_live.backtest.scalar` computes bit-identical results faster.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rrr_live.backtest.base import STATES, LoopBase
from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.result import BacktestResult
from rrr_live.domain.instrument import to_grid_against
from rrr_live.risk.limits import OK
from rrr_live.risk.state import TradingState
from rrr_live.strategy.history import BarPanel
from rrr_live.strategy.signals import SignalProvider

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]


class BarBacktest(LoopBase):
    """The vectorized bar backtest loop over a prepared panel (see ``engine``'s docstring).

    Args:
        panel: bars laid out by :func:`~rrr_live.backtest.data.panel_from_bars`.
        signal: the score provider.
        config: costs, limits, sizing.
    """

    def __init__(self, panel: BarPanel, signal: SignalProvider, config: BacktestConfig) -> None:
        super().__init__(panel, signal, config)
        n = len(panel.symbols)
        self.pend_lots = np.zeros(n, dtype=np.int64)
        self.pend_oid = np.zeros(n, dtype=np.int64)
        self.pend_dec = np.zeros(n, dtype=np.int64)
        self.pend_arrival = np.zeros(n, dtype=np.int64)
        self.pend_adv = np.full(n, np.nan)
        self.mark = np.zeros(n)
        # with zero latency every unfilled order is due on the symbol's next bar
        self.has_latency = config.latency.base_ns > 0 or config.latency.jitter_ns > 0
        self.n_pending = 0

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> BacktestResult:
        """Run every decision batch in time order and assemble the result."""
        starts = self.panel.batch_starts
        for k in range(self.panel.n_batches):
            self._step(k, int(starts[k]), int(starts[k + 1]))
        if self.n_pending:
            self._cancel(np.flatnonzero(self.pend_lots), "expired at end of data")
        return self.result()

    def _step(self, k: int, r0: int, r1: int) -> None:
        panel = self.panel
        idx = panel.symbol_id[r0:r1]
        t = int(panel.close_ns[r0])
        if self.n_pending:
            self._fill(r0, idx)
        port = self.portfolio
        close = panel.close[r0:r1]
        port.last_price[idx] = close
        self.mark[idx] = close
        notional = port.position_lots * self.lot * self.mark
        net = float(notional.sum())
        gross = float(np.abs(notional).sum())
        equity = port.cash + net
        state = self.risk.on_mark(t, equity)
        self.eq["equity"][k], self.eq["cash"][k] = equity, port.cash
        self.eq["gross"][k], self.eq["net"][k] = gross, net
        self.eq_state[k] = STATES.index(state)
        if state is TradingState.HALTED:
            if self.n_pending:
                self._cancel(np.flatnonzero(self.pend_lots), "halted")
            return
        if equity > 0:
            self._decide(k, r0, r1, idx, t, equity, gross)

    def _decide(
        self, k: int, r0: int, r1: int, idx: I64, t: int, equity: float, gross: float
    ) -> None:
        base = self.batch_base_weights(k, r0, r1, idx, t)
        price = self.panel.close[r0:r1]
        pos, lot = self.portfolio.position_lots[idx], self.lot[idx]
        others = (gross - float(np.abs(pos * lot * price).sum())) / equity
        if self.n_pending:  # unfilled orders count as done when sizing (cancel/replace below)
            pending = self.pend_lots[idx]
            pos = pos + pending
        cur = pos * lot * price
        target = self.strategy.portfolio_weights(base, cur / equity, others)
        delta = self.strategy.order_lots(target, equity, price, pos, lot, self.min_notional[idx])
        if self.n_pending:
            replace = (delta != 0) & (pending != 0)
            if replace.any():
                self._cancel(idx[replace], "replaced")
                delta = delta + np.where(replace, pending, 0)
        nz = np.flatnonzero(delta)
        if nz.size:
            self._send(t, r0, idx[nz], delta[nz], price[nz], nz)

    def _check_and_record(self, t: int, sym: I64, lots: I64, ref: F64) -> tuple[I8, I64]:
        """Risk-check the orders, give them ids and record them; return (codes, ids)."""
        codes = self.risk.check_batch(t, sym, lots * self.lot[sym], ref)
        ids = np.arange(self.next_oid, self.next_oid + len(sym), dtype=np.int64)
        self.next_oid += len(sym)
        ts = np.full(len(sym), t, dtype=np.int64)
        self.orders.add(order_id=ids, ts=ts, sym=sym, lots=lots, ref=ref, code=codes)
        return codes, ids

    def _send(self, t: int, r0: int, sym: I64, lots: I64, ref: F64, pos_in_batch: I64) -> None:
        codes, ids = self._check_and_record(t, sym, lots, ref)
        ok = codes == OK
        if not ok.any():
            return
        s = sym[ok]
        self.pend_lots[s] = lots[ok]
        self.pend_oid[s] = ids[ok]
        self.pend_dec[s] = t
        self.pend_arrival[s] = t + self._latency(ids[ok])
        if self.adv is not None:
            self.pend_adv[s] = self.adv[r0 + pos_in_batch[ok]]
        self.n_pending += int(ok.sum())

    def _latency(self, ids: I64) -> I64:
        model = self.config.latency
        if model.jitter_ns == 0:
            return np.full(len(ids), model.base_ns, dtype=np.int64)
        return np.array([model.delay_ns(int(i)) for i in ids], dtype=np.int64)

    def _cancel(self, sym: I64, reason: str) -> None:
        self.canceled.add(order_id=self.pend_oid[sym], reason=np.full(len(sym), reason, object))
        self.pend_lots[sym] = 0
        self.n_pending -= len(sym)

    def _fill(self, r0: int, idx: I64) -> None:
        panel = self.panel
        has = np.flatnonzero(self.pend_lots[idx])
        if not has.size:
            return
        rows, sym = r0 + has, idx[has]
        if self.has_latency:
            due = (panel.ts_ns[rows] >= self.pend_dec[sym]) & (
                panel.close_ns[rows] > self.pend_arrival[sym]
            )
            if not due.all():
                rows, sym = rows[due], sym[due]
        lots = self.pend_lots[sym]
        side = np.sign(lots)
        qty = np.abs(lots) * self.lot[sym]
        raw = self.config.impact.fill_prices(panel.open[rows], side, qty, self.pend_adv[sym])
        ticks = to_grid_against(raw, self.tick[sym], side)
        price = ticks * self.price_mul[sym] / self.price_div[sym]
        fee = self.config.fees.taker_fees(qty * price)
        self.portfolio.apply_fills(sym, lots, price, fee)
        ts = np.maximum(panel.ts_ns[rows], self.pend_arrival[sym])
        oid = self.pend_oid[sym]
        self.fills.add(ts=ts, order_id=oid, sym=sym, lots=lots, ticks=ticks, price=price, fee=fee)
        self.pend_lots[sym] = 0
        self.n_pending -= len(sym)
