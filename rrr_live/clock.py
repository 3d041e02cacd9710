"""Injected time: a ``Clock`` protocol with a simulated and a live implementation.

The trading core never reads the wall clock; it receives integer-nanosecond event times or a
``Clock``. Backtests and replays drive a ``SimulatedClock``; only the live shell uses ``LiveClock``.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time in integer nanoseconds since the Unix epoch (UTC)."""

    def now_ns(self) -> int:
        """Return the current time in integer nanoseconds since the epoch."""
        ...


class SimulatedClock:
    """A clock that moves only when told to, and never backwards.

    Args:
        start_ns: the initial time in nanoseconds since the epoch.
    """

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        if start_ns < 0:
            raise ValueError(f"SimulatedClock start_ns must be >= 0, got {start_ns}")
        self._now = int(start_ns)

    def now_ns(self) -> int:
        """Return the simulated time."""
        return self._now

    def set(self, ts_ns: int) -> None:
        """Move the clock to ``ts_ns``.

        Raises:
            ValueError: if ``ts_ns`` is earlier than the current time.
        """
        if ts_ns < self._now:
            raise ValueError(f"SimulatedClock cannot go backwards: {ts_ns} < {self._now}")
        self._now = int(ts_ns)

    def advance(self, delta_ns: int) -> int:
        """Move the clock forward by ``delta_ns`` and return the new time.

        Raises:
            ValueError: if ``delta_ns`` is negative.
        """
        if delta_ns < 0:
            raise ValueError(f"SimulatedClock.advance needs delta_ns >= 0, got {delta_ns}")
        self._now += int(delta_ns)
        return self._now


class LiveClock:
    """The wall clock (``time.time_ns``); used only by the live shell, never by the core."""

    __slots__ = ()

    def now_ns(self) -> int:
        """Return the wall-clock time in nanoseconds since the epoch."""
        return time.time_ns()
