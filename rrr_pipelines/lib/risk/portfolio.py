"""The portfolio a strategy would hold, read from a backtest of it (Dagster-free).

Risk reports and the promotion gate stress the book the trading core's strategy holds, not a
placeholder index portfolio. A backtest gives fills and an equity curve, not one portfolio, so a
single date is chosen by a stated convention:

* **The date of maximum gross exposure** over the equity rows given (for a holdout backtest:
  the holdout). A static VaR or stress figure scales with the gross book, so this is the most
  conservative single date; ties go to the earliest date.
* The position in a symbol is the sum of its signed fill quantities with fill time strictly
  before that equity row's time (fills happen at bar opens, the equity row is recorded at the
  batch's close, after that batch's fills), marked at the symbol's last ``close`` at or before
  it, exactly as the trading core marks it. The position values must reproduce the equity
  row's ``gross_exposure``; a mismatch (bars that are not the ones backtested) is an error.
* The portfolio value the figures are divided by is the strategy's **equity** on that date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from rrr_live.domain.bars import interval_ns
from rrr_live.risk.ewma import RiskInputError
from rrr_pipelines.lib.risk.data import returns_from_bars
from rrr_pipelines.lib.risk.report import PortfolioRisk, portfolio_risk

_FILL_COLUMNS = ("ts", "symbol", "side", "qty")
_EQUITY_COLUMNS = ("ts", "equity", "gross_exposure")
GROSS_TOLERANCE = 1e-6  # relative agreement of the rebuilt book with the recorded gross


class BacktestLike(Protocol):
    """Anything with the trading core's ``fills`` and ``equity`` frames.

    ``rrr_live.backtest.result.BacktestResult`` and
    ``rrr_pipelines.lib.ml.evaluation.HoldoutBacktest`` both qualify.
    """

    @property
    def fills(self) -> pd.DataFrame:
        """Fill rows: ``ts, symbol, side ("buy"/"sell"), qty`` (qty > 0)."""
        ...

    @property
    def equity(self) -> pd.DataFrame:
        """Equity rows: ``ts`` (batch close), ``equity``, ``gross_exposure``."""
        ...


@dataclass(frozen=True)
class StrategyPortfolio:
    """The book a strategy held on one date.

    Attributes:
        positions: Signed position value per symbol in the quote currency (short < 0); flat
            symbols are left out.
        equity: The strategy's equity on that date (the portfolio value risk is relative to).
        as_of: The equity row's time (the batch close, tz-aware UTC).
        gross_exposure: Sum of absolute position values (equals the recorded gross exposure).
    """

    positions: dict[str, float]
    equity: float
    as_of: pd.Timestamp
    gross_exposure: float


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RiskInputError(f"{what} frame lacks column(s) {missing}")


def _last_closes(bars: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Each symbol's last ``close`` among bars that close at or before ``as_of``."""
    _require(bars, ("symbol", "interval", "ts", "close"), "bars")
    intervals = bars["interval"].unique()
    if len(intervals) != 1:
        raise RiskInputError(f"bar frame mixes intervals {sorted(intervals)}; select one")
    step = pd.Timedelta(interval_ns(str(intervals[0])), unit="ns")
    closed = bars.loc[pd.DatetimeIndex(bars["ts"]) + step <= as_of, ["symbol", "ts", "close"]]
    return closed.sort_values("ts").groupby("symbol", sort=True)["close"].last().astype(float)


def _held_quantities(fills: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    if fills.empty:
        return pd.Series(dtype="float64")
    _require(fills, _FILL_COLUMNS, "fills")
    done = fills.loc[pd.DatetimeIndex(fills["ts"]) < as_of]
    sides = set(done["side"].unique()) - {"buy", "sell"}
    if sides:
        raise RiskInputError(f"fill side must be 'buy' or 'sell', got {sorted(sides)}")
    signed = np.where(done["side"] == "buy", 1.0, -1.0) * done["qty"].to_numpy(np.float64)
    return pd.Series(signed, index=done["symbol"].astype(str)).groupby(level=0).sum()


def strategy_portfolio(
    fills: pd.DataFrame, equity: pd.DataFrame, bars: pd.DataFrame
) -> StrategyPortfolio:
    """The book at the date of maximum gross exposure (see the module docstring).

    Args:
        fills: The backtest's fills from its first bar (a flat start).
        equity: Equity rows to choose the date from (e.g. the holdout part of the curve).
        bars: The canonical bars that were backtested (marks: ``close``).

    Returns:
        Positions, equity, date and gross exposure of that book.

    Raises:
        RiskInputError: on missing columns, no equity rows, a non-finite or non-positive
            equity on that date, a position without a price, or a book that does not
            reproduce the recorded gross exposure.
    """
    _require(equity, _EQUITY_COLUMNS, "equity")
    if equity.empty:
        raise RiskInputError("no equity rows to choose the portfolio date from")
    gross = equity["gross_exposure"].to_numpy(np.float64)
    if not np.isfinite(gross).all():
        raise RiskInputError("gross_exposure holds NaN/inf")
    row = equity.iloc[int(np.argmax(gross))]  # the first date of the maximum
    as_of, value = pd.Timestamp(row["ts"]), float(row["equity"])
    if not (np.isfinite(value) and value > 0):
        raise RiskInputError(f"equity on {as_of} is {value}; risk relative to it is undefined")
    qty = _held_quantities(fills, as_of)
    closes = _last_closes(bars, as_of)
    unpriced = sorted(set(qty.index[qty != 0]) - set(closes.index))
    if unpriced:
        raise RiskInputError(f"no close at or before {as_of} for held symbol(s) {unpriced}")
    values = (qty * closes.reindex(qty.index)).fillna(0.0)
    # Quantities are sums of lot multiples: drop float residue of a closed position.
    values = values[values.abs() > 1e-9 * max(value, 1.0)]
    total = float(values.abs().sum())
    recorded = float(row["gross_exposure"])
    if abs(total - recorded) > GROSS_TOLERANCE * max(recorded, value):
        raise RiskInputError(
            f"fills marked at the bars' closes give gross {total:,.2f} on {as_of}, but the "
            f"equity curve records {recorded:,.2f}: the bars are not the ones backtested"
        )
    positions = {str(s): float(v) for s, v in values.sort_index().items()}
    return StrategyPortfolio(positions, value, as_of, total)


def strategy_positions(
    backtest: BacktestLike, bars: pd.DataFrame
) -> tuple[dict[str, float], float]:
    """``(positions, equity)`` of the book at the backtest's maximum gross exposure.

    The convention (conservative date choice, marks, equity as portfolio value) is in the
    module docstring; :func:`strategy_portfolio` also returns the date.

    Args:
        backtest: A ``BacktestResult`` or a ``HoldoutBacktest`` (its ``fills`` and ``equity``).
        bars: The canonical bars that were backtested.
    """
    book = strategy_portfolio(backtest.fills, backtest.equity, bars)
    return book.positions, book.equity


@dataclass(frozen=True)
class BookRisk:
    """A strategy's book and its VaR/stress figures (``risk`` is ``None`` for a flat book).

    Attributes:
        book: The book at the maximum gross exposure.
        risk: VaR table and stress summary of the book; ``None`` when it holds nothing (a flat
            book has no market risk: zero VaR and zero stress loss).
    """

    book: StrategyPortfolio
    risk: PortfolioRisk | None

    @property
    def var_99_1d(self) -> float:
        """Historical-simulation 99 % 1-day VaR in currency (0 for a flat book)."""
        return 0.0 if self.risk is None else self.risk.var_99_1d

    @property
    def worst_stress_loss(self) -> float:
        """Worst static stress loss in currency (0 for a flat book)."""
        return 0.0 if self.risk is None else self.risk.worst_stress_loss


def book_risk(backtest: BacktestLike, bars: pd.DataFrame) -> BookRisk:
    """VaR and stress of the book a backtested strategy holds at its maximum gross exposure.

    The returns are :func:`~rrr_pipelines.lib.risk.data.returns_from_bars` of the same bars
    (the whole history: VaR uses its last 250 days, the stresses all of it); the maths is
    :func:`~rrr_pipelines.lib.risk.report.portfolio_risk`, the same as the risk assets'.

    Raises:
        RiskInputError: if the book cannot be rebuilt or the history is too short for VaR.
    """
    book = strategy_portfolio(backtest.fills, backtest.equity, bars)
    if not book.positions:
        return BookRisk(book, None)
    return BookRisk(book, portfolio_risk(returns_from_bars(bars), book.positions))
