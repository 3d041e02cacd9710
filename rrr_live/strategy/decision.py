"""The one decision step: marks, risk, sizing, cancel/replace and pre-trade risk of a batch.

Every backtest loop calls it; the live runner will.

In: a :class:`DecisionBatch` (the symbols whose bar closed at ``t``, sorted, with their marks
and a way to get their portfolio-independent weights) and the :class:`OpenOrders` (our unfilled
orders per symbol); the portfolio and the risk engine are the step's own rule objects.
Out: a :class:`Decision` (valuation and risk state after the marks, cancels, order intents and
their risk codes). The step assigns no order ids and touches no venue.

Rules, in this order:

1. **Marks.** The batch symbols are marked at their price; equity, gross and net exposure are
   computed by the portfolio; the risk engine updates the high-water mark and the state. An
   exception there halts (fail closed).
2. **HALTED.** Every open order that is not a flatten order is cancelled (``"halted"``). Under
   the ``flatten`` halt policy every position without an open flatten order gets a reduce-only
   order closing it, priced at its mark; then nothing until an operator resumes.
3. **Otherwise** (and equity > 0): target weights (gross-leverage cap, turnover control) and
   order sizes, sizing against position plus open orders. If a symbol wants a change while it
   has an open order, that order is cancelled (``"replaced"``) and the new order is for the
   whole difference to the position; otherwise the open order is kept. The orders are checked
   by the risk engine in batch order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from rrr_live.portfolio.numeric import fsum, nonzero1d
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine
from rrr_live.risk.state import TradingState
from rrr_live.strategy.sizing import Strategy

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
B = npt.NDArray[np.bool_]

_NO_I64: I64 = np.zeros(0, dtype=np.int64)
_NO_F64: F64 = np.zeros(0)
_NO_I8: I8 = np.zeros(0, dtype=np.int8)


class DecisionBatch(NamedTuple):
    """The symbols whose bar closed at ``ts_ns`` (an immutable record, one per batch).

    Attributes:
        ts_ns: decision time (the bar close).
        idx: universe indices of the symbols, sorted.
        price: their marks (the closes), also the orders' reference prices.
        weights: the portfolio-independent target weights of the batch
            (:meth:`~rrr_live.strategy.sizing.Strategy.base_weights` of the scores), or a
            function returning them, called only when a decision is made.
    """

    ts_ns: int
    idx: I64
    price: F64
    weights: F64 | Callable[[], F64]


@dataclass(slots=True)
class OpenOrders:
    """Our unfilled orders, at most one per symbol (the venue side keeps this current).

    Attributes:
        lots: signed open lots per universe symbol (0: none).
        reduce_only: whether the open order is a flatten order sent after a halt.
        count: number of symbols with an open order.
    """

    lots: I64
    reduce_only: B
    count: int = 0

    @classmethod
    def empty(cls, n_symbols: int) -> OpenOrders:
        """Return the open orders of a universe with none."""
        return cls(np.zeros(n_symbols, dtype=np.int64), np.zeros(n_symbols, dtype=bool))

    def clear(self, sym: I64) -> None:
        """Forget the open orders of ``sym`` (filled, cancelled, expired)."""
        self.lots[sym] = 0
        self.reduce_only[sym] = False
        self.count = int(np.count_nonzero(self.lots))


class Decision:
    """What the step decided at one batch (a plain record; one is made per batch).

    Attributes:
        ts_ns: decision time.
        state: the trading state after the marks.
        equity: portfolio equity after the marks (NaN if it could not be computed).
        gross: gross exposure.
        net: net exposure.
        cancel: symbols whose open order is cancelled.
        cancel_reason: ``"replaced"`` or ``"halted"``.
        sym: symbols of the new orders (sells, then buys; batch order within each).
        lots: their signed sizes in lots.
        ref: their reference prices.
        codes: their risk outcomes (:class:`~rrr_live.risk.reasons.DenyReason` codes).
        batch_pos: their positions in the batch (-1 for flatten orders outside it).
        reduce_only: the new orders are flatten orders.
    """

    # no __slots__: class attributes are the defaults, so a batch without orders sets only five
    cancel: I64 = _NO_I64
    cancel_reason = ""
    sym: I64 = _NO_I64
    lots: I64 = _NO_I64
    ref: F64 = _NO_F64
    codes: I8 = _NO_I8
    batch_pos: I64 = _NO_I64
    reduce_only = False

    def __init__(
        self, ts_ns: int, state: TradingState, equity: float, gross: float, net: float
    ) -> None:
        self.ts_ns, self.state = ts_ns, state
        self.equity, self.gross, self.net = equity, gross, net


class DecisionStep:
    """The decision step over one portfolio (see the module docstring).

    Args:
        strategy: sizing rules.
        risk: the risk engine (over ``portfolio``).
        portfolio: positions, cash and marks.
        min_notional: minimum order notional per universe symbol.
    """

    def __init__(
        self, strategy: Strategy, risk: RiskEngine, portfolio: Portfolio, min_notional: F64
    ) -> None:
        if risk.portfolio is not portfolio:
            raise ValueError("the risk engine must watch the decision step's portfolio")
        self.strategy, self.risk, self.portfolio = strategy, risk, portfolio
        self.lot = portfolio.lot
        self.min_notional = np.asarray(min_notional, dtype=np.float64)
        self.has_min_notional = bool(np.count_nonzero(self.min_notional))

    def run(self, batch: DecisionBatch, open_orders: OpenOrders) -> Decision:
        """Mark, evaluate risk and decide for ``batch`` (see the module docstring)."""
        port, t = self.portfolio, batch.ts_ns
        port.last_price[batch.idx] = batch.price
        try:
            equity, gross, net = port.valuation()
        except Exception as e:  # fail closed: no valuation, no trading
            self.risk.halt(t, f"risk computation failed: {type(e).__name__}: {e}")
            equity = gross = net = float("nan")
            state = TradingState.HALTED
        else:
            state = self.risk.on_mark(t, equity)
        decision = Decision(t, state, equity, gross, net)
        if state is TradingState.HALTED:
            self._halted(decision, open_orders)
        elif equity > 0:
            self._decide(decision, batch, open_orders)
        return decision

    def _halted(self, d: Decision, open_orders: OpenOrders) -> None:
        if open_orders.count:
            d.cancel = nonzero1d((open_orders.lots != 0) & ~open_orders.reduce_only)
            d.cancel_reason = "halted"
        if not self.risk.flatten_pending:
            return
        pos = self.portfolio.position_lots
        covered = (open_orders.lots != 0) & open_orders.reduce_only
        sym = nonzero1d((pos != 0) & ~covered)
        if not sym.size:
            return
        d.sym, d.lots = sym, -pos[sym]
        d.ref = self.portfolio.marks()[sym]
        d.codes = self.risk.check_flatten(sym, d.lots * self.lot[sym])
        d.batch_pos = np.full(sym.size, -1, dtype=np.int64)
        d.reduce_only = True

    def _decide(self, d: Decision, batch: DecisionBatch, open_orders: OpenOrders) -> None:
        idx, price, equity = batch.idx, batch.price, d.equity
        base = batch.weights() if callable(batch.weights) else batch.weights
        pos, lot = self.portfolio.position_lots[idx], self.lot[idx]
        cur = pos * lot * price
        others = (d.gross - float(fsum(np.abs(cur)))) / equity
        pending = open_orders.lots[idx] if open_orders.count else None
        if pending is not None:  # open orders count as done when sizing
            pos = pos + pending
            cur = pos * lot * price
        target = self.strategy.portfolio_weights(base, cur / equity, others)
        minimum = self.min_notional[idx] if self.has_min_notional else None
        delta = self.strategy.order_lots(target, equity, price, pos, lot, minimum)
        if pending is not None:
            replace = (delta != 0) & (pending != 0)
            if np.count_nonzero(replace):
                d.cancel, d.cancel_reason = idx[replace], "replaced"
                delta = delta + np.where(replace, pending, 0)
        nz = nonzero1d(delta)
        if nz.size:
            # sells first (they free cash, for the risk checks and any venue), batch order within
            nz = np.concatenate((nz[delta[nz] < 0], nz[delta[nz] > 0]))
            d.sym, d.lots, d.ref, d.batch_pos = idx[nz], delta[nz], price[nz], nz
            d.codes = self.risk.check_batch(d.ts_ns, d.sym, d.lots * self.lot[d.sym], d.ref)
