"""Portfolio and risk state as Python scalars, for the scalar backtest loop.

For universes of fewer than :data:`SCALAR_MAX_SYMBOLS` symbols a numpy call costs far more than
the arithmetic it does, so :mod:`rrr_live.backtest.scalar` keeps the portfolio in Python lists
and checks risk with plain floats. Every formula here repeats, operation for operation, the
vectorized one it stands for (:class:`~rrr_live.portfolio.portfolio.Portfolio`,
:class:`~rrr_live.risk.limits.RiskEngine`), and sums use numpy's order for short arrays
(:func:`nsum`), so results are bit-identical; parity tests compare the two loops' hashes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final

from rrr_live.portfolio.portfolio import Portfolio, average_cost_update_scalar
from rrr_live.risk.limits import (
    GROSS,
    HALTED,
    NET,
    ORDER_NOTIONAL,
    POSITION,
    RATE,
    REASONS,
    REDUCING_ONLY,
    RiskEngine,
)
from rrr_live.risk.state import TradingState

# numpy adds fewer than 8 float64 values one after another, starting from 0.0; from 8 on it
# switches to pairwise summation with 8 accumulators, which a plain loop does not reproduce
SCALAR_MAX_SYMBOLS: Final[int] = 7


def nsum(values: Iterable[float]) -> float:
    """Return ``0.0 + v0 + v1 + ...``: ``np.sum`` of fewer than 8 float64 values, exactly."""
    total = 0.0
    for v in values:
        total += v
    return total


class ScalarPortfolio:
    """The state of a :class:`Portfolio` in Python lists (loaded from and written back to it).

    Args:
        portfolio: the portfolio to mirror (its state is copied now and by :meth:`write_back`).
    """

    def __init__(self, portfolio: Portfolio) -> None:
        self.pos: list[int] = portfolio.position_lots.tolist()
        self.lot: list[float] = portfolio.lot.tolist()
        self.avg: list[float] = portfolio.avg_price.tolist()
        self.realized: list[float] = portfolio.realized.tolist()
        self.last: list[float] = portfolio.last_price.tolist()
        self.cash = portfolio.cash
        self.fees_paid = portfolio.fees_paid
        self.traded_notional = portfolio.traded_notional
        self.n_fills = portfolio.n_fills
        self.high_water_mark = portfolio.high_water_mark

    def write_back(self, portfolio: Portfolio) -> None:
        """Store this state into ``portfolio``."""
        portfolio.position_lots[:] = self.pos
        portfolio.avg_price[:] = self.avg
        portfolio.realized[:] = self.realized
        portfolio.last_price[:] = self.last
        portfolio.cash = self.cash
        portfolio.fees_paid = self.fees_paid
        portfolio.traded_notional = self.traded_notional
        portfolio.n_fills = self.n_fills
        portfolio.high_water_mark = self.high_water_mark

    def position_notional(self) -> list[float]:
        """Signed marked notional per symbol (unmarked symbols at their average cost)."""
        return [
            (p * lot) * (a if m != m else m)
            for p, lot, a, m in zip(self.pos, self.lot, self.avg, self.last, strict=True)
        ]

    def equity(self) -> float:
        """Return cash plus marked positions."""
        return self.cash + nsum(self.position_notional())

    def apply_fills(
        self, idx: Sequence[int], lots: Sequence[int], price: Sequence[float], fee: Sequence[float]
    ) -> None:
        """Apply one fill per (distinct) symbol, like :meth:`Portfolio.apply_fills`."""
        notional_sum = fee_sum = abs_sum = 0.0
        for i, n, px, f in zip(idx, lots, price, fee, strict=True):
            lot = self.lot[i]
            qty = n * lot
            _, self.avg[i], realized = average_cost_update_scalar(
                self.pos[i] * lot, self.avg[i], qty, px
            )
            self.pos[i] += n
            self.realized[i] += realized
            notional = qty * px
            notional_sum += notional
            fee_sum += f
            abs_sum += abs(notional)
            if self.last[i] != self.last[i]:
                self.last[i] = px
        self.cash -= notional_sum + fee_sum
        self.fees_paid += fee_sum
        self.traded_notional += abs_sum
        self.n_fills += len(idx)


class ScalarRisk:
    """:class:`RiskEngine` checks on a :class:`ScalarPortfolio` (same state machine and counters).

    Args:
        engine: the risk engine whose limits, state machine, rate window and denial counters
            are used and updated.
        book: the scalar portfolio the checks read.
    """

    def __init__(self, engine: RiskEngine, book: ScalarPortfolio) -> None:
        self.engine, self.book, self.limits = engine, book, engine.limits
        lim = self.limits
        caps = (lim.max_position_notional, lim.max_gross_notional, lim.max_net_notional)
        self.has_caps = not all(math.isinf(c) for c in caps)
        self.has_aggregate = not (
            math.isinf(lim.max_gross_notional) and math.isinf(lim.max_net_notional)
        )

    def _scale(self) -> float:
        return self.book.equity() if self.limits.basis == "equity" else 1.0

    def breaches(self) -> list[str]:
        """Return the exposure limits currently exceeded (see :meth:`RiskEngine.breaches`)."""
        if not self.has_caps:
            return []
        lim, scale = self.limits, self._scale()
        notional = self.book.position_notional()
        absolute = [abs(x) for x in notional]
        out = []
        if absolute and max(absolute) > lim.max_position_notional * scale:
            out.append(REASONS[POSITION])
        if nsum(absolute) > lim.max_gross_notional * scale:
            out.append(REASONS[GROSS])
        if abs(nsum(notional)) > lim.max_net_notional * scale:
            out.append(REASONS[NET])
        return out

    def on_mark(self, ts_ns: int, equity: float) -> TradingState:
        """Update the high-water mark and the trading state (see :meth:`RiskEngine.on_mark`)."""
        book = self.book
        book.high_water_mark = hwm = max(book.high_water_mark, equity)
        drawdown = 1.0 if hwm <= 0 else max(0.0, 1.0 - equity / hwm)
        hit = drawdown >= self.limits.max_drawdown
        return self.engine.machine.update(ts_ns, hit, self.breaches())

    def check(self, ts_ns: int, idx: list[int], qty: list[float], price: list[float]) -> list[int]:
        """Return reason codes for orders of signed ``qty`` units (see ``check_batch``)."""
        state = self.engine.machine.state
        if state is TradingState.HALTED:
            codes = [HALTED] * len(idx)
        else:
            codes = self._per_order(state, idx, qty, price)
            if self.has_aggregate:
                self._aggregate(codes, idx, qty, price)
            self._rate(codes, ts_ns)
        for c in codes:
            if c:
                self.engine.denied_counts[c] += 1
        return codes

    def _per_order(
        self, state: TradingState, idx: list[int], qty: list[float], price: list[float]
    ) -> list[int]:
        lim, scale, book = self.limits, self._scale(), self.book
        max_order = lim.max_order_notional * scale
        max_position = lim.max_position_notional * scale
        reducing = state is TradingState.REDUCING
        codes = []
        for i, q, px in zip(idx, qty, price, strict=True):
            pos = book.pos[i] * book.lot[i]
            post = pos + q
            increases = abs(post) > abs(pos)
            if reducing and (increases or post * pos < 0):
                codes.append(REDUCING_ONLY)
            elif abs(q) * px > max_order:
                codes.append(ORDER_NOTIONAL)
            elif increases and abs(post) * px > max_position:
                codes.append(POSITION)
            else:
                codes.append(0)
        return codes

    def _aggregate(
        self, codes: list[int], idx: list[int], qty: list[float], price: list[float]
    ) -> None:
        lim, scale, book = self.limits, self._scale(), self.book
        max_gross, max_net = lim.max_gross_notional * scale, lim.max_net_notional * scale
        d_gross, d_net = [], []
        for i, q, px in zip(idx, qty, price, strict=True):
            pos = book.pos[i] * book.lot[i]
            d_gross.append((abs(pos + q) - abs(pos)) * px)
            d_net.append(q * px)
        notional = book.position_notional()
        gross, net = nsum(abs(x) for x in notional), nsum(notional)
        live = [j for j, c in enumerate(codes) if c == 0]
        fast_gross = gross + nsum(max(d_gross[j], 0) for j in live) <= max_gross
        if fast_gross and abs(net) + nsum(abs(d_net[j]) for j in live) <= max_net:
            return
        for j in live:
            g, n = gross + d_gross[j], net + d_net[j]
            if g > max_gross and d_gross[j] > 0:
                codes[j] = GROSS
            elif abs(n) > max_net and abs(n) > abs(net):
                codes[j] = NET
            else:
                gross, net = g, n

    def _rate(self, codes: list[int], ts_ns: int) -> None:
        if self.limits.max_orders_per_window == 0:
            return
        live = [j for j, c in enumerate(codes) if c == 0]
        for j in live[self.engine.admit(ts_ns, len(live)) :]:
            codes[j] = RATE
