"""Lockstep acknowledgements of the replay exchange: which bar may the timeline pass.

After the frames that close bar ``t`` the server waits for ``decision_done`` answers. One ack
for ``t`` (or a later bar) is always needed; with ``clients = N`` (runner shards sharing one
market) the acks of N of the connections the bar was sent to are, or of all of them while fewer
are still connected -- a killed shard does not stop the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection


class Lockstep:
    """Acks per connection and the event the waiting timeline wakes on.

    Args:
        clients: how many connections' acks release a bar (>= 1).
    """

    def __init__(self, clients: int = 1) -> None:
        if clients < 1:
            raise ValueError(f"lockstep_clients must be >= 1, got {clients}")
        self.clients = clients
        self.acked = -1  # the latest bar any connection acknowledged
        self._by_peer: dict[int, int] = {}
        self.changed = asyncio.Event()

    def ack(self, peer: int, bar: int) -> None:
        """Take connection ``peer``'s ``decision_done`` for ``bar`` (covers earlier bars)."""
        if bar > self._by_peer.get(peer, -1):
            self._by_peer[peer] = bar
            self.changed.set()
        if bar > self.acked:
            self.acked = bar
            self.changed.set()

    def forget(self, peer: int) -> None:
        """Connection ``peer`` is gone: a bar waiting on it waits on the others now."""
        self._by_peer.pop(peer, None)
        self.changed.set()

    def released(self, bar: int, alive: Collection[int]) -> bool:
        """Return whether ``bar`` may pass, ``alive``: the connections told of it still here."""
        if self.acked < bar:
            return False
        acks = sum(self._by_peer.get(p, -1) >= bar for p in alive)
        return acks >= min(self.clients, len(alive))
