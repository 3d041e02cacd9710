"""The user-data stream on Binance's WebSocket API and what the broker does with its events.

``userDataStream.subscribe.signature`` on ``/ws-api/v3``: the request's params are signed as
Binance's WebSocket API documents (all params but ``signature``, sorted by name, ``k=v`` joined
by ``&``). Events arrive as ``{"subscriptionId": n, "event": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from rrr_live.errors import RRRError
from rrr_live.exchange.paper.auth import sign
from rrr_live.venue.model import FillRecord
from rrr_live.venue.rest import Credentials

EventHandler = Callable[[dict[str, Any]], Awaitable[None]]


class StreamRefused(RRRError):
    """The venue answered the subscription with an error."""


def ws_signed(params: dict[str, Any], secret: str) -> dict[str, Any]:
    """Return ``params`` with the WebSocket API signature added."""
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return {**params, "signature": sign(secret, payload)}


async def subscribe(ws_url: str, creds: Credentials, now_ms: int) -> ClientConnection:
    """Open the WebSocket API and subscribe to this account's user data.

    Raises:
        StreamRefused: if the venue answers with an error status.
    """
    ws = await connect(ws_url, max_size=2**20)
    params = ws_signed({"apiKey": creds.api_key, "timestamp": now_ms}, creds.secret)
    await ws.send(json.dumps({"id": "uds", "method": "userDataStream.subscribe.signature",
                              "params": params}))  # fmt: skip
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("id") == "uds":
            break
    if msg.get("status") != 200:
        await ws.close()
        raise StreamRefused(f"user-data subscription refused: {msg.get('error')}")
    return ws


async def pump(ws: ClientConnection, handle: EventHandler) -> None:
    """Hand every user-data event to ``handle`` until the connection closes (then return)."""
    async for raw in ws:
        msg = json.loads(raw)
        event = msg.get("event")
        if isinstance(event, dict):
            await handle(event)


def fill_of(event: dict[str, Any]) -> FillRecord | None:
    """The fill an ``executionReport`` carries (``x == "TRADE"``), else None."""
    if event.get("e") != "executionReport" or event.get("x") != "TRADE":
        return None
    return FillRecord(
        symbol=str(event["s"]),
        trade_id=int(event["t"]),
        client_id=str(event["c"]),
        side=str(event["S"]),
        qty=Decimal(str(event["l"])),
        price=Decimal(str(event["L"])),
        quote_qty=Decimal(str(event["Y"])),
        fee=Decimal(str(event.get("n") or "0")),
        fee_asset=str(event.get("N") or ""),
        ts_ns=int(event["T"]) * 1_000_000,
    )


def trade_fill(trade: dict[str, Any], client_id: str) -> FillRecord:
    """A ``myTrades`` row of our order as a fill."""
    return FillRecord(
        symbol=str(trade["symbol"]),
        trade_id=int(trade["id"]),
        client_id=client_id,
        side="BUY" if trade["isBuyer"] else "SELL",
        qty=Decimal(str(trade["qty"])),
        price=Decimal(str(trade["price"])),
        quote_qty=Decimal(str(trade["quoteQty"])),
        fee=Decimal(str(trade["commission"])),
        fee_asset=str(trade["commissionAsset"]),
        ts_ns=int(trade["time"]) * 1_000_000,
    )
