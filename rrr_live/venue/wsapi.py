"""Order requests over Binance's WebSocket API (``/ws-api/v3``) on one persistent connection.

REST pays a TCP connection (when the venue does not keep it alive), an HTTP request and an HTTP
parse per order; on 2 cores that capped a 1000-symbol runner at a few hundred orders a second.
:class:`WsApiRest` is a :class:`~rrr_live.venue.rest.SignedRest` whose order requests
(``POST``/``GET``/``DELETE /api/v3/order``) travel as ``order.place`` / ``order.status`` /
``order.cancel`` frames on one connection, many in flight at once, matched to their answers by
``id``; every other request (account, open orders, trades, time) stays on REST.

The outcome split is REST's: an answer is returned; an ``error`` answer is
:class:`~rrr_live.venue.rest.VenueRejected` (429/418 are waited out and retried, as on REST);
no answer -- the connection dropped, or ``timeout_s`` passed -- is
:class:`~rrr_live.venue.rest.AmbiguousOutcome`, which the broker resolves by querying. A dropped
connection is opened again by the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from rrr_live.venue.rest import AmbiguousOutcome, SignedRest, Throttled, VenueRejected
from rrr_live.venue.stream import ws_signed

WS_METHODS = {
    ("POST", "/api/v3/order"): "order.place",
    ("GET", "/api/v3/order"): "order.status",
    ("DELETE", "/api/v3/order"): "order.cancel",
}


def _retry_wait(data: Any) -> float:
    """Seconds until a rate limit or ban ends (``retryAfter`` - ``serverTime``; else 1 s)."""
    try:
        return (int(data["retryAfter"]) - int(data["serverTime"])) / 1000
    except (TypeError, KeyError, ValueError):
        return 1.0


def ws_api_url(base_url: str) -> str:
    """The WebSocket API next to a REST base (``http://h:p`` -> ``ws://h:p/ws-api/v3``)."""
    if base_url.startswith("https://"):
        return "wss://" + base_url.removeprefix("https://").rstrip("/") + "/ws-api/v3"
    return "ws://" + base_url.removeprefix("http://").rstrip("/") + "/ws-api/v3"


class WsApiRest(SignedRest):
    """:class:`SignedRest` with the order requests on the WebSocket API (module docstring).

    Args:
        ws_url: the WebSocket API endpoint (see :func:`ws_api_url`).
        *args: as :class:`SignedRest`.
        **kwargs: as :class:`SignedRest`.
    """

    def __init__(self, ws_url: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ws_url = ws_url
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._opening = asyncio.Lock()

    async def close(self) -> None:
        """Close the WebSocket API connection and the HTTP connections."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await super().close()

    async def _attempt(self, method: str, path: str, query: Callable[[], str], signed: bool) -> Any:
        ws_method = WS_METHODS.get((method, path)) if signed else None
        if ws_method is None:
            return await super()._attempt(method, path, query, signed)
        params: dict[str, Any] = dict(parse_qsl(query()))  # a fresh timestamp each try
        params.pop("signature", None)
        params["apiKey"] = self.creds.api_key
        msg = await self._request(ws_method, ws_signed(params, self.creds.secret))
        status = int(msg.get("status", 0))
        if status == 200:
            return msg.get("result")
        if status >= 500 or status == 0:
            raise AmbiguousOutcome(f"{ws_method}: venue error {status}")
        err = msg.get("error") or {}
        code, text = int(err.get("code", 0)), str(err.get("msg", ""))
        if status not in (418, 429):
            raise VenueRejected(status, code, text)
        return Throttled(status, code, text, _retry_wait(err.get("data")))

    async def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ws = await self._connection()
        self._next_id += 1
        ident = self._next_id
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = answer
        try:
            await ws.send(json.dumps({"id": ident, "method": method, "params": params}))
            return await asyncio.wait_for(answer, self.config.timeout_s)
        except (ConnectionClosed, OSError, TimeoutError) as e:
            raise AmbiguousOutcome(f"{method}: no answer ({type(e).__name__})") from e
        finally:
            self._pending.pop(ident, None)

    async def _connection(self) -> ClientConnection:
        async with self._opening:
            if self._ws is None:
                try:
                    self._ws = await connect(
                        self.ws_url, max_size=2**22, open_timeout=self.config.timeout_s,
                        ping_interval=None, compression=None,
                    )  # fmt: skip
                except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as e:
                    raise AmbiguousOutcome(f"WebSocket API: cannot connect ({e})") from e
                self._reader = asyncio.create_task(self._read(self._ws), name="ws-api-reader")
            return self._ws

    async def _read(self, ws: ClientConnection) -> None:
        """Hand every answer to its request; on a drop, fail those still waiting."""
        try:
            async for raw in ws:
                msg = json.loads(raw)
                ident = msg.get("id") if isinstance(msg, dict) else None
                waiting = self._pending.get(ident) if isinstance(ident, int) else None
                if waiting is not None and not waiting.done():
                    waiting.set_result(msg)
        except ConnectionClosed:
            pass
        finally:
            if self._ws is ws:
                self._ws = None
            for waiting in self._pending.values():
                if not waiting.done():
                    waiting.set_exception(ConnectionResetError("WebSocket API connection lost"))
