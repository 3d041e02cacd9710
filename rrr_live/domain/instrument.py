"""Instruments: tick size, lot size, minimum notional and exact scaled-integer conversions.

Inside the core, prices are integer *ticks* (multiples of ``tick_size``) and sizes are integer
*lots* (multiples of ``lot_size``); floats and decimal strings exist only at the edges. The
conversions below are the only place where rounding happens, and every rounding is explicit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from enum import Enum
from typing import Final

import numpy as np
import numpy.typing as npt

from rrr_live.domain.errors import InstrumentError

_REL_EPS: Final[float] = 1e-9


class Rounding(Enum):
    """How a float price or size is moved onto the integer grid."""

    NEAREST = "nearest"
    DOWN = "down"
    UP = "up"


def _to_decimal(value: Decimal | str | float | int, name: str) -> Decimal:
    try:
        dec = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError as e:
        raise InstrumentError(f"{name} {value!r} is not a number") from e
    if not dec.is_finite():
        raise InstrumentError(f"{name} must be finite, got {value!r}")
    return dec


def _precision(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -int(exponent)) if isinstance(exponent, int) else 0


def to_grid(value: float, step: float, rounding: Rounding) -> int:
    """Convert ``value`` to an integer number of ``step`` units.

    Values within a relative 1e-9 of a grid point snap to it, so ``0.3 / 0.1`` is 3 in every mode.

    Raises:
        InstrumentError: if ``value`` is not finite.
    """
    if not math.isfinite(value):
        raise InstrumentError(f"cannot put non-finite value {value!r} on a grid of {step}")
    units = value / step
    nearest = round(units)
    if abs(units - nearest) <= _REL_EPS * max(1.0, abs(units)):
        return int(nearest)
    if rounding is Rounding.DOWN:
        return math.floor(units)
    if rounding is Rounding.UP:
        return math.ceil(units)
    return int(nearest)


def to_grid_array(
    values: npt.NDArray[np.float64],
    step: float | npt.NDArray[np.float64],
    rounding: Rounding,
) -> npt.NDArray[np.int64]:
    """Vectorized :func:`to_grid` (``step`` may be one per value; non-finite values raise)."""
    if not np.all(np.isfinite(values)):
        raise InstrumentError("cannot put non-finite values on a price/size grid")
    units = values / step
    nearest = np.round(units)
    snap = np.abs(units - nearest) <= _REL_EPS * np.maximum(1.0, np.abs(units))
    if rounding is Rounding.DOWN:
        moved = np.floor(units)
    elif rounding is Rounding.UP:
        moved = np.ceil(units)
    else:
        moved = nearest
    return np.where(snap, nearest, moved).astype(np.int64)


def to_grid_against(
    prices: npt.NDArray[np.float64],
    step: npt.NDArray[np.float64],
    side: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Round fill prices onto the tick grid against the trader: up for buys, down for sells.

    Prices within a relative 1e-9 of a grid point snap to it (as :func:`to_grid`).
    """
    units = prices / step
    eps = _REL_EPS * np.maximum(1.0, np.abs(units))
    return np.where(side > 0, np.ceil(units - eps), np.floor(units + eps)).astype(np.int64)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument.

    Args:
        symbol: the venue's symbol.
        tick_size: price increment (decimal string or number, > 0).
        lot_size: size increment (> 0).
        min_notional: smallest accepted ``price * size`` of an order (>= 0).
        quote_currency: the currency prices and cash are in.
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal = Decimal(0)
    quote_currency: str = "USD"
    tick: float = field(init=False, repr=False)
    lot: float = field(init=False, repr=False)
    price_precision: int = field(init=False, repr=False)
    size_precision: int = field(init=False, repr=False)
    min_notional_units: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tick = _to_decimal(self.tick_size, "tick_size")
        lot = _to_decimal(self.lot_size, "lot_size")
        min_notional = _to_decimal(self.min_notional, "min_notional")
        if not self.symbol:
            raise InstrumentError("instrument symbol must be a non-empty string")
        if tick <= 0 or lot <= 0:
            raise InstrumentError(
                f"{self.symbol}: tick_size and lot_size must be > 0, got {tick} and {lot}"
            )
        if min_notional < 0:
            raise InstrumentError(f"{self.symbol}: min_notional must be >= 0, got {min_notional}")
        units = (min_notional / (tick * lot)).to_integral_value(rounding=ROUND_CEILING)
        object.__setattr__(self, "tick_size", tick)
        object.__setattr__(self, "lot_size", lot)
        object.__setattr__(self, "min_notional", min_notional)
        object.__setattr__(self, "tick", float(tick))
        object.__setattr__(self, "lot", float(lot))
        object.__setattr__(self, "price_precision", _precision(tick))
        object.__setattr__(self, "size_precision", _precision(lot))
        object.__setattr__(self, "min_notional_units", int(units))

    @classmethod
    def create(
        cls,
        symbol: str,
        tick_size: Decimal | str | float,
        lot_size: Decimal | str | float,
        min_notional: Decimal | str | float = 0,
        quote_currency: str = "USD",
    ) -> Instrument:
        """Build an instrument from decimal strings or numbers (floats go through ``str``)."""
        return cls(
            symbol,
            _to_decimal(tick_size, "tick_size"),
            _to_decimal(lot_size, "lot_size"),
            _to_decimal(min_notional, "min_notional"),
            quote_currency,
        )

    def price_to_ticks(
        self, price: float | str | Decimal, rounding: Rounding = Rounding.NEAREST
    ) -> int:
        """Convert a price to integer ticks (exact for decimal strings on the grid)."""
        if isinstance(price, str | Decimal):
            return self._decimal_to_units(_to_decimal(price, "price"), self.tick_size, rounding)
        return to_grid(float(price), self.tick, rounding)

    def size_to_lots(self, size: float | str | Decimal, rounding: Rounding = Rounding.DOWN) -> int:
        """Convert a size to integer lots (rounds down by default: never more than asked)."""
        if isinstance(size, str | Decimal):
            return self._decimal_to_units(_to_decimal(size, "size"), self.lot_size, rounding)
        return to_grid(float(size), self.lot, rounding)

    def grid_price_factors(self) -> tuple[float, float]:
        """Return ``(mul, div)`` with ``ticks * mul / div`` the correctly rounded float price.

        For ticks like 0.01 or 0.25, dividing by the integer ``1 / tick`` avoids the one-ulp
        error of ``ticks * 0.01``.
        """
        inverse = 1 / self.tick_size
        if inverse == inverse.to_integral_value():
            return 1.0, float(inverse)
        return self.tick, 1.0

    def ticks_to_price(self, ticks: int) -> float:
        """Return the float price of ``ticks`` (for reporting and float maths)."""
        return float(self.ticks_to_decimal(ticks))

    def ticks_to_decimal(self, ticks: int) -> Decimal:
        """Return the exact decimal price of ``ticks``."""
        return self.tick_size * ticks

    def lots_to_size(self, lots: int) -> float:
        """Return the float size of ``lots``."""
        return float(self.lot_size * lots)

    def notional(self, ticks: int, lots: int) -> float:
        """Return ``price * size`` in the quote currency."""
        return float(self.tick_size * self.lot_size * (ticks * lots))

    def meets_min_notional(self, ticks: int, lots: int) -> bool:
        """Return whether an order of ``lots`` at ``ticks`` reaches ``min_notional`` (exact)."""
        return abs(ticks * lots) >= self.min_notional_units

    @staticmethod
    def _decimal_to_units(value: Decimal, step: Decimal, rounding: Rounding) -> int:
        units = value / step
        if rounding is Rounding.DOWN:
            return int(units.to_integral_value(rounding="ROUND_FLOOR"))
        if rounding is Rounding.UP:
            return int(units.to_integral_value(rounding=ROUND_CEILING))
        return int(units.to_integral_value(rounding="ROUND_HALF_EVEN"))
