"""What the server asks of a venue protocol (Binance, Coinbase), and the plumbing they share."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from rrr_live.exchange.books import Books
from rrr_live.exchange.tape import InstrumentSpec, Tape, TapeEvent

# A REST handler gets the query parameters (first value each) and the path tail; it returns
# (HTTP status, JSON body).
RestHandler = Callable[[dict[str, str], str], tuple[int, bytes]]
SubKey = tuple[str, str]  # (symbol, tape channel)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes (the venues send no spaces)."""
    return json.dumps(obj, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_time(ts_ns: int) -> str:
    """``2021-04-17T16:43:37.077736Z`` for an event time in nanoseconds."""
    return f"{_second(ts_ns // 1_000_000_000)}.{(ts_ns // 1000) % 1_000_000:06d}Z"


@dataclass
class Market:
    """The state a venue protocol reads: tape metadata, the server's books, event time.

    Args:
        tape: the source's tape (instruments, recorded REST bodies, symbols).
        books: the server's books.
        now_ns: event time of the last emitted event (the tape's start before that).
    """

    tape: Tape
    books: Books = field(default_factory=Books)
    now_ns: int = 0

    @property
    def instruments(self) -> list[InstrumentSpec]:
        """Generated instrument metadata (empty for recordings)."""
        return self.tape.instruments


@dataclass
class Reply:
    """What a client message leads to: frames to send now and subscription changes.

    ``subscribe`` maps a subscription key to the frame prefix for it (b"" when frames go
    unwrapped); ``frames`` are sent after the subscriptions are registered, so a snapshot
    and the diffs after it reach the client in order.
    """

    frames: list[bytes] = field(default_factory=list)
    subscribe: dict[SubKey, bytes] = field(default_factory=dict)
    unsubscribe: list[SubKey] = field(default_factory=list)


class VenueProtocol(Protocol):
    """One venue's wire protocol, as the server drives it."""

    name: str

    def accept_path(self, path: str) -> dict[SubKey, bytes] | None:
        """Subscriptions implied by the websocket path; None when the path is not served."""
        ...

    def on_message(self, msg: dict[str, Any]) -> Reply:
        """Answer one client JSON message (subscribe, unsubscribe, list, ...)."""
        ...

    def routes(self) -> dict[str, RestHandler]:
        """REST endpoints by path (a path ending in ``/`` also matches longer paths)."""
        ...

    def timed(self, ts_ns: int, subscribed: Callable[[SubKey], bool]) -> list[TapeEvent]:
        """Events the venue makes as event time passes (Coinbase heartbeats)."""
        ...

    def observe(self, event: TapeEvent) -> None:
        """See every emitted event (state for timed events)."""
        ...

    def control(self, kind: str, body: dict[str, Any]) -> bytes:
        """A replay-exchange control frame (``bar_closed``) in this protocol's framing."""
        ...
