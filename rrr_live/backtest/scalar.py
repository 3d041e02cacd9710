"""The scalar bar loop: the same backtest as :mod:`rrr_live.backtest.vectorized`, in plain floats.

With a handful of symbols a decision batch holds one or two bars, and the vectorized loop spends
almost all its time in the fixed cost of numpy calls on 2-element arrays. This loop keeps the
per-bar inputs, the pending orders and the portfolio in Python lists (everything per row is
precomputed once per panel: base weights from the signal and volatility, ADV) and repeats the
vectorized formulas operation for operation, so its orders, fills and equity are bit-identical
(:mod:`rrr_live.backtest.scalar_state` explains why; tests compare the hashes). It is used for
universes of at most :data:`~rrr_live.backtest.scalar_state.SCALAR_MAX_SYMBOLS` symbols.
"""

from __future__ import annotations

import math

import numpy as np

from rrr_live.backtest.base import STATES, LoopBase
from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.result import BacktestResult
from rrr_live.backtest.scalar_state import (
    SCALAR_MAX_SYMBOLS,
    ScalarPortfolio,
    ScalarRisk,
    nsum,
)
from rrr_live.risk.state import TradingState
from rrr_live.strategy.history import BarPanel
from rrr_live.strategy.signals import SignalProvider

_HALTED, _NAN = TradingState.HALTED, math.nan


class ScalarBarBacktest(LoopBase):
    """Bar backtest loop in Python scalars for small universes (see the module docstring).

    Args:
        panel: bars laid out by :func:`~rrr_live.backtest.data.panel_from_bars`.
        signal: the score provider.
        config: costs, limits, sizing.

    Raises:
        ValueError: if the universe has more than ``SCALAR_MAX_SYMBOLS`` symbols.
    """

    def __init__(self, panel: BarPanel, signal: SignalProvider, config: BacktestConfig) -> None:
        n = len(panel.symbols)
        if n > SCALAR_MAX_SYMBOLS:
            raise ValueError(
                f"the scalar loop handles at most {SCALAR_MAX_SYMBOLS} symbols, got {n}; "
                f"use loop='vectorized'"
            )
        super().__init__(panel, signal, config)
        self.book = ScalarPortfolio(self.portfolio)
        self.srisk = ScalarRisk(self.risk, self.book)
        self.rows_sym: list[int] = panel.symbol_id.tolist()
        self.rows_close: list[float] = panel.close.tolist()
        self.rows_open: list[float] = panel.open.tolist()
        self.rows_ts: list[int] = panel.ts_ns.tolist()
        self.rows_close_ns: list[int] = panel.close_ns.tolist()
        self.rows_base: list[float] | None = (
            None if self.pre_base is None else self.pre_base.tolist()
        )
        self.rows_adv: list[float] | None = None if self.adv is None else self.adv.tolist()
        self.s_tick: list[float] = self.tick.tolist()
        self.s_mul: list[float] = self.price_mul.tolist()
        self.s_div: list[float] = self.price_div.tolist()
        self.s_min_notional: list[float] = self.min_notional.tolist()
        self.mark = [0.0] * n
        self.pend = [0] * n
        self.pend_oid = [0] * n
        self.pend_dec = [0] * n
        self.pend_arrival = [0] * n
        self.pend_adv = [_NAN] * n
        self.n_pending = 0
        self.has_latency = config.latency.base_ns > 0 or config.latency.jitter_ns > 0
        self.rec_orders: tuple[list[int], list[int], list[int], list[int], list[float]] = (
            [],
            [],
            [],
            [],
            [],
        )
        self.rec_codes: list[int] = []
        self.rec_fills: tuple[list[int], list[int], list[int], list[int], list[int]] = (
            [],
            [],
            [],
            [],
            [],
        )
        self.rec_fill_px: tuple[list[float], list[float]] = ([], [])
        self.rec_canceled: tuple[list[int], list[str]] = ([], [])

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> BacktestResult:
        """Run every decision batch in time order and assemble the result."""
        starts = self.panel.batch_starts.tolist()
        eq_equity, eq_cash = self.eq["equity"].tolist(), self.eq["cash"].tolist()
        eq_gross, eq_net = self.eq["gross"].tolist(), self.eq["net"].tolist()
        states = [0] * self.panel.n_batches
        book, step = self.book, self._mark_and_value
        for k in range(self.panel.n_batches):
            r0, r1 = starts[k], starts[k + 1]
            if self.n_pending:
                self._fill(r0, r1)
            equity, gross, net, state = step(r0, r1)
            eq_equity[k], eq_cash[k], eq_gross[k], eq_net[k] = equity, book.cash, gross, net
            states[k] = STATES.index(state)
            if state is _HALTED:
                if self.n_pending:
                    self._cancel([i for i, p in enumerate(self.pend) if p], "halted")
            elif equity > 0:
                self._decide(k, r0, r1, equity, gross)
        if self.n_pending:
            self._cancel([i for i, p in enumerate(self.pend) if p], "expired at end of data")
        self.eq["equity"][:], self.eq["cash"][:] = eq_equity, eq_cash
        self.eq["gross"][:], self.eq["net"][:] = eq_gross, eq_net
        self.eq_state[:] = states
        self._flush()
        return self.result()

    def _mark_and_value(self, r0: int, r1: int) -> tuple[float, float, float, TradingState]:
        book, mark, close, sym = self.book, self.mark, self.rows_close, self.rows_sym
        for r in range(r0, r1):
            i = sym[r]
            book.last[i] = mark[i] = close[r]
        net = gross = 0.0
        for p, lot, m in zip(book.pos, book.lot, mark, strict=True):
            x = p * lot * m
            net += x
            gross += abs(x)
        equity = book.cash + net
        return equity, gross, net, self.srisk.on_mark(self.rows_close_ns[r0], equity)

    def _weights(self, k: int, r0: int, r1: int) -> list[float]:
        if self.rows_base is not None:
            return self.rows_base[r0:r1]
        idx = self.panel.symbol_id[r0:r1]
        t = self.rows_close_ns[r0]
        weights: list[float] = self.batch_base_weights(k, r0, r1, idx, t).tolist()
        return weights

    def _decide(self, k: int, r0: int, r1: int, equity: float, gross: float) -> None:
        book_pos, lot, pend = self.book.pos, self.book.lot, self.pend
        idx = self.rows_sym[r0:r1]
        price = self.rows_close[r0:r1]
        base = self._weights(k, r0, r1)
        pending = self.n_pending > 0  # unfilled orders count as done when sizing
        held = weight_gross = 0.0
        pos: list[int] = []
        cur_w: list[float] = []
        for i, p, b in zip(idx, price, base, strict=True):
            q = book_pos[i]
            held += abs(q * lot[i] * p)
            if pending:
                q += pend[i]
            c = q * lot[i] * p / equity
            pos.append(q)
            cur_w.append(c)
            weight_gross += abs(b if b == b else c)
        others = (gross - held) / equity
        target = self._targets(base, cur_w, others, weight_gross)
        sends: list[tuple[int, int, int]] = []
        replaced: list[int] = []
        for j, i in enumerate(idx):
            delta = self._order_lots(target[j], equity, price[j], pos[j], lot[i], i)
            if delta and pend[i]:  # cancel/replace: the new order is for the whole difference
                replaced.append(i)
                delta += pend[i]
            if delta:
                sends.append((j, i, delta))
        if replaced:
            self._cancel(replaced, "replaced")
        if sends:
            self._send(self.rows_close_ns[r0], r0, sends, price)

    def _targets(
        self, base: list[float], cur_w: list[float], others: float, weight_gross: float
    ) -> list[float]:
        """``Strategy.portfolio_weights`` (gross-leverage cap, turnover control) in scalars."""
        cfg = self.config.strategy
        room = max(0.0, cfg.max_gross_leverage - others)
        w = base
        if weight_gross > room:
            factor = room / weight_gross
            w = [x * factor for x in base]
        band = cfg.rebalance_threshold
        if cfg.max_turnover is None:
            if band > 0:
                return [
                    c + 0.0 if a * c > 0 and abs(a - c) < band else c + (a - c)
                    for a, c in zip(w, cur_w, strict=True)
                ]
            return [c + (a - c) for a, c in zip(w, cur_w, strict=True)]
        dw = [a - c for a, c in zip(w, cur_w, strict=True)]
        if band > 0:
            dw = [
                0.0 if a * c > 0 and abs(d) < band else d
                for a, c, d in zip(w, cur_w, dw, strict=True)
            ]
        total = nsum([abs(d) if d == d else 0.0 for d in dw])
        if total > cfg.max_turnover:
            dw = [d * (cfg.max_turnover / total) for d in dw]
        return [c + d for c, d in zip(cur_w, dw, strict=True)]

    def _order_lots(
        self, target: float, equity: float, price: float, pos: int, lot: float, i: int
    ) -> int:
        raw = target * (equity / lot) / price
        if not math.isfinite(raw):
            return 0
        target_lots = float(math.trunc(raw * (1.0 + 1e-12) + math.copysign(1e-9, raw)))
        delta = target_lots - pos
        if not abs(delta) * (lot * price) >= self.s_min_notional[i]:
            return 0
        return int(delta)

    def _send(self, t: int, r0: int, sends: list[tuple[int, int, int]], price: list[float]) -> None:
        lot = self.book.lot
        sym = [i for _, i, _ in sends]
        ref = [price[j] for j, _, _ in sends]
        codes = self.srisk.check(t, sym, [n * lot[i] for _, i, n in sends], ref)
        oid, ts, rsym, rlots, rref = self.rec_orders
        latency, adv = self.config.latency, self.rows_adv
        for (j, i, n), px, code in zip(sends, ref, codes, strict=True):
            order_id = self.next_oid
            self.next_oid += 1
            oid.append(order_id)
            ts.append(t)
            rsym.append(i)
            rlots.append(n)
            rref.append(px)
            self.rec_codes.append(code)
            if code:
                continue
            self.pend[i], self.pend_oid[i], self.pend_dec[i] = n, order_id, t
            self.pend_arrival[i] = t + latency.delay_ns(order_id)
            if adv is not None:
                self.pend_adv[i] = adv[r0 + j]
            self.n_pending += 1

    def _cancel(self, sym: list[int], reason: str) -> None:
        oid, why = self.rec_canceled
        for i in sym:
            oid.append(self.pend_oid[i])
            why.append(reason)
            self.pend[i] = 0
        self.n_pending -= len(sym)

    def _due(self, r0: int, r1: int) -> list[tuple[int, int]]:
        pend, sym = self.pend, self.rows_sym
        due = [(r, sym[r]) for r in range(r0, r1) if pend[sym[r]]]
        if self.has_latency:
            ts, close_ns = self.rows_ts, self.rows_close_ns
            due = [
                (r, i)
                for r, i in due
                if ts[r] >= self.pend_dec[i] and close_ns[r] > self.pend_arrival[i]
            ]
        return due

    def _fill(self, r0: int, r1: int) -> None:
        due = self._due(r0, r1)
        if not due:
            return
        impact, taker = self.config.impact, self.config.fees.taker_rate
        half_spread, coef = impact.half_spread_bps * 1e-4, impact.impact_coef
        lot, open_ = self.book.lot, self.rows_open
        f_ts, f_oid, f_sym, f_lots, f_ticks = self.rec_fills
        f_price, f_fee = self.rec_fill_px
        sym, lots, prices, fees = [], [], [], []
        for r, i in due:
            n = self.pend[i]
            side = 1 if n > 0 else -1
            qty = abs(n) * lot[i]
            cost = half_spread
            if coef != 0.0:
                adv = self.pend_adv[i]
                ok = math.isfinite(adv) and adv > 0
                cost = half_spread + coef * math.sqrt(qty / adv if ok else 0.0)
            units = open_[r] * (1.0 + side * cost) / self.s_tick[i]
            eps = 1e-9 * max(1.0, abs(units))
            ticks = math.ceil(units - eps) if side > 0 else math.floor(units + eps)
            px = ticks * self.s_mul[i] / self.s_div[i]
            fee = abs(qty * px) * taker
            sym.append(i)
            lots.append(n)
            prices.append(px)
            fees.append(fee)
            f_ts.append(max(self.rows_ts[r], self.pend_arrival[i]))
            f_oid.append(self.pend_oid[i])
            f_sym.append(i)
            f_lots.append(n)
            f_ticks.append(ticks)
            f_price.append(px)
            f_fee.append(fee)
            self.pend[i] = 0
        self.book.apply_fills(sym, lots, prices, fees)
        self.n_pending -= len(due)

    def _flush(self) -> None:
        """Move the recorded lists into the shared columnar buffers and the portfolio."""
        i64, f64 = np.int64, np.float64
        oid, ts, sym, lots, ref = self.rec_orders
        self.orders.add(
            order_id=np.array(oid, i64),
            ts=np.array(ts, i64),
            sym=np.array(sym, i64),
            lots=np.array(lots, i64),
            ref=np.array(ref, f64),
            code=np.array(self.rec_codes, np.int8),
        )
        f_ts, f_oid, f_sym, f_lots, f_ticks = self.rec_fills
        self.fills.add(
            ts=np.array(f_ts, i64),
            order_id=np.array(f_oid, i64),
            sym=np.array(f_sym, i64),
            lots=np.array(f_lots, i64),
            ticks=np.array(f_ticks, i64),
            price=np.array(self.rec_fill_px[0], f64),
            fee=np.array(self.rec_fill_px[1], f64),
        )
        c_oid, c_why = self.rec_canceled
        self.canceled.add(order_id=np.array(c_oid, i64), reason=np.array(c_why, object))
        self.book.write_back(self.portfolio)
