"""Failures of the trading core (subclasses of :class:`rrr_live.errors.RRRError`).

Business rejections (an order the venue rejects, a risk denial) are values, not exceptions;
these exceptions signal programming or input errors.
"""

from __future__ import annotations

from rrr_live.errors import RRRError


class TradingCoreError(RRRError):
    """Base class of trading-core failures."""


class InstrumentError(TradingCoreError):
    """An instrument definition or a price/size conversion is invalid."""


class InvalidOrderTransition(TradingCoreError):
    """An order was asked to move to a state its state machine does not allow."""


class BookError(TradingCoreError):
    """An order-book update is malformed (unknown side, negative size, ...)."""


class UnknownOrderError(TradingCoreError):
    """An order id is not known to the venue or the engine."""


class BacktestInputError(TradingCoreError):
    """The bars, scores or configuration given to a backtest are unusable."""
