"""Running the replay exchange as a process: until SIGINT/SIGTERM, or until the tape is done."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from rrr_live.exchange.server import ExchangeServer
from rrr_live.exchange.tape import Tape
from rrr_live.metrics import Metrics, MetricsEndpoint, serve_metrics

log = logging.getLogger(__name__)


async def run_exchange(
    tape: Tape,
    *,
    metrics_port: int | None = None,
    exit_when_done: bool = False,
    on_ready: Callable[[ExchangeServer, MetricsEndpoint | None], None] | None = None,
    **server_options: Any,
) -> int:
    """Serve ``tape`` until a stop signal (or the end of the tape); return the frames sent.

    Args:
        tape: what to serve.
        metrics_port: serve Prometheus metrics on 127.0.0.1 at this port (0: a free one).
        exit_when_done: stop once every event was emitted.
        on_ready: called once listening (prints the URLs at the CLI).
        **server_options: passed to :class:`ExchangeServer`.
    """
    metrics = Metrics()
    endpoint = serve_metrics(metrics, metrics_port) if metrics_port is not None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with ExchangeServer(tape, metrics=metrics, **server_options) as server:
            if on_ready is not None:
                on_ready(server, endpoint)
            waiters: list[asyncio.Task[Any]] = [
                asyncio.create_task(stop.wait(), name="stop-signal")
            ]
            if exit_when_done:
                waiters.append(asyncio.create_task(server.finished(), name="tape-done"))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waiters:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            log.info("stopping: %d frames sent", server.frames_sent)
            return server.frames_sent
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if endpoint is not None:
            endpoint.close()
