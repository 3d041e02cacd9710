"""Exact conversion of the venues' decimal strings into integer ticks and lots.

Venues send prices and sizes as plain decimal strings (``"0.35130000"``). Scaling the digits
as integers is exact and several times faster than going through ``Decimal``; a value off the
instrument's grid, negative, non-finite or not a plain decimal is rejected, never rounded.
"""

from __future__ import annotations

from decimal import Decimal

from rrr_live.domain.instrument import Instrument
from rrr_live.feeds.errors import Rejected

CACHE_SIZE = 1 << 16


class Scale:
    """Converts decimal strings to integer multiples of one step (a tick or a lot size).

    Args:
        step: the grid step (> 0), e.g. ``Decimal("0.0001")``.
    """

    __slots__ = ("_cache", "_digits", "_step_units", "cached", "step")

    def __init__(self, step: Decimal) -> None:
        sign, _digits, exponent = step.normalize().as_tuple()
        if sign or not isinstance(exponent, int) or step <= 0:
            raise ValueError(f"a grid step must be a positive finite decimal, got {step}")
        self.step = step
        self._digits = max(0, -exponent)
        self._step_units = int(step.scaleb(self._digits))
        self._cache: dict[str, int] = {}  # prices and sizes repeat: most lookups hit
        # ``cached(text)``: the converted value, or None when ``units`` has not seen ``text``
        self.cached = self._cache.get

    def units(self, text: str) -> int:
        """Return ``text`` as an exact number of steps.

        Raises:
            Rejected: ``bad_number`` (not a plain non-negative decimal), ``negative`` or
                ``off_grid``.
        """
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        units = self._convert(text)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[text] = units
        return units

    def _convert(self, text: str) -> int:
        whole, _, frac = text.partition(".")
        if not (whole.isascii() and whole.isdigit()) or (
            frac and not (frac.isascii() and frac.isdigit())
        ):
            if whole.startswith("-") and whole[1:].isdigit():
                raise Rejected("negative", text)
            raise Rejected("bad_number", repr(text))
        n = self._digits
        if len(frac) > n:
            if frac[n:].strip("0"):
                raise Rejected("off_grid", f"{text} is not a multiple of {self.step}")
            frac = frac[:n]
        units, rest = divmod(int(whole + frac.ljust(n, "0")), self._step_units)
        if rest:
            raise Rejected("off_grid", f"{text} is not a multiple of {self.step}")
        return units


class InstrumentScales:
    """The tick and lot scales of one instrument.

    Args:
        instrument: the instrument whose grid the venue's strings are on.
        shared: scales by step, shared by the instruments of one parser (filled in here).
    """

    __slots__ = ("_lot_hit", "_tick_hit", "instrument", "lot", "tick")

    def __init__(self, instrument: Instrument, shared: dict[Decimal, Scale] | None = None) -> None:
        self.instrument = instrument
        # a conversion depends only on the step: instruments on the same grid share a scale
        # (and its cache, which then warms across symbols)
        scales = shared if shared is not None else {}
        self.tick = scales.setdefault(instrument.tick_size, Scale(instrument.tick_size))
        self.lot = scales.setdefault(instrument.lot_size, Scale(instrument.lot_size))
        # the scales' caches, looked up here first (two calls fewer per value on a hit)
        self._tick_hit = self.tick.cached
        self._lot_hit = self.lot.cached

    def price(self, text: str) -> int:
        """Return the price in ticks; a price must be > 0."""
        ticks = self._tick_hit(text)
        if ticks is None:
            ticks = self.tick.units(text)
        if ticks <= 0:
            raise Rejected("non_positive_price", text)
        return ticks

    def size(self, text: str) -> int:
        """Return the size in lots (0 deletes a level)."""
        lots = self._lot_hit(text)
        return self.lot.units(text) if lots is None else lots
