"""Request bodies for the websockets HTTP server (it serves only body-less requests).

Binance clients send signed ``POST`` parameters as a form body. :class:`BodyConnection` holds a
request's bytes until the head and ``Content-Length`` bytes of body have arrived, keeps the body
as :attr:`BodyConnection.request_body`, and hands websockets the head without its
``Content-Length``. Websocket handshakes and body-less requests pass through unchanged; the
server answers every HTTP request with ``Connection: close``, so one request per connection.
"""

from __future__ import annotations

import re
from typing import Any

from websockets.asyncio.server import ServerConnection

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r\n)", re.IGNORECASE)
_MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024


class BodyConnection(ServerConnection):
    """A server connection that reads one HTTP request body (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_body = b""
        self._pending: bytearray | None = bytearray()

    def data_received(self, data: bytes) -> None:
        """Buffer until the request is complete, then feed websockets the head."""
        if self._pending is None:
            super().data_received(data)
            return
        self._pending += data
        end = self._pending.find(b"\r\n\r\n")
        if end < 0:
            if len(self._pending) > _MAX_HEAD:
                self._release(bytes(self._pending))  # websockets rejects the long head
            return
        head = bytes(self._pending[: end + 2])
        match = _LENGTH.search(head)
        length = int(match.group(1)) if match else 0
        if not length or length > MAX_BODY:
            self._release(bytes(self._pending))  # websockets answers a too-large body
            return
        if len(self._pending) < end + 4 + length:
            return
        self.request_body = bytes(self._pending[end + 4 : end + 4 + length])
        rest = bytes(self._pending[end + 4 + length :])
        self._release(_LENGTH.sub(b"", head) + b"\r\n" + rest)

    def _release(self, data: bytes) -> None:
        self._pending = None
        super().data_received(data)
