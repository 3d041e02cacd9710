"""The live runner's supervisor: one ``asyncio.TaskGroup``, every task named, phased shutdown.

Tasks: ``intake`` (trades → event-time bars → the batch queue), ``trader`` (one batch at a
time through :class:`~rrr_live.service.trader.Trader`), ``registry-poll`` (model lifecycle),
and the control listener when configured. A failing task cancels the others (TaskGroup) and
the error propagates: the process exits non-zero and systemd restarts it.

SIGTERM / SIGINT (or :meth:`LiveService.request_stop`) → phased shutdown:

1. stop intake (no new trade is read; bars still open are not decided);
2. finish the batch being decided, and the batches already closed and queued;
3. open orders per policy (``cancel``, the default: every open order canceled, the venue's
   answers returned in the :class:`ShutdownReport`; ``leave``: untouched);
4. ``flush`` (the journal) is awaited;
5. :meth:`LiveService.run` returns 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field

from rrr_live.inference.lifecycle import ModelLifecycle
from rrr_live.service.bars import BarBuilder, ClosedBar
from rrr_live.service.control import ControlServer
from rrr_live.service.trader import BatchReport, Trader
from rrr_live.venue.broker import Broker
from rrr_live.venue.model import OrderState

logger = logging.getLogger(__name__)

Trade = tuple[str, int, float, float]  # symbol, event time ns, price, quantity


@dataclass
class ShutdownReport:
    """What the phased shutdown did.

    Attributes:
        trades_read: Trades taken from the feed before intake stopped.
        batches: Decision batches completed.
        canceled: Venue answers to the cancels of open orders.
    """

    trades_read: int = 0
    batches: int = 0
    canceled: list[OrderState] = field(default_factory=list)


async def _no_flush() -> None:
    return None


@dataclass
class LiveService:
    """Supervises the runner's tasks (see the module docstring).

    Args:
        trades: The market-data trades, in arrival order.
        bars: Event-time bar builder of the model's interval.
        trader: The trader pipeline.
        broker: The venue (open orders are canceled through it at shutdown).
        lifecycle: Model lifecycle polled every ``poll_interval_s`` (``None``: no polling).
        control: Control listener (``None``: none).
        poll_interval_s: Registry poll period.
        on_batch: Called with every batch report (the journal).
        flush: Awaited last (flushes the journal).
        open_orders_policy: ``cancel`` or ``leave``.
    """

    trades: AsyncIterable[Trade]
    bars: BarBuilder
    trader: Trader
    broker: Broker
    lifecycle: ModelLifecycle | None = None
    control: ControlServer | None = None
    poll_interval_s: float = 10.0
    on_batch: Callable[[BatchReport], None] = lambda _r: None
    flush: Callable[[], Awaitable[None]] = _no_flush
    open_orders_policy: str = "cancel"
    report: ShutdownReport = field(default_factory=ShutdownReport)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _queue: asyncio.Queue[list[ClosedBar] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=1)
    )

    def request_stop(self) -> None:
        """Begin the phased shutdown (what SIGTERM does)."""
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
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            if self.control is not None:
                await self.control.close()
        await self._open_orders()
        await self.flush()
        logger.info("stopped: %d trades read, %d batches", self.report.trades_read,
                    self.report.batches)  # fmt: skip
        return 0

    async def _intake(self) -> None:
        iterator = aiter(self.trades)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                nxt = asyncio.ensure_future(anext(iterator))
                await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():  # stop came first: read nothing more
                    nxt.cancel()
                    break
                try:
                    symbol, ts, px, qty = nxt.result()
                except StopAsyncIteration:
                    break
                self.report.trades_read += 1
                closed = self.bars.on_trade(symbol, ts, px, qty)
                if closed is not None:
                    await self._queue.put([closed])  # bounded: intake waits for the trader
        finally:
            stop.cancel()
            self._stop.set()  # the feed ended: shut down too
            await self._queue.put(None)

    async def _trade(self) -> None:
        while (batch := await self._queue.get()) is not None:
            self.on_batch(await self.trader.on_bars(batch))
            self.report.batches += 1

    async def _poll(self, lifecycle: ModelLifecycle) -> None:
        while not self._stop.is_set():
            await lifecycle.poll()
            try:
                await asyncio.wait_for(self._stop.wait(), self.poll_interval_s)
            except TimeoutError:
                continue

    async def _open_orders(self) -> None:
        if self.open_orders_policy != "cancel":
            return
        for order in await self.broker.open_orders():
            self.report.canceled.append(await self.broker.cancel(order.client_id))
