"""Getting frames onto client sockets fast: per-connection batches, one write per batch.

``ServerConnection.send`` costs one ``socket.send`` system call and one frame serialisation per
frame; at 100k frames/s that is most of the server's CPU. A :class:`Peer` instead queues frames,
and :meth:`Fanout.flush` writes each queue with ONE ``transport.write``, then waits for the
connection's flow control (``drain``) where the client is slow: backpressure is kept, the system
calls are amortised. Server-to-client text frames without extensions are a fixed header and the
payload (RFC 6455 §5.2: FIN + opcode 1, unmasked, 7/16/64-bit length), so the peer frames them
itself while the connection is OPEN; a connection that negotiated an extension goes through the
library's protocol object instead (the server does not offer compression, so none does). The server
flushes at most every ``BATCH`` events and before anything that waits (pacing, pause, lockstep,
replies), so batching never reorders frames or delays them past a wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidState
from websockets.protocol import State

from rrr_live.exchange.pacing import MonotonicNs
from rrr_live.exchange.tape import TapeEvent
from rrr_live.exchange.venue import SubKey, VenueProtocol

BATCH = 256  # events between flushes when nothing waits


@dataclass(eq=False)
class Peer:
    """One websocket client: its protocol state, subscriptions and queued frames."""

    ident: int
    ws: ServerConnection
    proto: VenueProtocol
    keys: set[SubKey] = field(default_factory=set)
    out: list[bytes] = field(default_factory=list)

    def write(self) -> int:
        """Write the queued frames in one system call; return how many (-1: connection gone)."""
        frames, self.out = self.out, []
        ws = self.ws
        if ws.protocol.state is not State.OPEN or ws.transport.is_closing():
            return -1
        if not ws.protocol.extensions:
            ws.transport.write(b"".join([_text_frame(f) for f in frames]))
            return len(frames)
        try:
            for frame in frames:
                ws.protocol.send_text(frame)
        except InvalidState:
            return -1
        ws.send_data()
        return len(frames)


def _text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return b"\x81%c%b" % (n, payload)
    if n < 65536:
        return b"\x81\x7e%b%b" % (n.to_bytes(2, "big"), payload)
    return b"\x81\x7f%b%b" % (n.to_bytes(8, "big"), payload)


class Fanout:
    """Subscriptions and the per-peer queues.

    Args:
        send_time: stamp frames with ``rrr_send_ns`` as they are queued.
        clock: monotonic nanoseconds for the stamp.
        on_gone: called with a peer whose connection closed.
    """

    def __init__(
        self, send_time: bool, clock: MonotonicNs, on_gone: Callable[[Peer], None]
    ) -> None:
        self.subs: dict[SubKey, dict[Peer, bytes]] = {}
        self.sent = 0
        self._dirty: dict[Peer, None] = {}
        self._send_time, self._clock, self._on_gone = send_time, clock, on_gone

    def queue(self, peer: Peer, frame: bytes) -> None:
        """Queue one frame for ``peer``."""
        if self._send_time:
            frame = b'%b,"rrr_send_ns":%d}' % (frame[:-1], self._clock())
        peer.out.append(frame)
        self._dirty[peer] = None

    def deliver(self, event: TapeEvent) -> None:
        """Queue ``event`` for every peer subscribed to it (Binance combined: wrapped)."""
        subs = self.subs.get((event.symbol, event.channel))
        if not subs:
            return
        payload = event.payload
        for peer, prefix in subs.items():
            self.queue(peer, b"%b%b}" % (prefix, payload) if prefix else payload)

    async def flush(self) -> None:
        """Write every queue; wait where a client's socket buffer is full."""
        if not self._dirty:
            return
        dirty, self._dirty = list(self._dirty), {}
        slow: list[Peer] = []
        for peer in dirty:
            written = peer.write()
            if written < 0:
                self._on_gone(peer)
                continue
            self.sent += written
            if peer.ws.transport.get_write_buffer_size() > 0:
                slow.append(peer)
        for peer in slow:
            try:
                await peer.ws.drain()
            except (ConnectionClosed, OSError):
                self._on_gone(peer)
