"""The user-data stream on Binance's WebSocket API (``/ws-api/v3``).

Requests are ``{"id", "method", "params"}``; answers ``{"id", "status", "result"|"error"}``.
``userDataStream.subscribe.signature`` (params ``apiKey``, ``timestamp``, ``signature``,
optional ``recvWindow``; the signature is over the other params sorted by name, as
``name=value`` joined with ``&``) starts a subscription; its events arrive as
``{"subscriptionId": n, "event": {...}}``: ``executionReport`` and ``outboundAccountPosition``.
Also ``userDataStream.unsubscribe``, ``session.subscriptions``, ``ping`` and ``time``, and the
signed order requests ``order.place``, ``order.status`` and ``order.cancel`` (the REST order
endpoint's parameters, limits and answers, on one persistent connection: no TCP connection and
HTTP parse per order).
Answers and events share one ordered queue per connection; a client that lets it grow past
``MAX_QUEUE`` is disconnected (it reconnects and reconciles, as after any drop).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection

from rrr_live.exchange.paper.auth import sign
from rrr_live.exchange.paper.errors import BinanceError
from rrr_live.exchange.paper.rest import check_time
from rrr_live.exchange.venue import dumps

if TYPE_CHECKING:
    from rrr_live.exchange.paper.venue import PaperVenue

MAX_QUEUE = 100_000
# WebSocket API order methods -> the REST request they stand for
WS_ORDER_METHODS = {
    "order.place": ("POST", "/api/v3/order"),
    "order.status": ("GET", "/api/v3/order"),
    "order.cancel": ("DELETE", "/api/v3/order"),
}
_CLOSE = b""


class UserDataSession:
    """One WebSocket API connection (see the module docstring).

    Args:
        venue: the paper venue whose account is streamed.
    """

    def __init__(self, venue: PaperVenue) -> None:
        self.venue = venue
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.subscription: int | None = None
        self._next_sub = 0

    def on_message(self, raw: str | bytes) -> None:
        """Answer one request (queued in order with the events)."""
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError:
            self._put({"id": None, "status": 400,
                       "error": {"code": -1102, "msg": "Malformed request."}})  # fmt: skip
            return
        ident = msg.get("id")
        try:
            result = self._call(str(msg.get("method")), msg.get("params") or {})
        except BinanceError as err:
            error: dict[str, Any] = {"code": err.code, "msg": err.msg}
            if err.retry_after:  # Binance states when a rate limit or ban ends (epoch ms)
                now = self.venue.server_ms()
                error["data"] = {"serverTime": now, "retryAfter": now + 1000 * err.retry_after}
            self._put({"id": ident, "status": err.status, "error": error})
            return
        self._put({"id": ident, "status": 200, "result": result})

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        if method == "userDataStream.subscribe.signature":
            return self._subscribe(params)
        if method == "userDataStream.unsubscribe":
            self.close()
            return {}
        if method == "session.subscriptions":
            return [] if self.subscription is None else [{"subscriptionId": self.subscription}]
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.venue.server_ms()}
        if method in WS_ORDER_METHODS:
            fields = self._authenticated(params)
            del fields["apiKey"]
            return self.venue.rest.ws_call(*WS_ORDER_METHODS[method], fields)
        raise BinanceError(400, -1100, f"Unknown method: {method}")

    def _authenticated(self, params: dict[str, Any]) -> dict[str, str]:
        """The params as strings, their key, time and signature checked (signature removed)."""
        keys = self.venue.keys
        if params.get("apiKey") != keys.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        fields = {k: str(v) for k, v in params.items()}
        check_time(fields, self.venue.server_ms())
        given = fields.pop("signature", "")
        payload = "&".join(f"{k}={fields[k]}" for k in sorted(fields))
        if not hmac.compare_digest(sign(keys.secret, payload), given.lower()):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        return fields

    def _subscribe(self, params: dict[str, Any]) -> dict[str, int]:
        self._authenticated(params)
        if self.subscription is not None:
            raise BinanceError(400, -1210, "This account is already subscribed on this session.")
        self.subscription, self._next_sub = self._next_sub, self._next_sub + 1
        self.venue.account.listeners.append(self._event)
        return {"subscriptionId": self.subscription}

    def _event(self, event: dict[str, Any]) -> None:
        self._put({"subscriptionId": self.subscription, "event": event})

    def _put(self, message: dict[str, Any]) -> None:
        if self.queue.qsize() >= MAX_QUEUE:
            self.close()
            self.queue.put_nowait(_CLOSE)
            return
        self.queue.put_nowait(dumps(message))

    def close(self) -> None:
        """Stop streaming events to this connection."""
        if self._event in self.venue.account.listeners:
            self.venue.account.listeners.remove(self._event)
        self.subscription = None

    async def pump(self, ws: ServerConnection) -> None:
        """Send queued answers and events in order (closes on overflow)."""
        while True:
            frame = await self.queue.get()
            if frame == _CLOSE:
                await ws.close(1008, "user data queue overflow")
                return
            await ws.send(frame.decode())
