"""The live runner's supervisor: one ``asyncio.TaskGroup``, every task named, phased shutdown.

Tasks: ``intake`` (feed events → the journal and :class:`~rrr_live.service.intake.Intake` →
decision batches on a bounded queue), ``trader`` (one batch at a time through
:class:`~rrr_live.service.trader.Trader`, then the lockstep ``decision_done`` answer),
``registry-poll`` (model lifecycle), ``deadline`` (``max_seconds``) and the control listener
when configured. A failing task cancels the others (TaskGroup) and the error propagates: the
process exits non-zero and systemd restarts it.

SIGTERM / SIGINT (or :meth:`LiveService.request_stop`) → phased shutdown:

1. stop intake (no new event is read; bars still open, and batches still waiting for some of
   their symbols, are not decided; when the feed itself ended, closed bars are);
2. finish the batch being decided, and the batches already closed and queued;
3. open orders per policy (``cancel``, the default: every open order canceled, the venue's
   answers returned in the :class:`ShutdownReport`; ``leave``: untouched);
4. ``flush`` (the journal) is awaited: every event read before the stop is journaled;
5. :meth:`LiveService.run` returns 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field

from rrr_live.domain.market import Received
from rrr_live.inference.lifecycle import ModelLifecycle
from rrr_live.service.control import ControlServer
from rrr_live.service.intake import BarClosedSignal, Batch, Intake
from rrr_live.service.trader import BatchReport, Trader
from rrr_live.venue.broker import Broker
from rrr_live.venue.model import OrderState

logger = logging.getLogger(__name__)


@dataclass
class ShutdownReport:
    """What the run and its phased shutdown did.

    Attributes:
        frames: Market events read from the feed (control frames not counted).
        controls: Lockstep control frames read.
        journaled: Market events handed to the journal.
        batches: Decision batches completed (empty lockstep batches included).
        exit: Why the run ended: ``sigterm``, ``feed-ended`` or ``max-seconds``.
        canceled: Venue answers to the cancels of open orders.
    """

    frames: int = 0
    controls: int = 0
    journaled: int = 0
    batches: int = 0
    exit: str = ""
    canceled: list[OrderState] = field(default_factory=list)


async def _no_flush() -> None:
    return None


@dataclass
class LiveService:
    """Supervises the runner's tasks (see the module docstring).

    Args:
        events: The feed's events, in arrival order.
        intake: Events → decision batches.
        trader: The trader pipeline.
        broker: The venue (open orders are canceled through it at shutdown).
        lifecycle: Model lifecycle polled every ``poll_interval_s`` (``None``: no polling).
        control: Control listener (``None``: none).
        poll_interval_s: Registry poll period.
        send_stamp: The send stamp of the frame that carried the event just read.
        journal: Awaited with every market event (``None``: no journal).
        on_batch: Called with every batch report.
        answer: Awaited with ``end_ns`` after a lockstep batch is decided (``decision_done``).
        before_first: Awaited with the first batch's bar close before it is decided (warm-up).
        flush: Awaited last (flushes the journal).
        open_orders_policy: ``cancel`` or ``leave``.
        max_seconds: Stop after this long (wall time; 0: unbounded).
    """

    events: AsyncIterable[Received]
    intake: Intake
    trader: Trader
    broker: Broker
    lifecycle: ModelLifecycle | None = None
    control: ControlServer | None = None
    poll_interval_s: float = 10.0
    send_stamp: Callable[[], int] = lambda: 0
    journal: Callable[[Received], Awaitable[None]] | None = None
    on_batch: Callable[[BatchReport], None] = lambda _r: None
    answer: Callable[[int], Awaitable[None]] | None = None
    before_first: Callable[[int], Awaitable[None]] | None = None
    flush: Callable[[], Awaitable[None]] = _no_flush
    open_orders_policy: str = "cancel"
    max_seconds: float = 0.0
    report: ShutdownReport = field(default_factory=ShutdownReport)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _queue: asyncio.Queue[Batch | None] = field(default_factory=lambda: asyncio.Queue(maxsize=4))

    def request_stop(self, reason: str = "sigterm") -> None:
        """Begin the phased shutdown (what SIGTERM does)."""
        if not self.report.exit:
            self.report.exit = reason
        self._stop.set()

    async def run(self) -> int:
        """Run until stopped; returns the exit status (0 after a clean phased shutdown)."""
        if self.open_orders_policy not in ("cancel", "leave"):
            raise ValueError(f"unknown open-orders policy {self.open_orders_policy!r}")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            if self.control is not None:
                await self.control.start()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._intake(), name="intake")
                tg.create_task(self._trade(), name="trader")
                if self.lifecycle is not None:
                    tg.create_task(self._poll(self.lifecycle), name="registry-poll")
                if self.max_seconds > 0:
                    tg.create_task(self._deadline(), name="deadline")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            if self.control is not None:
                await self.control.close()
        await self._open_orders()
        await self.flush()
        logger.info("stopped (%s): %d frames read, %d batches", self.report.exit,
                    self.report.frames, self.report.batches)  # fmt: skip
        return 0

    async def _intake(self) -> None:
        iterator = aiter(self.events)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                nxt = asyncio.ensure_future(anext(iterator))
                await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():  # stop came first: read nothing more
                    nxt.cancel()
                    break
                try:
                    rec = nxt.result()
                except StopAsyncIteration:
                    self.request_stop("feed-ended")
                    break
                await self._take(rec)
        finally:
            stop.cancel()
            self.request_stop("feed-ended")  # the feed failed or ended: shut down too
            if self.report.exit == "feed-ended":
                # nothing more will come: bars already closed are decided; on a stop request
                # a batch still waiting for some of its symbols is not (it would be partial)
                for batch in self.intake.drain():
                    await self._queue.put(batch)
            await self._queue.put(None)

    async def _take(self, rec: Received) -> None:
        if isinstance(rec.event, BarClosedSignal):
            self.report.controls += 1
        else:
            self.report.frames += 1
            if self.journal is not None:
                await self.journal(rec)
                self.report.journaled += 1
        for batch in self.intake.on_received(rec, self.send_stamp()):
            await self._queue.put(batch)  # bounded: intake waits for the trader

    async def _trade(self) -> None:
        while (batch := await self._queue.get()) is not None:
            if self.before_first is not None:
                await self.before_first(batch.end_ns)
                self.before_first = None
            if batch.bars and batch.end_ns > self.trader.last_end_ns:  # warm-up covered older ones
                report = await self.trader.on_bars(batch.bars, batch.closing_send_ns)
                self.on_batch(report)
            self.report.batches += 1
            if batch.ack and self.answer is not None:
                await self.answer(batch.end_ns)

    async def _poll(self, lifecycle: ModelLifecycle) -> None:
        while not self._stop.is_set():
            await lifecycle.poll()
            try:
                await asyncio.wait_for(self._stop.wait(), self.poll_interval_s)
            except TimeoutError:
                continue

    async def _deadline(self) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), self.max_seconds)
        except TimeoutError:
            self.request_stop("max-seconds")

    async def _open_orders(self) -> None:
        if self.open_orders_policy != "cancel":
            return
        for order in await self.broker.open_orders():
            self.report.canceled.append(await self.broker.cancel(order.client_id))
