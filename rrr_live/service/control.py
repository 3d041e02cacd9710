"""Control and health HTTP for the live runner: status, halt, resume, flatten.

Plain HTTP/1.1 on ``asyncio.start_server`` (one request per connection), bound to 127.0.0.1 by
default. Every endpoint but ``GET /health`` (which says only that the process answers) needs
``Authorization: Bearer <token>``, compared in constant time (``hmac.compare_digest``); binding
a non-loopback address without a token is refused. The token is never logged or echoed.

Commands act on the event loop between decision batches, so once ``POST /halt`` is answered
the next batch sees HALTED and no new order passes the risk engine.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rrr_live.errors import RRRError

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16_384
_REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            400: "Bad Request"}  # fmt: skip


class ControlConfigError(RRRError):
    """The control listener's configuration is unsafe or invalid."""


@dataclass(frozen=True)
class ControlHandlers:
    """What the control endpoints call (all on the event loop).

    Attributes:
        status: JSON-ready status of the runner.
        halt: Halt trading (cancel open orders per policy); returns the new state.
        resume: Leave HALTED; returns the new state.
        flatten: Halt and close every position; returns the new state.
    """

    status: Callable[[], dict[str, Any]]
    halt: Callable[[str], str]
    resume: Callable[[str], str]
    flatten: Callable[[str], str]


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token.

    Raises:
        ControlConfigError: non-loopback host and no token.
    """
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        raise ControlConfigError(
            f"control API on non-loopback address {host} needs a token; refusing to start"
        )


class ControlServer:
    """The control/health listener.

    Args:
        handlers: What the commands do.
        token: Bearer token (``None``: only allowed on loopback, and then every command but
            ``/health`` is refused, since nobody can authenticate).
        host: Address to bind (loopback by default).
        port: TCP port (0: a free one, read :attr:`port` after :meth:`start`).
    """

    def __init__(
        self, handlers: ControlHandlers, token: str | None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        check_bind(host, token)
        self.handlers = handlers
        self._token = token.encode() if token else None
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None

    def __repr__(self) -> str:
        return f"ControlServer(host={self.host!r}, port={self.port}, token=<redacted>)"

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        logger.info("control API on %s:%d", self.host, self.port)

    async def close(self) -> None:
        """Stop listening and wait for the server to close."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            status, body = self._handle(head[:MAX_HEADER_BYTES])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            status, body = 400, {"error": "bad request"}
        data = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        try:
            await writer.drain()
        finally:
            writer.close()

    def _handle(self, head: bytes) -> tuple[int, dict[str, Any]]:
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if path == "/health":
            return 200, {"ok": True}
        if not self._authorized(headers.get("authorization", "")):
            return 401, {"error": "unauthorized"}
        return self._command(method, path)

    def _authorized(self, header: str) -> bool:
        if self._token is None or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer ") :].encode(), self._token)

    def _command(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        h = self.handlers
        if path == "/status":
            return (200, h.status()) if method == "GET" else (405, {"error": "use GET"})
        actions = {"/halt": h.halt, "/resume": h.resume, "/flatten": h.flatten}
        if path not in actions:
            return 404, {"error": "unknown endpoint"}
        if method != "POST":
            return 405, {"error": "use POST"}
        state = actions[path](f"operator {path[1:]} via control API")
        return 200, {"state": state}


def risk_handlers(
    risk: Any, now_ns: Callable[[], int], status: Callable[[], dict[str, Any]]
) -> ControlHandlers:
    """Control handlers acting on a :class:`~rrr_live.risk.limits.RiskEngine`.

    Args:
        risk: The runner's risk engine.
        now_ns: The injected clock (data time of the command).
        status: The runner's status view.

    Returns:
        Handlers: halt freezes (or flattens per the risk policy), flatten always flattens.
    """

    def halt(reason: str) -> str:
        return str(risk.halt(now_ns(), reason).value)

    def resume(reason: str) -> str:
        return str(risk.resume(now_ns(), reason).value)

    def flatten(reason: str) -> str:
        state = risk.halt(now_ns(), reason)
        risk.flatten_pending = True
        return str(state.value)

    return ControlHandlers(status, halt, resume, flatten)
