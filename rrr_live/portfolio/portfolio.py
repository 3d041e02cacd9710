"""Portfolio: positions, cash, average-cost PnL, exposure, equity and high-water mark.

State is held in arrays indexed by symbol, so a whole decision batch of fills or marks is one
vectorized update; the single-fill :meth:`Portfolio.apply_fill` goes through the same code.
Positions are integer lots (exact: a position is the sum of its fills); cash and PnL are float64.

Accounting identities (tested): ``cash = initial - sum(signed_qty * price) - fees`` and
``equity - initial = realized + unrealized - fees``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from rrr_live.domain.events import Fill
from rrr_live.portfolio.numeric import fsum

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def average_cost_update(pos: F64, avg: F64, qty: F64, price: F64) -> tuple[F64, F64, F64]:
    """Apply signed trades ``qty`` at ``price`` to positions ``pos`` with average cost ``avg``.

    Returns:
        ``(new_pos, new_avg, realized)``: realized PnL of the part that closed a position
        (gross of fees); a trade that flips the position opens the remainder at ``price``.
    """
    new_pos = pos + qty
    same = pos * qty >= 0
    abs_pos, abs_qty = np.abs(pos), np.abs(qty)
    # multiplying by a mask selects exactly (x * 1 == x, x * 0 == 0 for finite x >= 0) and costs
    # less than np.where on the few symbols of a batch
    closed = np.minimum(abs_qty, abs_pos) * ~same
    realized = closed * (price - avg) * np.sign(pos)
    grown = np.abs(new_pos)
    # grown is 0 where the trade closes the position (blended unused) or pos == qty == 0
    # (numerator 0): divide by 1 there
    blended = (avg * abs_pos + price * abs_qty) / (grown + (grown == 0))
    flipped = abs_qty > abs_pos
    new_avg = np.where(same, blended, np.where(flipped, price, avg * (new_pos != 0)))
    return new_pos, new_avg, realized


def drawdown(equity: float, high_water_mark: float) -> float:
    """Return ``1 - equity / high_water_mark`` (0 at a new high, 1 without a positive mark)."""
    if high_water_mark <= 0:
        return 1.0
    return max(0.0, 1.0 - equity / high_water_mark)


class Portfolio:
    """Cash and positions over a fixed symbol universe.

    Args:
        symbols: the universe, in index order.
        initial_cash: starting cash in the quote currency.
        lot_sizes: size of one lot per symbol (default 1.0).
    """

    def __init__(
        self,
        symbols: Sequence[str],
        initial_cash: float,
        lot_sizes: Sequence[float] | None = None,
    ) -> None:
        if len(set(symbols)) != len(symbols):
            raise ValueError("Portfolio symbols must be unique")
        n = len(symbols)
        self.symbols = tuple(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.lot = np.ones(n) if lot_sizes is None else np.asarray(lot_sizes, dtype=np.float64)
        if self.lot.shape != (n,) or np.any(self.lot <= 0):
            raise ValueError("lot_sizes must be one positive number per symbol")
        self.initial_cash = float(initial_cash)
        self.cash = float(initial_cash)
        self.position_lots: I64 = np.zeros(n, dtype=np.int64)
        self.avg_price: F64 = np.zeros(n)
        self.realized: F64 = np.zeros(n)
        self.last_price: F64 = np.full(n, np.nan)
        self._all_marked = False
        self.fees_paid = 0.0
        self.traded_notional = 0.0
        self.n_fills = 0
        self.high_water_mark = float(initial_cash)
        self._curve_ts: list[int] = []
        self._curve_equity: list[float] = []

    # --- updates -----------------------------------------------------------------------------
    def apply_fills(self, idx: I64, signed_lots: I64, price: F64, fee: F64) -> None:
        """Apply one fill per symbol index (indices must be unique within a call)."""
        if len(idx) == 0:
            return
        if len(idx) > 1 and len(set(idx.tolist())) != len(idx):
            raise ValueError("apply_fills needs unique symbol indices; split the batch")
        lot = self.lot[idx]
        qty = signed_lots * lot
        pos = self.position_lots[idx] * lot
        _, new_avg, realized = average_cost_update(pos, self.avg_price[idx], qty, price)
        self.position_lots[idx] += signed_lots
        self.avg_price[idx] = new_avg
        self.realized[idx] += realized
        notional = qty * price
        fees = float(fsum(fee))
        self.cash -= float(fsum(notional)) + fees
        self.fees_paid += fees
        self.traded_notional += float(fsum(np.abs(notional)))
        self.n_fills += len(idx)
        unmarked = np.isnan(self.last_price[idx])
        if np.count_nonzero(unmarked):
            self.last_price[idx[unmarked]] = price[unmarked]

    def apply_fill(self, fill: Fill) -> None:
        """Apply one :class:`Fill` (the symbol must be in the universe)."""
        i = self.index[fill.symbol]
        self.apply_fills(
            np.array([i], dtype=np.int64),
            np.array([fill.qty_lots * int(fill.side)], dtype=np.int64),
            np.array([fill.price]),
            np.array([fill.fee]),
        )

    def mark(self, idx: I64, prices: F64) -> None:
        """Set the mark prices of symbols ``idx``."""
        self.last_price[idx] = prices

    def mark_symbol(self, symbol: str, price: float) -> None:
        """Set the mark price of one symbol."""
        self.last_price[self.index[symbol]] = price

    # --- views -------------------------------------------------------------------------------
    def positions(self) -> F64:
        """Return positions in units (lots times lot size)."""
        return self.position_lots * self.lot

    def position(self, symbol: str) -> float:
        """Return the position of ``symbol`` in units."""
        i = self.index[symbol]
        return float(self.position_lots[i] * self.lot[i])

    def marks(self) -> F64:
        """Return the mark of every symbol (its average cost where it was never marked).

        Marks are never unset, so once every symbol has one this is ``last_price`` itself
        (read it, do not write it).
        """
        if self._all_marked:
            return self.last_price
        unmarked = np.isnan(self.last_price)
        if not np.count_nonzero(unmarked):
            self._all_marked = True
            return self.last_price
        return np.where(unmarked, self.avg_price, self.last_price)

    def position_notional(self) -> F64:
        """Return signed marked notional per symbol."""
        return self.positions() * self.marks()

    def valuation(self) -> tuple[float, float, float]:
        """Return ``(equity, gross exposure, net exposure)`` at the current marks."""
        notional = self.position_notional()
        net = float(fsum(notional))
        return self.cash + net, float(fsum(np.abs(notional))), net

    def market_value(self) -> float:
        """Return the signed marked value of all positions."""
        return float(fsum(self.position_notional()))

    def equity(self) -> float:
        """Return cash plus marked positions."""
        return self.cash + self.market_value()

    def gross_exposure(self) -> float:
        """Return the sum of absolute marked position notionals."""
        return float(fsum(np.abs(self.position_notional())))

    def net_exposure(self) -> float:
        """Return the signed sum of marked position notionals."""
        return self.market_value()

    def unrealized(self) -> F64:
        """Return unrealized PnL per symbol against the average cost."""
        return self.positions() * (self.marks() - self.avg_price)

    def pnl(self) -> float:
        """Return PnL since the first fill: realized + unrealized - fees (cash is not read).

        Rebuilt from the fills alone (``replay_fills`` after a restart gives the same number),
        so it stays right when the cash is re-read from a venue account other runners share.
        """
        return float(fsum(self.realized) + fsum(self.unrealized())) - self.fees_paid

    def update_high_water_mark(self, equity: float | None = None) -> float:
        """Raise the high-water mark to ``equity`` (default: current equity) and return it."""
        value = self.equity() if equity is None else equity
        self.high_water_mark = max(self.high_water_mark, value)
        return self.high_water_mark

    def drawdown(self, equity: float | None = None) -> float:
        """Return ``1 - equity / high_water_mark`` (0 at a new high)."""
        return drawdown(self.equity() if equity is None else equity, self.high_water_mark)

    def record(self, ts_ns: int) -> float:
        """Append ``(ts_ns, equity)`` to the curve, raise the high-water mark, return equity."""
        value = self.equity()
        self._curve_ts.append(ts_ns)
        self._curve_equity.append(value)
        self.update_high_water_mark(value)
        return value

    def equity_curve(self) -> tuple[I64, F64]:
        """Return the recorded equity curve as ``(ts_ns, equity)`` arrays."""
        return np.asarray(self._curve_ts, dtype=np.int64), np.asarray(self._curve_equity)
