"""Pre-trade risk limits and the real-time risk engine (pure, clock-injected).

One vectorized implementation serves a whole decision batch (backtest, live runner) and the
scalar :meth:`RiskEngine.check` (paper venue, single orders). Orders are checked in the batch's
order (symbols sorted), each seeing the exposure left by the ones approved before it.

Invariant: no approved order moves an exposure (or the portfolio VaR) past a limit *in the
increasing direction*; an order that reduces an exposure is never denied by that exposure's
limit. Exposure and VaR limits are in the quote currency, or in multiples of current equity
when ``basis="equity"``.

The real-time side (:meth:`RiskEngine.on_mark`, :meth:`~RiskEngine.on_journal`,
:meth:`~RiskEngine.on_book_quality`) moves the trading state; see :mod:`rrr_live.risk.state`.
Any exception while computing PnL or risk, or a non-finite equity, halts (fail closed). With
``on_halt="flatten"`` entering HALTED sets :attr:`RiskEngine.flatten_pending`: the decision step
then closes every position with reduce-only orders (:meth:`RiskEngine.check_flatten`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.quality import JournalHealth
from rrr_live.risk.reasons import DenyReason
from rrr_live.risk.rules import check_aggregate, drawdown_hit, exposure_deltas, not_reducing
from rrr_live.risk.state import (
    Approved,
    Denied,
    RiskDecision,
    RiskSnapshot,
    TradingState,
    TradingStateMachine,
)
from rrr_live.risk.var_limit import PortfolioVar

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
_R = DenyReason
# plain ints for the hot path (enum attribute access costs more than the numpy call it feeds)
_OK, _HALTED, _REDUCING = 0, int(_R.HALTED), int(_R.REDUCING_ONLY)
_SYMBOL_REDUCING = int(_R.SYMBOL_REDUCING)
_ORDER, _BAND, _POSITION = int(_R.ORDER_NOTIONAL), int(_R.PRICE_BAND), int(_R.POSITION)
_GROSS, _NET, _VAR, _RATE = int(_R.GROSS), int(_R.NET), int(_R.VAR), int(_R.RATE)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Pre-trade and real-time limits (``inf`` disables a limit).

    Args:
        max_position_notional: per-symbol absolute notional.
        max_gross_notional: sum of absolute notionals.
        max_net_notional: absolute value of the signed sum of notionals.
        max_order_notional: absolute notional of one order.
        price_band_bps: a limit price may differ from mid by at most this many basis points.
        max_orders_per_window: approved orders allowed per ``rate_window_ns`` (0 = no limit).
        rate_window_ns: window of the order-rate limit.
        max_drawdown: drawdown from the high-water mark that halts trading (fraction).
        basis: ``"absolute"`` (quote currency) or ``"equity"`` (multiples of current equity)
            for the notional and VaR limits.
        on_halt: ``"flatten"``: entering HALTED cancels open orders and closes every position
            with reduce-only orders; ``"freeze"``: it cancels open orders and keeps positions.
        max_var: portfolio VaR (parametric normal, EWMA covariance of mark returns, one mark
            interval) above which trading is REDUCING and increasing orders are denied.
        var_alpha: tail probability of that VaR.
        var_lambda: EWMA decay of its covariance.
        stale_after_ns: a book older than this makes its symbol REDUCING (0: never stale).
    """

    max_position_notional: float = math.inf
    max_gross_notional: float = math.inf
    max_net_notional: float = math.inf
    max_order_notional: float = math.inf
    price_band_bps: float = math.inf
    max_orders_per_window: int = 0
    rate_window_ns: int = 1_000_000_000
    max_drawdown: float = 0.02
    basis: Literal["absolute", "equity"] = "absolute"
    on_halt: Literal["flatten", "freeze"] = "flatten"
    max_var: float = math.inf
    var_alpha: float = 0.01
    var_lambda: float = 0.94
    stale_after_ns: int = 0

    def __post_init__(self) -> None:
        values = (
            self.max_position_notional,
            self.max_gross_notional,
            self.max_net_notional,
            self.max_order_notional,
            self.price_band_bps,
            self.max_var,
        )
        if any(v <= 0 for v in values) or not 0 < self.max_drawdown <= 1:
            raise ValueError(f"risk limits must be positive and max_drawdown in (0, 1]: {self}")
        if self.basis not in ("absolute", "equity"):
            raise ValueError(f"basis must be 'absolute' or 'equity', got {self.basis!r}")
        if self.on_halt not in ("flatten", "freeze"):
            raise ValueError(f"on_halt must be 'flatten' or 'freeze', got {self.on_halt!r}")
        if self.max_orders_per_window < 0 or self.rate_window_ns <= 0:
            raise ValueError("max_orders_per_window must be >= 0 and rate_window_ns > 0")
        if not 0 < self.var_alpha < 0.5 or not 0 < self.var_lambda < 1:
            raise ValueError("var_alpha must be in (0, 0.5) and var_lambda in (0, 1)")
        if self.stale_after_ns < 0:
            raise ValueError(f"stale_after_ns must be >= 0, got {self.stale_after_ns}")


class RiskEngine:
    """Pre-trade checks and the ACTIVE/REDUCING/HALTED monitor over one portfolio.

    Args:
        limits: the limits.
        portfolio: the portfolio whose positions and marks the checks read.
    """

    def __init__(self, limits: RiskLimits, portfolio: Portfolio) -> None:
        self.limits = limits
        self.portfolio = portfolio
        self.machine = TradingStateMachine()
        self._recent: deque[tuple[int, int]] = deque()
        self._recent_count = 0
        self.denied_counts = np.zeros(len(DenyReason), dtype=np.int64)
        n = len(portfolio.symbols)
        self.symbol_quality: list[str] = [""] * n
        self.symbol_reducing = np.zeros(n, dtype=bool)
        self.flatten_pending = False
        self.journal = JournalHealth.OK
        self.external = ""
        self.var = (
            PortfolioVar(n, limits.var_alpha, limits.var_lambda)
            if math.isfinite(limits.max_var)
            else None
        )
        caps = (limits.max_position_notional, limits.max_gross_notional, limits.max_net_notional)
        self._has_caps = not all(math.isinf(c) for c in caps)

    @property
    def state(self) -> TradingState:
        """Return the current trading state."""
        return self.machine.state

    def symbol_state(self, idx: int) -> TradingState:
        """Return the state that applies to symbol ``idx`` (its own data quality included)."""
        if self.state is TradingState.ACTIVE and self.symbol_reducing[idx]:
            return TradingState.REDUCING
        return self.state

    def _scale(self) -> float:
        return self.portfolio.equity() if self.limits.basis == "equity" else 1.0

    # --- real-time monitor -------------------------------------------------------------------
    def breaches(self) -> list[str]:
        """Return what asks for REDUCING: exceeded exposure/VaR limits, the journal, outside."""
        lim = self.limits
        out = []
        if self._has_caps or self.var is not None:
            scale = self._scale()
            notional = self.portfolio.position_notional()
            absolute = np.abs(notional)
            if notional.size and float(absolute.max()) > lim.max_position_notional * scale:
                out.append(_R.POSITION.label)
            if float(absolute.sum()) > lim.max_gross_notional * scale:
                out.append(_R.GROSS.label)
            if abs(float(notional.sum())) > lim.max_net_notional * scale:
                out.append(_R.NET.label)
            if self.var is not None and self.var.value(notional) > lim.max_var * scale:
                out.append(_R.VAR.label)
        if self.journal is JournalHealth.DEGRADED:
            out.append("journal degraded")
        if self.external:
            out.append(self.external)
        return out

    def on_mark(self, ts_ns: int, equity: float | None = None) -> TradingState:
        """Re-evaluate the trading state after marks changed at ``ts_ns`` (fail closed).

        Args:
            ts_ns: event time of the marks.
            equity: the portfolio's equity if the caller computed it (else computed here).
        """
        old = self.machine.state
        try:
            value = self.portfolio.equity() if equity is None else equity
            if not math.isfinite(value):
                raise ArithmeticError(f"equity is {value}")
            self.portfolio.update_high_water_mark(value)
            hit = drawdown_hit(value, self.portfolio.high_water_mark, self.limits.max_drawdown)
            if self.var is not None:
                self.var.on_marks(self.portfolio.last_price)
            breaches = [] if old is TradingState.HALTED else self.breaches()
        except Exception as e:  # fail closed: a risk engine that cannot compute must stop
            return self.halt(ts_ns, f"risk computation failed: {type(e).__name__}: {e}")
        new = self.machine.update(ts_ns, hit, breaches)
        if new is TradingState.HALTED and old is not TradingState.HALTED:
            self._entered_halt()
        return new

    def halt(self, ts_ns: int, reason: str) -> TradingState:
        """Halt now (journal lost data, a failed computation, an operator's kill switch)."""
        if self.machine.state is not TradingState.HALTED:
            self.machine.halt(ts_ns, reason)
            self._entered_halt()
        return self.machine.state

    def _entered_halt(self) -> None:
        self.flatten_pending = self.limits.on_halt == "flatten"

    def resume(self, ts_ns: int, reason: str = "operator resume") -> TradingState:
        """Leave HALTED (the only way out): ACTIVE, high-water mark re-based to equity now."""
        self.flatten_pending = False
        self.portfolio.high_water_mark = self.portfolio.equity()
        self.machine.reset(ts_ns, reason)
        return self.on_mark(ts_ns)

    def on_journal(self, ts_ns: int, health: JournalHealth) -> TradingState:
        """Take the journal's health: DEGRADED -> REDUCING, LOST -> HALTED."""
        self.journal = health
        if health is JournalHealth.LOST:
            return self.halt(ts_ns, "journal lost data")
        return self._reevaluate(ts_ns)

    def set_external(self, ts_ns: int, reason: str | None) -> TradingState:
        """Let an outside authority (the portfolio risk ledger) ask for REDUCING, or clear it.

        A non-empty ``reason`` is one of :meth:`breaches` until cleared with ``None``; the
        state follows at once (REDUCING, or back to ACTIVE when nothing else is breached).
        """
        self.external = reason or ""
        return self._reevaluate(ts_ns)

    def _reevaluate(self, ts_ns: int) -> TradingState:
        if self.machine.state is TradingState.HALTED:
            return self.machine.state
        try:
            breaches = self.breaches()
        except Exception as e:  # fail closed
            return self.halt(ts_ns, f"risk computation failed: {type(e).__name__}: {e}")
        return self.machine.update(ts_ns, False, breaches)

    def on_book_quality(self, idx: int, reason: str) -> None:
        """Set symbol ``idx``'s data quality: a non-empty ``reason`` makes it reduce-only."""
        self.symbol_quality[idx] = reason
        self.symbol_reducing[idx] = bool(reason)

    # --- saved state -------------------------------------------------------------------------
    def snapshot(self) -> RiskSnapshot:
        """Return everything later decisions depend on (see :class:`RiskSnapshot`)."""
        cov, updates, marks = self.var.state() if self.var is not None else ((), 0, ())
        return RiskSnapshot(
            state=self.machine.state,
            high_water_mark=self.portfolio.high_water_mark,
            symbol_quality=tuple(self.symbol_quality),
            flatten_pending=self.flatten_pending,
            journal=self.journal.value,
            rate_window=tuple(self._recent),
            var_cov=cov,
            var_updates=updates,
            var_marks=marks,
        )

    def restore(self, snap: RiskSnapshot) -> None:
        """Load a :meth:`snapshot` (the portfolio's positions and cash are restored apart).

        Raises:
            ValueError: if the snapshot does not fit this universe or these limits.
        """
        if len(snap.symbol_quality) != len(self.symbol_quality):
            raise ValueError("risk snapshot is for a different universe")
        if (self.var is None) != (not snap.var_marks):
            raise ValueError("risk snapshot and limits disagree about the VaR limit")
        self.machine.state = snap.state
        self.portfolio.high_water_mark = snap.high_water_mark
        for i, reason in enumerate(snap.symbol_quality):
            self.on_book_quality(i, reason)
        self.flatten_pending = snap.flatten_pending
        self.journal = JournalHealth(snap.journal)
        self._recent = deque(snap.rate_window)
        self._recent_count = sum(n for _, n in snap.rate_window)
        if self.var is not None:
            self.var.load(snap.var_cov, snap.var_updates, snap.var_marks)

    # --- pre-trade ---------------------------------------------------------------------------
    def check(
        self,
        symbol: str,
        qty: float,
        price: float,
        ts_ns: int,
        limit_price: float | None = None,
        mid: float | None = None,
    ) -> RiskDecision:
        """Check one order of signed ``qty`` units at reference ``price``."""
        idx = np.array([self.portfolio.index[symbol]], dtype=np.int64)
        lp = None if limit_price is None else np.array([limit_price])
        md = None if mid is None else np.array([mid])
        code = int(self.check_batch(ts_ns, idx, np.array([qty]), np.array([price]), lp, md)[0])
        return Approved() if code == _R.OK else Denied(DenyReason(code))

    def check_batch(
        self,
        ts_ns: int,
        idx: I64,
        qty: F64,
        price: F64,
        limit_price: F64 | None = None,
        mid: F64 | None = None,
    ) -> I8:
        """Check orders (signed ``qty`` units at reference ``price``) in the given order.

        Each order sees the exposure left by the ones approved before it, so a batch holds at
        most one order per symbol (a decision batch does).

        Returns:
            One :class:`DenyReason` code per order (``OK`` = 0). Approved orders count towards
            the order-rate limit.

        Raises:
            ValueError: if a symbol appears twice.
        """
        if len(idx) > 1 and len(set(idx.tolist())) != len(idx):
            raise ValueError("check_batch needs one order per symbol; split the batch")
        codes = np.zeros(len(idx), dtype=np.int8)
        if self.state is TradingState.HALTED:
            codes[:] = _HALTED
        elif len(idx):
            self._per_order(codes, idx, qty, price, limit_price, mid)
            self._aggregate(codes, idx, qty, price)
            self._var(codes, idx, qty, price)
            self._rate(codes, ts_ns)
        self._count(codes)
        return codes

    def check_flatten(self, idx: I64, qty: F64) -> I8:
        """Check the orders that close positions after a halt: only pure reductions pass.

        They bypass the exposure and rate limits (they can only shrink exposure) but never
        increase or flip a position.
        """
        pos = self.portfolio.position_lots[idx] * self.portfolio.lot[idx]
        post = pos + qty
        closes = (np.abs(post) < np.abs(pos)) & (post * pos >= 0)
        codes = np.where(closes, _OK, _REDUCING).astype(np.int8)
        self._count(codes)
        return codes

    def count(self, codes: I8) -> None:
        """Count denials decided outside the engine (the risk ledger's) in :attr:`denied_counts`."""
        self._count(codes)

    def _count(self, codes: I8) -> None:
        if np.count_nonzero(codes):
            np.add.at(self.denied_counts, codes[codes != _OK], 1)

    def _per_order(
        self, codes: I8, idx: I64, qty: F64, price: F64, limit_price: F64 | None, mid: F64 | None
    ) -> None:
        lim, scale = self.limits, self._scale()
        pos = self.portfolio.position_lots[idx] * self.portfolio.lot[idx]
        post = pos + qty
        increases = np.abs(post) > np.abs(pos)
        if self.state is TradingState.REDUCING:
            _deny(codes, not_reducing(pos, qty), _REDUCING)
        elif np.count_nonzero(self.symbol_reducing):
            mask = self.symbol_reducing[idx] & not_reducing(pos, qty)
            _deny(codes, mask, _SYMBOL_REDUCING)
        if lim.max_order_notional != math.inf:
            _deny(codes, np.abs(qty) * price > lim.max_order_notional * scale, _ORDER)
        if limit_price is not None and mid is not None and math.isfinite(lim.price_band_bps):
            off = np.abs(limit_price - mid) > mid * lim.price_band_bps * 1e-4
            _deny(codes, off & np.isfinite(limit_price), _BAND)
        if lim.max_position_notional != math.inf:
            too_big = np.abs(post) * price > lim.max_position_notional * scale
            _deny(codes, too_big & increases, _POSITION)

    def _aggregate(self, codes: I8, idx: I64, qty: F64, price: F64) -> None:
        lim = self.limits
        if math.isinf(lim.max_gross_notional) and math.isinf(lim.max_net_notional):
            return
        scale = self._scale()
        max_gross, max_net = lim.max_gross_notional * scale, lim.max_net_notional * scale
        pos = self.portfolio.position_lots[idx] * self.portfolio.lot[idx]
        d_gross, d_net = exposure_deltas(pos, qty, price)
        gross, net = self.portfolio.gross_exposure(), self.portfolio.net_exposure()
        check_aggregate(codes, d_gross, d_net, gross, net, max_gross, max_net)

    def _var(self, codes: I8, idx: I64, qty: F64, price: F64) -> None:
        if self.var is None:
            return
        limit = self.limits.max_var * self._scale()
        notional = self.portfolio.position_notional()
        over = self.var.deny(notional, codes == _OK, idx, qty * price, limit)
        codes[over] = _VAR

    def _rate(self, codes: I8, ts_ns: int) -> None:
        if self.limits.max_orders_per_window == 0:
            return
        live = np.flatnonzero(codes == _OK)
        codes[live[self.admit(ts_ns, len(live)) :]] = _RATE

    def admit(self, ts_ns: int, n_orders: int) -> int:
        """Order-rate limit: return how many of ``n_orders`` (in order) may go out at ``ts_ns``.

        The admitted ones are counted in the sliding window; without a rate limit all are.
        """
        cap = self.limits.max_orders_per_window
        if cap == 0:
            return n_orders
        while self._recent and self._recent[0][0] <= ts_ns - self.limits.rate_window_ns:
            self._recent_count -= self._recent.popleft()[1]
        approved = min(max(0, cap - self._recent_count), n_orders)
        if approved:
            self._recent.append((ts_ns, approved))
            self._recent_count += approved
        return approved


def _deny(codes: I8, mask: npt.NDArray[np.bool_], code: int) -> None:
    codes[mask & (codes == _OK)] = code
