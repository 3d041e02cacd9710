"""Binance local order book synchronisation: the documented depth-snapshot rules, I/O-free.

Per symbol: buffer diffs until a REST snapshot arrives; drop buffered diffs with
``u <= lastUpdateId``; the first applied diff must straddle ``lastUpdateId + 1``; afterwards
every diff's ``U`` must be the previous ``u + 1``. A gap (or a snapshot older than the buffered
stream) sends the symbol back to buffering and asks for a new snapshot; an old or repeated diff
(``u`` not newer) is dropped. What comes out is a consistent stream: snapshot, then diffs that
chain exactly onto it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rrr_live.domain.market import BookUpdate

MAX_BUFFER = 10_000  # diffs held per symbol while waiting for a snapshot


@dataclass(slots=True)
class SyncStep:
    """What one input produced.

    Args:
        events: updates to emit, in order (a snapshot and/or chaining diffs).
        need_snapshot: the symbol is buffering and wants a (new) REST snapshot.
        cause: why it went back to buffering (``"gap"``, ``"snapshot_too_old"``) or ``""``.
        dropped: diffs discarded as already covered (duplicates, old or out of order).
    """

    events: list[BookUpdate] = field(default_factory=list)
    need_snapshot: bool = False
    cause: str = ""
    dropped: int = 0


@dataclass(slots=True)
class _Symbol:
    synced: bool = False
    last_u: int = 0
    buffer: list[BookUpdate] = field(default_factory=list)


class DepthSync:
    """The sync state of every subscribed symbol."""

    def __init__(self) -> None:
        self._symbols: dict[str, _Symbol] = {}

    def reset(self) -> None:
        """Forget everything (after a reconnect every symbol needs a fresh snapshot)."""
        self._symbols.clear()

    def synced(self, symbol: str) -> bool:
        """Return whether ``symbol`` has a snapshot and an unbroken chain of diffs."""
        s = self._symbols.get(symbol)
        return s is not None and s.synced

    def desync(self, symbol: str) -> None:
        """Send ``symbol`` back to buffering (its book broke for another reason)."""
        s = self._symbols.setdefault(symbol, _Symbol())
        s.synced, s.buffer = False, []

    def on_diff(self, diff: BookUpdate) -> SyncStep:
        """Take one depth diff (``first_seq`` = ``U``, ``last_seq`` = ``u``)."""
        s = self._symbols.setdefault(diff.symbol, _Symbol())
        if not s.synced:
            s.buffer.append(diff)
            if len(s.buffer) > MAX_BUFFER:
                del s.buffer[0]
            return SyncStep(need_snapshot=True)
        if diff.last_seq <= s.last_u:
            return SyncStep(dropped=1)
        if diff.first_seq != s.last_u + 1:
            s.synced, s.buffer = False, [diff]
            return SyncStep(need_snapshot=True, cause="gap")
        s.last_u = diff.last_seq
        return SyncStep([diff])

    def on_snapshot(self, snap: BookUpdate) -> SyncStep:
        """Take a REST snapshot (``last_seq`` = ``lastUpdateId``) and replay the buffer onto it."""
        s = self._symbols.setdefault(snap.symbol, _Symbol())
        last = snap.last_seq
        kept = [d for d in s.buffer if d.last_seq > last]
        dropped = len(s.buffer) - len(kept)
        if kept and kept[0].first_seq > last + 1:
            s.buffer = kept
            return SyncStep(need_snapshot=True, cause="snapshot_too_old", dropped=dropped)
        s.synced, s.last_u, s.buffer = True, last, []
        step = SyncStep([snap], dropped=dropped)
        for i, diff in enumerate(kept):
            if diff.last_seq <= s.last_u:
                step.dropped += 1
                continue
            if i > 0 and diff.first_seq != s.last_u + 1:
                s.synced, s.buffer = False, kept[i:]
                step.need_snapshot, step.cause = True, "gap"
                return step
            s.last_u = diff.last_seq
            step.events.append(diff)
        return step
