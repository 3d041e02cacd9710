"""Pre-trade risk limits and the real-time risk monitor.

One vectorized implementation serves a whole decision batch (backtest, live runner) and the
scalar :meth:`RiskEngine.check` (paper venue, single orders). Orders are checked in the batch's
order (symbols sorted), each seeing the exposure left by the ones approved before it.

Invariant: no approved order moves an exposure past a limit *in the increasing direction*; an
order that reduces an exposure is never denied by that exposure's limit (only HALTED stops it).
Exposure limits are in the quote currency, or in multiples of current equity when
``basis="equity"``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.state import Approved, Denied, RiskDecision, TradingState, TradingStateMachine

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]

OK: Final = 0
REASONS: Final[tuple[str, ...]] = (
    "",
    "halted",
    "reducing only",
    "order notional limit",
    "price outside band around mid",
    "position limit",
    "gross notional limit",
    "net notional limit",
    "order rate limit",
)
HALTED, REDUCING_ONLY, ORDER_NOTIONAL, PRICE_BAND, POSITION, GROSS, NET, RATE = range(1, 9)


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
            for the four notional limits.
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

    def __post_init__(self) -> None:
        values = (
            self.max_position_notional,
            self.max_gross_notional,
            self.max_net_notional,
            self.max_order_notional,
            self.price_band_bps,
        )
        if any(v <= 0 for v in values) or not 0 < self.max_drawdown <= 1:
            raise ValueError(f"risk limits must be positive and max_drawdown in (0, 1]: {self}")
        if self.basis not in ("absolute", "equity"):
            raise ValueError(f"basis must be 'absolute' or 'equity', got {self.basis!r}")
        if self.max_orders_per_window < 0 or self.rate_window_ns <= 0:
            raise ValueError("max_orders_per_window must be >= 0 and rate_window_ns > 0")


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
        self.denied_counts = np.zeros(len(REASONS), dtype=np.int64)

    @property
    def state(self) -> TradingState:
        """Return the current trading state."""
        return self.machine.state

    def _scale(self) -> float:
        return self.portfolio.equity() if self.limits.basis == "equity" else 1.0

    # --- real-time monitor -------------------------------------------------------------------
    def breaches(self) -> list[str]:
        """Return the exposure limits currently exceeded (by positions and marks)."""
        lim = self.limits
        caps = (lim.max_position_notional, lim.max_gross_notional, lim.max_net_notional)
        if all(math.isinf(c) for c in caps):
            return []
        scale = self._scale()
        notional = self.portfolio.position_notional()
        out = []
        if notional.size and float(np.abs(notional).max()) > lim.max_position_notional * scale:
            out.append(REASONS[POSITION])
        if float(np.abs(notional).sum()) > lim.max_gross_notional * scale:
            out.append(REASONS[GROSS])
        if abs(float(notional.sum())) > lim.max_net_notional * scale:
            out.append(REASONS[NET])
        return out

    def on_mark(self, ts_ns: int, equity: float | None = None) -> TradingState:
        """Re-evaluate the trading state after marks changed at ``ts_ns``."""
        value = self.portfolio.equity() if equity is None else equity
        self.portfolio.update_high_water_mark(value)
        drawdown_hit = self.portfolio.drawdown(value) >= self.limits.max_drawdown
        return self.machine.update(ts_ns, drawdown_hit, self.breaches())

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
        return Approved() if code == OK else Denied(REASONS[code])

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

        Returns:
            One reason code per order: ``OK`` (0) or an index into ``REASONS``. Approved orders
            count towards the order-rate limit.
        """
        codes = np.zeros(len(idx), dtype=np.int8)
        if self.state is TradingState.HALTED:
            codes[:] = HALTED
        elif len(idx):
            self._per_order(codes, idx, qty, price, limit_price, mid)
            self._aggregate(codes, idx, qty, price)
            self._rate(codes, ts_ns)
        if codes.any():
            np.add.at(self.denied_counts, codes[codes != OK], 1)
        return codes

    def _per_order(
        self, codes: I8, idx: I64, qty: F64, price: F64, limit_price: F64 | None, mid: F64 | None
    ) -> None:
        lim, scale = self.limits, self._scale()
        pos = self.portfolio.position_lots[idx] * self.portfolio.lot[idx]
        post = pos + qty
        increases = np.abs(post) > np.abs(pos)
        if self.state is TradingState.REDUCING:
            _deny(codes, increases | (post * pos < 0), REDUCING_ONLY)
        _deny(codes, np.abs(qty) * price > lim.max_order_notional * scale, ORDER_NOTIONAL)
        if limit_price is not None and mid is not None and math.isfinite(lim.price_band_bps):
            off = np.abs(limit_price - mid) > mid * lim.price_band_bps * 1e-4
            _deny(codes, off & np.isfinite(limit_price), PRICE_BAND)
        too_big = np.abs(post) * price > lim.max_position_notional * scale
        _deny(codes, too_big & increases, POSITION)

    def _aggregate(self, codes: I8, idx: I64, qty: F64, price: F64) -> None:
        lim, scale = self.limits, self._scale()
        max_gross, max_net = lim.max_gross_notional * scale, lim.max_net_notional * scale
        if math.isinf(max_gross) and math.isinf(max_net):
            return
        pos = self.portfolio.position_lots[idx] * self.portfolio.lot[idx]
        d_gross = (np.abs(pos + qty) - np.abs(pos)) * price
        d_net = qty * price
        gross, net = self.portfolio.gross_exposure(), self.portfolio.net_exposure()
        live = codes == OK
        fast_gross = gross + float(np.maximum(d_gross[live], 0).sum()) <= max_gross
        if fast_gross and abs(net) + float(np.abs(d_net[live]).sum()) <= max_net:
            return
        for i in np.flatnonzero(live):
            g, n = gross + d_gross[i], net + d_net[i]
            if g > max_gross and d_gross[i] > 0:
                codes[i] = GROSS
            elif abs(n) > max_net and abs(n) > abs(net):
                codes[i] = NET
            else:
                gross, net = g, n

    def _rate(self, codes: I8, ts_ns: int) -> None:
        if self.limits.max_orders_per_window == 0:
            return
        live = np.flatnonzero(codes == OK)
        codes[live[self.admit(ts_ns, len(live)) :]] = RATE

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
    codes[mask & (codes == OK)] = code
