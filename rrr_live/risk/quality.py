"""Inputs that escalate the risk state besides prices: book data quality and journal health.

A symbol whose book is unusable (never snapshotted, flagged after a sequence gap, one side
empty, crossed, or older than the staleness limit) is traded reduce-only until its book is good
again. A degraded journal (slow writes, spilling) makes the whole process REDUCING; a journal
that lost data halts it.
"""

from __future__ import annotations

from enum import Enum

from rrr_live.book.l2 import OrderBook


class JournalHealth(Enum):
    """What the journal writer reports about persistence."""

    OK = "ok"
    DEGRADED = "degraded"
    LOST = "lost"


def book_quality(book: OrderBook, now_ns: int, max_age_ns: int = 0) -> str:
    """Return why ``book`` is unfit to trade on at ``now_ns`` (``""``: fit).

    Args:
        book: the symbol's L2 book.
        now_ns: the current event time.
        max_age_ns: a book not updated for longer than this is stale (0: never stale).
    """
    reason = book.untradable_reason()
    if reason:
        return reason
    age = now_ns - book.ts_ns
    if max_age_ns and age > max_age_ns:
        return f"stale book ({age / 1e9:.3f} s without an update)"
    return ""
