"""A manual timer: an injected clock and sleeper that move only when the test says so."""

from __future__ import annotations

import asyncio

from rrr_live.clock import SimulatedClock


class FakeTimer:
    """Sleepers wait until :meth:`advance` moves the clock past their deadline.

    Args:
        clock: the clock the code under test reads.
    """

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._registered = asyncio.Condition()

    async def sleep(self, delay_s: float) -> None:
        """The injected sleeper."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self.clock.now_ns() + int(delay_s * 1e9), fut))
        async with self._registered:
            self._registered.notify_all()
        await fut

    def advance(self, seconds: float) -> None:
        """Move the clock and wake every sleeper whose deadline passed."""
        self.clock.advance(int(seconds * 1e9))
        now = self.clock.now_ns()
        due = [(d, f) for d, f in self._waiters if d <= now]
        self._waiters = [(d, f) for d, f in self._waiters if d > now]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)

    async def sleeping(self, count: int = 1) -> None:
        """Wait until at least ``count`` sleepers are waiting."""
        async with self._registered:
            await self._registered.wait_for(
                lambda: sum(not f.done() for _, f in self._waiters) >= count
            )
