"""The capture loop: feed (with its book keeper) -> journal, every event.

The feed adapter keeps its book keeper current and resyncs from it (a crossed or rejected
update triggers a fresh snapshot); this loop queues every record the adapter yields, resync
snapshots included, for the journal. The journal's bounded queue is the loop's only
backpressure, so a flood slows the reading of the socket (and through TCP, the sender) instead
of growing memory; a slow or dead database never holds the loop longer than the writer's
``spill_after_s`` (the spill takes over).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from rrr_live.domain.market import Received


class JournalSink(Protocol):
    """What stores the records (``JournalWriter``)."""

    async def put(self, rec: Received) -> None:
        """Queue one record, waiting while the queue is full."""
        ...

    def offer(self, rec: Received) -> bool:
        """Queue one record if there is room now; False when full (then ``put`` waits)."""
        ...


@dataclass
class CaptureStats:
    """What one capture run saw."""

    events: int = 0
    by_session: dict[str, int] = field(default_factory=dict)


async def capture(
    feed: AsyncIterable[Received],
    journal: JournalSink,
    *,
    until: Callable[[Received], bool] | None = None,
    stats: CaptureStats | None = None,
) -> CaptureStats:
    """Run ``feed`` into ``journal`` until it ends or ``until(rec)`` is true.

    Args:
        feed: the feed adapter (a reconnecting async iterator of :class:`Received`), built
            with the book keeper it updates.
        journal: the journal writer.
        until: checked after each record is queued; True stops the loop.
        stats: counters to update in place (readable while the loop runs).

    Returns:
        the counters.
    """
    st = stats if stats is not None else CaptureStats()
    per_session = st.by_session
    offer = journal.offer
    async for rec in feed:
        if not offer(rec):
            await journal.put(rec)
        st.events += 1
        per_session[rec.session] = per_session.get(rec.session, 0) + 1
        if until is not None and until(rec):
            break
    return st
