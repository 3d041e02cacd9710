"""The backtest loop: one driver over decision batches, the decision step, and a venue.

:class:`BacktestLoop` builds everything a run needs from a panel and a config (instrument grids,
portfolio, risk engine, strategy, the :class:`~rrr_live.strategy.decision.DecisionStep`,
per-row precomputations) and drives it batch by batch:

1. the venue advances to the batch's close ``t`` and reports fills (bars: due orders fill at
   the bar's open; ticks: market data up to ``t`` goes through the matching engines);
2. the decision step marks, evaluates risk and decides;
3. the venue gets the cancels and the approved orders.

Loops differ only in the venue they plug in (:class:`LoopVenue`); the rules (sizing, limits,
fees, impact, fills) are the shared rule objects. Everything is recorded into the same columnar
buffers and turned into a :class:`~rrr_live.backtest.result.BacktestResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.result import BacktestResult
from rrr_live.backtest.stats import compute_stats
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine
from rrr_live.risk.reasons import LABELS, DenyReason
from rrr_live.risk.state import TradingState
from rrr_live.strategy.decision import Decision, DecisionBatch, DecisionStep, OpenOrders
from rrr_live.strategy.history import (
    BarPanel,
    PanelHistory,
    rolling_mean_volume,
    rolling_volatility,
)
from rrr_live.strategy.signals import PrecomputableSignal, SignalProvider
from rrr_live.strategy.sizing import Strategy

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
STATES = (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED)
_STATE_CODE = {s: i for i, s in enumerate(STATES)}


class Columns:
    """Append-only columnar buffer (lists of array chunks, concatenated once)."""

    def __init__(self, *names: str) -> None:
        self.chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def add(self, **cols: np.ndarray) -> None:
        """Append one chunk to each named column."""
        for name, values in cols.items():
            self.chunks[name].append(values)

    def get(self, name: str, dtype: type) -> np.ndarray:
        """Return the whole column as one array of ``dtype``."""
        parts = self.chunks[name]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


class LoopVenue(Protocol):
    """Where a loop's orders go and its fills come from (bars or tick-fed matching engines)."""

    open: OpenOrders

    def advance(self, r0: int, r1: int, t: int) -> None:
        """Fill what is due before the decision at ``t`` (batch rows ``r0:r1``)."""
        ...

    def send(self, t: int, r0: int, ids: I64, d: Decision, ok: npt.NDArray[np.bool_]) -> None:
        """Take the approved (``ok``) orders of decision ``d`` (order ids ``ids``)."""
        ...

    def cancel(self, sym: I64, reason: str) -> None:
        """Cancel the open orders of ``sym``."""
        ...

    def finish(self) -> None:
        """End of data: settle what is still open."""
        ...


class BacktestLoop:
    """The backtest driver (see the module docstring); subclasses plug in the venue.

    Args:
        panel: bars laid out by :func:`~rrr_live.backtest.data.panel_from_bars`.
        signal: the score provider.
        config: costs, limits, sizing.
    """

    venue: LoopVenue

    def __init__(self, panel: BarPanel, signal: SignalProvider, config: BacktestConfig) -> None:
        self.panel, self.signal, self.config = panel, signal, config
        self.instruments = [config.instrument_for(s) for s in panel.symbols]
        self.tick = np.array([i.tick for i in self.instruments])
        self.lot = np.array([i.lot for i in self.instruments])
        self.min_notional = np.array([float(i.min_notional) for i in self.instruments])
        factors = np.array([i.grid_price_factors() for i in self.instruments]).reshape(-1, 2)
        self.price_mul, self.price_div = factors[:, 0], factors[:, 1]
        self.portfolio = Portfolio(panel.symbols, config.initial_cash, self.lot.tolist())
        self.risk = RiskEngine(config.risk, self.portfolio)
        self.strategy = Strategy(config.strategy)
        self.step = DecisionStep(self.strategy, self.risk, self.portfolio, self.min_notional)
        self.history = PanelHistory(panel)
        self.symbol_names = np.array(panel.symbols, dtype=object)
        self.pre_scores = (
            signal.precompute(panel) if isinstance(signal, PrecomputableSignal) else None
        )
        cfg = config.strategy
        self.vol = rolling_volatility(panel, cfg.vol_lookback) if cfg.target_vol else None
        self.pre_base = (
            self.strategy.base_weights(self.pre_scores, self.vol)
            if self.pre_scores is not None
            else None
        )
        self.adv = (
            rolling_mean_volume(panel, config.adv_lookback)
            if config.impact.impact_coef > 0
            else None
        )
        self.next_oid = 1
        self.orders = Columns("order_id", "ts", "sym", "lots", "ref", "code")
        self.fills = Columns("ts", "order_id", "sym", "lots", "ticks", "price", "fee")
        self.canceled = Columns("order_id", "reason")
        # final (status, reason) of orders whose outcome the venue knows better than "filled
        # if it has a fill, else canceled" (the tick venue's partial fills, venue rejections)
        self.order_status: dict[int, tuple[str, str]] = {}
        nb = panel.n_batches
        self.eq = {k: np.zeros(nb) for k in ("equity", "cash", "gross", "net")}
        self.eq_state = np.zeros(nb, dtype=np.int8)

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> BacktestResult:
        """Run every decision batch in time order and assemble the result."""
        panel, venue, step = self.panel, self.venue, self.step
        starts = panel.batch_starts.tolist()
        close_ns = panel.close_ns[panel.batch_starts[:-1]].tolist()
        eq_equity, eq_cash, eq_gross, eq_net = (
            self.eq[c] for c in ("equity", "cash", "gross", "net")
        )
        for k in range(panel.n_batches):
            r0, r1 = starts[k], starts[k + 1]
            t = close_ns[k]
            venue.advance(r0, r1, t)
            idx = panel.symbol_id[r0:r1]
            batch = DecisionBatch(t, idx, panel.close[r0:r1], self._weights(k, r0, r1, idx, t))
            d = step.run(batch, venue.open)
            eq_equity[k], eq_cash[k] = d.equity, self.portfolio.cash
            eq_gross[k], eq_net[k] = d.gross, d.net
            self.eq_state[k] = _STATE_CODE[d.state]
            if d.cancel.size:
                venue.cancel(d.cancel, d.cancel_reason)
            if d.sym.size:
                self._send(t, r0, d)
        venue.finish()
        return self.result()

    def _weights(self, k: int, r0: int, r1: int, idx: I64, t: int) -> F64 | Callable[[], F64]:
        if self.pre_base is not None:
            return self.pre_base[r0:r1]
        return lambda: self.batch_base_weights(k, r0, r1, idx, t)

    def _send(self, t: int, r0: int, d: Decision) -> None:
        n = len(d.sym)
        ids = np.arange(self.next_oid, self.next_oid + n, dtype=np.int64)
        self.next_oid += n
        ts = np.full(n, t, dtype=np.int64)
        self.orders.add(order_id=ids, ts=ts, sym=d.sym, lots=d.lots, ref=d.ref, code=d.codes)
        ok = d.codes == 0  # DenyReason.OK
        if ok.any():
            self.venue.send(t, r0, ids, d, ok)

    def on_fills(
        self, ts: I64, order_id: I64, sym: I64, lots: I64, ticks: I64, price: F64, fee: F64
    ) -> None:
        """Apply fills (one per distinct symbol) to the portfolio and record them."""
        self.portfolio.apply_fills(sym, lots, price, fee)
        self.fills.add(
            ts=ts, order_id=order_id, sym=sym, lots=lots, ticks=ticks, price=price, fee=fee
        )

    def on_cancel(self, order_id: I64, reason: str) -> None:
        """Record cancelled orders."""
        self.canceled.add(order_id=order_id, reason=np.full(len(order_id), reason, object))

    def batch_scores(self, k: int, idx: I64, t: int) -> F64:
        """Call the signal for batch ``k`` (symbols ``idx``, decision time ``t``)."""
        self.history.set_batch(k)
        names = [str(s) for s in self.symbol_names[idx]]
        scores = np.asarray(self.signal.scores(t, names, self.history), dtype=np.float64)
        if scores.shape != (len(idx),):
            raise ValueError(
                f"signal returned shape {scores.shape} for a batch of {len(idx)} symbols"
            )
        return scores

    def batch_base_weights(self, k: int, r0: int, r1: int, idx: I64, t: int) -> F64:
        """Return the portfolio-independent weights of batch ``k`` (rows ``r0:r1``)."""
        if self.pre_base is not None:
            return self.pre_base[r0:r1]
        vol = self.vol[r0:r1] if self.vol is not None else None
        return self.strategy.base_weights(self.batch_scores(k, idx, t), vol)

    # --- output ------------------------------------------------------------------------------
    def result(self) -> BacktestResult:
        """Assemble the result from what the loop recorded (pending orders must be gone)."""
        fills = self._fills_frame()
        equity = self._equity_frame()
        stats = compute_stats(
            self.panel.close_ns[self.panel.batch_starts[:-1]],
            self.eq["equity"],
            self.eq["gross"],
            self.portfolio.traded_notional,
            self.portfolio.fees_paid,
            self.config.periods_per_year,
        )
        orders = self._orders_frame(set(fills["order_id"].tolist()))
        stats.update(
            n_orders=float(len(orders)),
            n_fills=float(len(fills)),
            n_denied=float((orders["status"] == "denied").sum()),
        )
        name = str(getattr(self.signal, "name", type(self.signal).__name__))
        return BacktestResult(orders, fills, equity, stats, list(self.risk.machine.history), name)

    def _times(self, ns: I64) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(pd.to_datetime(ns, unit="ns", utc=True))

    def _orders_frame(self, filled: set[int]) -> pd.DataFrame:
        o = self.orders
        ids, codes = o.get("order_id", np.int64), o.get("code", np.int8)
        sym, lots = o.get("sym", np.int64), o.get("lots", np.int64)
        canceled = dict(
            zip(
                self.canceled.get("order_id", np.int64).tolist(),
                self.canceled.get("reason", object).tolist(),
                strict=True,
            )
        )
        status, reason = [], []
        for i, c in zip(ids.tolist(), codes.tolist(), strict=True):
            if c != DenyReason.OK:
                status.append("denied")
                reason.append(LABELS[c])
            elif i in self.order_status:
                status.append(self.order_status[i][0])
                reason.append(self.order_status[i][1])
            elif i in filled:
                status.append("filled")
                reason.append("")
            else:
                status.append("canceled")
                reason.append(canceled.get(i, ""))
        return pd.DataFrame(
            {
                "order_id": ids,
                "ts": self._times(o.get("ts", np.int64)),
                "symbol": self.symbol_names[sym].astype(str),
                "side": np.where(lots > 0, "buy", "sell"),
                "qty": np.abs(lots) * self.lot[sym],
                "ref_price": o.get("ref", np.float64),
                "status": status,
                "reason": reason,
            }
        )

    def _fills_frame(self) -> pd.DataFrame:
        f = self.fills
        sym, lots = f.get("sym", np.int64), f.get("lots", np.int64)
        qty = np.abs(lots) * self.lot[sym]
        price = f.get("price", np.float64)
        return pd.DataFrame(
            {
                "ts": self._times(f.get("ts", np.int64)),
                "order_id": f.get("order_id", np.int64),
                "symbol": self.symbol_names[sym].astype(str),
                "side": np.where(lots > 0, "buy", "sell"),
                "qty": qty,
                "qty_lots": np.abs(lots),
                "price": price,
                "price_ticks": f.get("ticks", np.int64),
                "fee": f.get("fee", np.float64),
                "notional": qty * price,
            }
        )

    def _equity_frame(self) -> pd.DataFrame:
        eq = self.eq["equity"]
        peak = np.maximum.accumulate(eq) if len(eq) else eq
        return pd.DataFrame(
            {
                "ts": self._times(self.panel.close_ns[self.panel.batch_starts[:-1]]),
                "equity": eq,
                "cash": self.eq["cash"],
                "gross_exposure": self.eq["gross"],
                "net_exposure": self.eq["net"],
                "drawdown": 1.0 - eq / np.maximum(peak, np.finfo(float).tiny),
                "state": [STATES[s].value for s in self.eq_state],
            }
        )
