"""Event-driven bar backtest on a simulated clock.

Time moves from one decision batch to the next: batch ``k`` is every bar that closes at the same
time ``t`` (symbols sorted). At each ``t``, in this order:

1. **Fills.** Orders decided earlier fill on this bar if it opened at or after their decision
   time and closes after their arrival (decision + latency). The synthesized book: a market
   order fills at this bar's **open** plus (buys) or minus (sells) the modelled half-spread and
   square-root impact (ADV from bars up to the decision), rounded to the tick *against* us, and
   pays the taker fee. So a decision made at the close ``t`` of bar ``i`` fills at the open of
   the symbol's next bar, whose open time is ``>= t``: never at a price from before the
   decision (no look-ahead). With a latency longer than a bar the order waits for the first bar
   still open at its arrival and fills at that bar's open.
2. **Marks.** The batch symbols are marked at their close; equity, exposures and the
   high-water mark are updated; the risk monitor moves ACTIVE/REDUCING/HALTED.
3. **Decision.** Unless HALTED: scores for the batch (only data up to ``t``), target weights,
   order sizes, pre-trade risk checks; approved orders wait for step 1 of a later batch. A new
   decision sizes against position plus unfilled orders; if it wants a change, the symbol's
   unfilled order is replaced by one for the whole difference to the position (cancel/replace),
   otherwise it is kept. Entering HALTED cancels every unfilled order.

Everything in a batch is vectorized with numpy; no per-bar Python objects are created.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.data import panel_from_bars
from rrr_live.backtest.result import BacktestResult
from rrr_live.backtest.stats import compute_stats
from rrr_live.domain.instrument import to_grid_against
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import OK, REASONS, RiskEngine
from rrr_live.risk.state import TradingState
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
_STATES = (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED)


class _Columns:
    """Append-only columnar buffer (lists of array chunks, concatenated once)."""

    def __init__(self, *names: str) -> None:
        self.chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def add(self, **cols: np.ndarray) -> None:
        for name, values in cols.items():
            self.chunks[name].append(values)

    def get(self, name: str, dtype: type) -> np.ndarray:
        parts = self.chunks[name]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def run_backtest(
    bars: pd.DataFrame, signal: SignalProvider, config: BacktestConfig | None = None
) -> BacktestResult:
    """Backtest ``signal`` on canonical ``bars`` (one interval) and return the result.

    Raises:
        BacktestInputError: if the bars are unusable.
    """
    panel = panel_from_bars(bars)
    return BarBacktest(panel, signal, config or BacktestConfig()).run()


class BarBacktest:
    """The bar backtest loop over a prepared panel (see the module docstring).

    Args:
        panel: bars laid out by :func:`~rrr_live.backtest.data.panel_from_bars`.
        signal: the score provider.
        config: costs, limits, sizing.
    """

    def __init__(self, panel: BarPanel, signal: SignalProvider, config: BacktestConfig) -> None:
        self.panel, self.signal, self.config = panel, signal, config
        instruments = [config.instrument_for(s) for s in panel.symbols]
        self.tick = np.array([i.tick for i in instruments])
        self.lot = np.array([i.lot for i in instruments])
        self.min_notional = np.array([float(i.min_notional) for i in instruments])
        factors = np.array([i.grid_price_factors() for i in instruments]).reshape(-1, 2)
        self.price_mul, self.price_div = factors[:, 0], factors[:, 1]
        self.portfolio = Portfolio(panel.symbols, config.initial_cash, self.lot.tolist())
        self.risk = RiskEngine(config.risk, self.portfolio)
        self.strategy = Strategy(config.strategy)
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
        self.next_oid = 1
        self.orders = _Columns("order_id", "ts", "sym", "lots", "ref", "code")
        self.fills = _Columns("ts", "order_id", "sym", "lots", "ticks", "price", "fee")
        self.canceled = _Columns("order_id", "reason")
        nb = panel.n_batches
        self.eq = {k: np.zeros(nb) for k in ("equity", "cash", "gross", "net")}
        self.eq_state = np.zeros(nb, dtype=np.int8)

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> BacktestResult:
        """Run every decision batch in time order and assemble the result."""
        starts = self.panel.batch_starts
        for k in range(self.panel.n_batches):
            self._step(k, int(starts[k]), int(starts[k + 1]))
        return self._result()

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
        self.eq_state[k] = _STATES.index(state)
        if state is TradingState.HALTED:
            if self.n_pending:
                self._cancel(np.flatnonzero(self.pend_lots), "halted")
            return
        if equity > 0:
            self._decide(k, r0, r1, idx, t, equity, gross)

    def _base_weights(self, k: int, r0: int, r1: int, idx: I64, t: int) -> F64:
        if self.pre_base is not None:
            return self.pre_base[r0:r1]
        self.history.set_batch(k)
        names = [str(s) for s in self.symbol_names[idx]]
        scores = np.asarray(self.signal.scores(t, names, self.history), dtype=np.float64)
        if scores.shape != (len(idx),):
            raise ValueError(
                f"signal returned shape {scores.shape} for a batch of {len(idx)} symbols"
            )
        vol = self.vol[r0:r1] if self.vol is not None else None
        return self.strategy.base_weights(scores, vol)

    def _decide(
        self, k: int, r0: int, r1: int, idx: I64, t: int, equity: float, gross: float
    ) -> None:
        base = self._base_weights(k, r0, r1, idx, t)
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

    def _send(self, t: int, r0: int, sym: I64, lots: I64, ref: F64, pos_in_batch: I64) -> None:
        codes = self.risk.check_batch(t, sym, lots * self.lot[sym], ref)
        ids = np.arange(self.next_oid, self.next_oid + len(sym), dtype=np.int64)
        self.next_oid += len(sym)
        ts = np.full(len(sym), t, dtype=np.int64)
        self.orders.add(order_id=ids, ts=ts, sym=sym, lots=lots, ref=ref, code=codes)
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

    # --- output ------------------------------------------------------------------------------
    def _result(self) -> BacktestResult:
        if self.n_pending:
            self._cancel(np.flatnonzero(self.pend_lots), "expired at end of data")
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
            if c != OK:
                status.append("denied")
                reason.append(REASONS[c])
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
                "state": [_STATES[s].value for s in self.eq_state],
            }
        )
