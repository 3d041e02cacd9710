"""Free-running clocks of the replay exchange: N x event time, or as fast as clients read.

Time is injected: a monotonic clock (integer nanoseconds) and an async sleeper, so a test drives
the pace with a fake pair and asserts the sleeps instead of waiting for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

MonotonicNs = Callable[[], int]
Sleeper = Callable[[float], Awaitable[None]]

# Sleeping for less than this is not worth a loop wakeup; the debt is paid by the next sleep.
MIN_SLEEP_NS = 200_000


class Pacer:
    """Send an event no earlier than ``anchor + (event_ts - anchor_ts) / speed`` (monotonic).

    The first event (and the first after :meth:`reset`, e.g. after a pause) sets the anchor.

    Args:
        speed: event-time seconds per monotonic second (1.0 = real time); must be > 0.
        clock: monotonic nanoseconds.
        sleeper: ``asyncio.sleep`` or a fake.

    Raises:
        ValueError: when ``speed`` is not positive.
    """

    def __init__(
        self,
        speed: float,
        clock: MonotonicNs = time.monotonic_ns,
        sleeper: Sleeper = asyncio.sleep,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self._clock = clock
        self._sleep = sleeper
        self._anchor: tuple[int, int] | None = None

    def reset(self) -> None:
        """Forget the anchor: the next event is due at once."""
        self._anchor = None

    def due_ns(self, event_ts_ns: int) -> int:
        """Monotonic time at which an event of time ``event_ts_ns`` is due (sets the anchor)."""
        if self._anchor is None:
            self._anchor = (self._clock(), event_ts_ns)
        mono0, event0 = self._anchor
        return mono0 + int((event_ts_ns - event0) / self.speed)

    async def wait(self, event_ts_ns: int) -> None:
        """Sleep until the event is due."""
        delay = self.due_ns(event_ts_ns) - self._clock()
        if delay >= MIN_SLEEP_NS:
            await self._sleep(delay / 1e9)
