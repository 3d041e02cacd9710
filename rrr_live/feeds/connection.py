"""The reconnect loop shared by the venue adapters.

Our own loop around ``websockets.asyncio.client.connect`` (the library's reconnecting iterator
reads its backoff from the environment and sleeps in real time): capped, jittered exponential
backoff through an injected sleeper; retryable vs fatal errors; an idle watchdog on the
injected clock; a fresh session id and receive sequence per connection; every book kept by a
:class:`BookKeeper` when one is given, with resyncs when it reports a broken book.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from rrr_live.clock import Clock, LiveClock
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import MarketEvent, Received
from rrr_live.feeds.errors import FatalFeedError, FeedError, Rejected
from rrr_live.feeds.keeper import BookKeeper
from rrr_live.feeds.parsed import Parsed
from rrr_live.metrics import Metrics

log = logging.getLogger(__name__)

Sleeper = Callable[[float], Awaitable[None]]
# frames counted locally before ``frames_received`` is updated (also on every watchdog pass)
REPORT_EVERY = 256
FATAL_HTTP = frozenset({400, 401, 404})


class Backoff:
    """Capped exponential backoff with downward jitter.

    Args:
        initial_s: the first delay.
        max_s: the cap (no delay is longer).
        factor: growth per failed attempt.
        jitter: each delay is scaled by a uniform factor in ``[1 - jitter, 1]``.
        rng: the random source (seed it in tests).
    """

    def __init__(
        self,
        initial_s: float = 0.25,
        max_s: float = 30.0,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < initial_s <= max_s or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("backoff needs 0 < initial <= max, factor >= 1, 0 <= jitter < 1")
        self.initial_s, self.max_s, self.factor, self.jitter = initial_s, max_s, factor, jitter
        self._rng = rng or random.Random()
        self._attempt = 0

    def next(self) -> float:
        """Return the next delay and count the attempt."""
        base = min(self.max_s, self.initial_s * self.factor**self._attempt)
        self._attempt = min(self._attempt + 1, 64)
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """Start again from the initial delay (after a connection that delivered data)."""
        self._attempt = 0


class FeedSettings:
    """Knobs of the reconnect loop.

    Args:
        clock: receive times and the idle watchdog.
        sleeper: awaited for backoff delays (``asyncio.sleep`` live).
        watchdog_sleeper: awaited between idle checks (default: ``sleeper``).
        backoff: the delay policy.
        idle_timeout_s: no frame for this long (clock time) -> reconnect.
        max_size: the largest frame accepted; a larger one closes the connection with 1009.
        open_timeout_s: the handshake timeout.
        max_reconnects: give up (``FeedError``) after this many consecutive failures.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        sleeper: Sleeper = asyncio.sleep,
        watchdog_sleeper: Sleeper | None = None,
        backoff: Backoff | None = None,
        idle_timeout_s: float = 10.0,
        max_size: int = 2**20,
        open_timeout_s: float = 10.0,
        max_reconnects: int | None = None,
    ) -> None:
        self.clock = clock or LiveClock()
        self.sleeper = sleeper
        self.watchdog_sleeper = watchdog_sleeper or sleeper
        self.backoff = backoff or Backoff()
        self.idle_timeout_s = idle_timeout_s
        self.max_size = max_size
        self.open_timeout_s = open_timeout_s
        self.max_reconnects = max_reconnects


def close_cause(e: ConnectionClosed) -> str:
    """Name why a connection closed (``"oversized"`` for 1009, else ``"closed_<code>"``)."""
    code = e.sent.code if e.sent else (e.rcvd.code if e.rcvd else 1006)
    return "oversized" if code == 1009 else f"closed_{code}"


class ReconnectingFeed(ABC):
    """A venue feed as a reconnecting async iterator of :class:`Received` events.

    Args:
        url: the websocket URL.
        instruments: the symbols to subscribe to, with their tick and lot sizes.
        settings: the reconnect loop's knobs.
        metrics: where frames, rejections, reconnects and resyncs are counted.
        keeper: when given, every book event is applied to it before it is yielded.
    """

    venue: ClassVar[str]

    def __init__(
        self,
        url: str,
        instruments: dict[str, Instrument],
        settings: FeedSettings | None = None,
        metrics: Metrics | None = None,
        keeper: BookKeeper | None = None,
    ) -> None:
        if not instruments:
            raise FatalFeedError(f"{self.venue}: no symbols to subscribe to")
        self.url = url
        self.instruments = instruments
        self.settings = settings or FeedSettings()
        self.metrics = metrics or Metrics()
        self.keeper = keeper
        self.session = ""
        self.connects = 0
        self.rejected: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.resyncs: Counter[str] = Counter()
        self.reconnect_causes: Counter[str] = Counter()
        self._seq = 0
        self._last_frame_ns = 0
        self._idle = False
        self._resynced: list[MarketEvent] = []
        self._received = self.metrics.frames_received.labels(self.venue)
        self._unreported = 0

    def __aiter__(self) -> AsyncIterator[Received]:
        """Iterate over the events of successive connections until cancelled or fatal."""
        return self.events()

    async def events(self) -> AsyncIterator[Received]:
        """Yield normalized events, reconnecting on retryable failures.

        Raises:
            FatalFeedError: when retrying cannot help (bad URL, refused subscription).
            FeedError: after ``max_reconnects`` consecutive failures.
        """
        failures = 0
        try:
            while True:
                try:
                    async for item in self._connection():
                        failures = 0
                        yield item
                    cause = "idle" if self._idle else "closed"
                except ConnectionClosed as e:
                    cause = "idle" if self._idle else close_cause(e)
                    if cause == "oversized":
                        self._reject("oversized", str(e))
                except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as e:
                    cause = _handshake_cause(e)
                except FeedError as e:
                    if isinstance(e, FatalFeedError):
                        raise
                    cause = "rest"
                    log.warning("%s: %s", self.venue, e)
                failures += 1
                await self._after_disconnect(cause, failures)
        finally:
            await self.aclose()

    async def _after_disconnect(self, cause: str, failures: int) -> None:
        self.metrics.reconnects.labels(self.venue, cause).inc()
        self.reconnect_causes[cause] += 1
        if self.keeper is not None:
            self.keeper.mark_all_untradable(f"disconnected: {cause}")
        limit = self.settings.max_reconnects
        if limit is not None and failures > limit:
            raise FeedError(f"{self.venue}: gave up after {failures - 1} reconnects ({cause})")
        delay = self.settings.backoff.next()
        log.warning("%s feed disconnected (%s); reconnecting in %.2fs", self.venue, cause, delay)
        await self.settings.sleeper(delay)

    async def _connection(self) -> AsyncIterator[Received]:
        s = self.settings
        self._idle = False
        self._resynced = []
        async with connect(
            self.url, max_size=s.max_size, open_timeout=s.open_timeout_s, compression=None,
            close_timeout=1.0, ping_interval=None,
        ) as ws:  # fmt: skip
            self.session = f"{self.venue}-{uuid.uuid4().hex}"
            self._seq = 0
            self.connects += 1
            self._last_frame_ns = s.clock.now_ns()
            watchdog = asyncio.create_task(self._watchdog(ws), name=f"{self.venue}-watchdog")
            keeper, session, venue, now_ns = self.keeper, self.session, self.venue, s.clock.now_ns
            try:
                pending = await self._on_open(ws)
                while True:
                    # one flat loop (no generator per frame): this is the hot path
                    for event in pending:
                        recv_ns = now_ns()
                        self._seq += 1
                        # the book first: a consumer that stops after this record sees it
                        if keeper is not None:
                            cause = keeper.apply(event, recv_ns)
                            if cause:
                                await self._resync_and_emit(ws, event, cause)
                        yield Received(session, self._seq, recv_ns, venue, event)
                    if self._resynced:
                        pending, self._resynced = self._resynced, []
                        continue
                    try:
                        pending = await self._next_events(ws)
                    except ConnectionClosedOK:
                        return
            finally:
                self.report_frames()
                await cancel_task(watchdog)
                await self._on_close()

    async def _next_events(self, ws: ClientConnection) -> list[MarketEvent]:
        """Receive the next frame and return its events (a venue may also await other work)."""
        return await self._on_frame(ws, await ws.recv())

    async def _on_close(self) -> None:  # noqa: B027 - optional hook
        """Stop per-connection work (a connection just ended)."""

    async def _resync_and_emit(self, ws: ClientConnection, event: MarketEvent, cause: str) -> None:
        """Queue what a resync produced; its events are applied but never resync again."""
        events = await self.resync(ws, getattr(event, "symbol", ""), cause)
        for ev in events:
            self._resynced.append(ev)

    async def _on_frame(self, ws: ClientConnection, frame: str | bytes) -> list[MarketEvent]:
        self._last_frame_ns = self.settings.clock.now_ns()
        if isinstance(frame, bytes):
            self._reject("binary_frame", f"{len(frame)} bytes")
            return []
        try:
            parsed = self.parse(frame)
            events = await self._on_parsed(ws, parsed)
        except Rejected as e:
            self._reject(e.reason, e.detail)
            return []
        self._unreported += 1
        if self._unreported >= REPORT_EVERY:
            self.report_frames()
        if parsed.control == "ignored":
            self.ignored[parsed.detail] += 1
            self.metrics.frames_ignored.labels(self.venue, parsed.detail).inc()
        if events:
            self.settings.backoff.reset()
        return events

    def report_frames(self) -> None:
        """Add the frames counted since the last report to ``frames_received``."""
        if self._unreported:
            self._received.inc(self._unreported)
            self._unreported = 0
            self.metrics.feed_last_frame.labels(self.venue).set(self._last_frame_ns / 1e9)

    async def _watchdog(self, ws: ClientConnection) -> None:
        s = self.settings
        idle_ns = int(s.idle_timeout_s * 1e9)
        while True:
            self.report_frames()
            now = s.clock.now_ns()
            if self.keeper is not None:
                self._report_staleness(self.keeper, now)
            waited = now - self._last_frame_ns
            if waited >= idle_ns:
                self._idle = True
                if self.keeper is not None:
                    self.keeper.mark_all_untradable("feed silent")
                await ws.close(code=4000, reason="idle")
                return
            await s.watchdog_sleeper(max(0.001, (idle_ns - waited) / 1e9))

    def _report_staleness(self, keeper: BookKeeper, now_ns: int) -> None:
        for symbol in keeper.check_stale(now_ns):
            self.metrics.resyncs.labels(self.venue, "stale").inc()
            log.warning("%s %s: book stale", self.venue, symbol)
        gauge = self.metrics.book_staleness
        for symbol, last_ns in keeper.last_update_ns.items():
            gauge.labels(self.venue, symbol).set(max(0, now_ns - last_ns) / 1e9)

    def count_resync(self, symbol: str, cause: str) -> None:
        """Count a resync and mark the symbol's book untradable until its fresh snapshot."""
        self.resyncs[cause] += 1
        self.metrics.resyncs.labels(self.venue, cause).inc()
        if self.keeper is not None:
            self.keeper.mark_untradable(symbol, f"resync: {cause}")
        log.info("%s %s: resync (%s)", self.venue, symbol, cause)

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        self.metrics.frames_rejected.labels(self.venue, reason).inc()
        log.debug("%s frame rejected (%s): %s", self.venue, reason, detail[:200])

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources held across connections (HTTP clients)."""

    @abstractmethod
    def parse(self, frame: str) -> Parsed:
        """Parse one text frame (raises ``Rejected``)."""

    @abstractmethod
    async def _on_open(self, ws: ClientConnection) -> list[MarketEvent]:
        """Subscribe (again) on a fresh connection; return any events it produced."""

    @abstractmethod
    async def _on_parsed(self, ws: ClientConnection, parsed: Parsed) -> list[MarketEvent]:
        """Apply venue rules to a parsed frame; return the events to emit."""

    @abstractmethod
    async def resync(self, ws: ClientConnection, symbol: str, cause: str) -> list[MarketEvent]:
        """Bring ``symbol``'s book back (resubscribe or re-snapshot); return new events."""


def _handshake_cause(e: BaseException) -> str:
    if isinstance(e, InvalidURI):
        raise FatalFeedError(f"invalid feed URL: {e}") from e
    if isinstance(e, InvalidStatus):
        status = e.response.status_code
        if status in FATAL_HTTP:
            raise FatalFeedError(f"handshake refused with HTTP {status}") from e
        return f"http_{status}"
    if isinstance(e, TimeoutError):
        return "timeout"
    if isinstance(e, OSError):
        return "unreachable"
    return type(e).__name__.lower()


async def cancel_task(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it; re-raise only if we are being cancelled ourselves."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
