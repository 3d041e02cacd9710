"""Fault hooks over HTTP, for a replay exchange running as its own process (``--control``).

Same port as the market data, loopback only, off unless asked for. Every route is a GET that
answers ``{"ok": true, ...}`` (``400`` with ``{"ok": false, "error": ...}`` on a bad parameter):

* ``/_rrr/status`` — events emitted, frames sent, connections, whether the tape is finished
* ``/_rrr/pause``, ``/_rrr/resume``
* ``/_rrr/skip?count=1&symbol=S&channel=C`` — do not send the next matching events
* ``/_rrr/disconnect[?code=4000]`` — abort every connection (or close with ``code``)
* ``/_rrr/refuse?count=1&status=503`` — refuse the next handshakes
* ``/_rrr/raw?hex=ffff`` — raw bytes onto every TCP stream; ``/_rrr/oversized?size=N``
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from rrr_live.exchange.venue import RestHandler, dumps

if TYPE_CHECKING:
    from rrr_live.exchange.server import ExchangeServer

Query = dict[str, str]
Answer = tuple[int, bytes]


def _ok(**extra: Any) -> Answer:
    return 200, dumps({"ok": True, **extra})


class Control:
    """The ``/_rrr/*`` handlers acting on one server.

    Args:
        server: the replay exchange to drive.
    """

    def __init__(self, server: ExchangeServer) -> None:
        self.server = server
        self._tasks: set[asyncio.Task[Any]] = set()  # strong refs until async hooks finish

    def routes(self) -> dict[str, RestHandler]:
        """Route table entries (merged into the server's)."""
        names = ("status", "pause", "resume", "skip", "disconnect", "refuse", "raw", "oversized")
        return {f"/_rrr/{name}": self._guarded(getattr(self, name)) for name in names}

    def _guarded(self, fn: RestHandler) -> RestHandler:
        def handler(query: Query, tail: str) -> Answer:
            try:
                return fn(query, tail)
            except ValueError as e:
                return 400, dumps({"ok": False, "error": str(e)})

        return handler

    def _later(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="control-hook")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def status(self, q: Query, t: str) -> Answer:
        """Counters and state."""
        s = self.server
        return _ok(events_emitted=s.events_emitted, frames_sent=s.frames_sent,
                   connections=s.connections, finished=s.is_finished)  # fmt: skip

    def pause(self, q: Query, t: str) -> Answer:
        """Stop sending market data."""
        self.server.pause()
        return _ok()

    def resume(self, q: Query, t: str) -> Answer:
        """Send again."""
        self.server.resume()
        return _ok()

    def skip(self, q: Query, t: str) -> Answer:
        """Do not send the next ``count`` matching events."""
        self.server.skip(int(q.get("count", 1)), q.get("symbol"), q.get("channel"))
        return _ok()

    def disconnect(self, q: Query, t: str) -> Answer:
        """Drop every connection."""
        code = q.get("code")
        return _ok(dropped=self.server.disconnect(int(code) if code else None))

    def refuse(self, q: Query, t: str) -> Answer:
        """Refuse the next handshakes."""
        self.server.refuse_handshakes(int(q.get("count", 1)), int(q.get("status", 503)))
        return _ok()

    def raw(self, q: Query, t: str) -> Answer:
        """Raw bytes onto every TCP stream."""
        self._later(self.server.send_raw(bytes.fromhex(q.get("hex", "")), framed=False))
        return _ok()

    def oversized(self, q: Query, t: str) -> Answer:
        """One oversized text frame to every connection."""
        self._later(self.server.send_oversized(int(q.get("size", 2**20 + 1))))
        return _ok()
