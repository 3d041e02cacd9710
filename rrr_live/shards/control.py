"""Operator commands of a sharded runner act on the whole account, through the risk ledger.

The control endpoint's ``/halt`` and ``/flatten`` halt this shard at once *and* the account
(every other shard halts at its next sync); ``/resume`` resumes the account (every shard,
this one included, resumes at its next sync: resuming this shard alone would be undone by the
next sync while the account is HALTED). The ledger calls run as tasks on the event loop (the
handlers are synchronous); a failure is logged and leaves the account as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from rrr_live.service.control import ControlHandlers
from rrr_live.shards.ledger import RiskLedger

log = logging.getLogger(__name__)

RESUME_REQUESTED = "resume requested for the account"


class LedgerCommands:
    """Wraps a runner's control handlers so that halt and resume go through the ledger.

    Args:
        ledger: this shard's ledger handle.
        now_ns: the injected clock (data time of the command).
    """

    def __init__(self, ledger: RiskLedger, now_ns: Callable[[], int]) -> None:
        self.ledger, self.now_ns = ledger, now_ns
        self._tasks: set[asyncio.Task[None]] = set()

    def wrap(self, base: ControlHandlers) -> ControlHandlers:
        """Return ``base`` with account-wide halt, flatten and resume and the ledger's status."""

        def halt(reason: str) -> str:
            state = base.halt(reason)
            self._spawn(self.ledger.halt(self.now_ns(), reason))
            return state

        def flatten(reason: str) -> str:
            state = base.flatten(reason)
            self._spawn(self.ledger.halt(self.now_ns(), reason))
            return state

        def resume(reason: str) -> str:
            self._spawn(self.ledger.resume(self.now_ns(), reason))
            return RESUME_REQUESTED

        def status() -> dict[str, Any]:
            return {**base.status(), "ledger": self.ledger.view()}

        return ControlHandlers(status, halt, resume, flatten)

    async def drain(self) -> None:
        """Wait for the ledger calls in flight."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, call: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(call, name="ledger-command")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("risk ledger command failed: %s", task.exception())
