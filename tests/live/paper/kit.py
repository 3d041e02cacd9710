"""A minimal signed Binance client for the paper venue tests (httpx + websockets)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection

from rrr_live.exchange.paper.auth import ApiKeys, sign
from rrr_live.exchange.paper.venue import PaperConfig

KEYS = ApiKeys("test-key", "test-secret-which-is-long-enough")
SYMBOL = "SYN0000USDT"


def config(**kw: Any) -> PaperConfig:
    """A paper config with test keys and 100k USDT + 10 SYN0000."""
    balances = kw.pop("balances", {"USDT": Decimal(100_000), "SYN0000": Decimal(10)})
    return PaperConfig(KEYS, balances, **kw)


class Client:
    """Signs like Binance: HMAC-SHA256 over query + body."""

    def __init__(self, http: httpx.AsyncClient, keys: ApiKeys = KEYS) -> None:
        self.http, self.keys = http, keys
        self.offset_ms = 0

    async def server_ms(self) -> int:
        """The venue's clock (event time)."""
        r = await self.http.get("/api/v3/time")
        return int(r.json()["serverTime"])

    async def signed(
        self, method: str, path: str, in_body: bool = False, **params: Any
    ) -> httpx.Response:
        """A signed request; ``timestamp`` defaults to the venue's time."""
        if "timestamp" not in params:
            params["timestamp"] = await self.server_ms()
        text = urlencode(params)
        text += "&signature=" + sign(self.keys.secret, text)
        headers = {"X-MBX-APIKEY": self.keys.api_key}
        if in_body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return await self.http.request(method, path, content=text, headers=headers)
        return await self.http.request(method, f"{path}?{text}", headers=headers)


async def subscribe(ws: ClientConnection, server_ms: int, keys: ApiKeys = KEYS) -> dict[str, Any]:
    """``userDataStream.subscribe.signature``; returns the answer."""
    params: dict[str, Any] = {"apiKey": keys.api_key, "timestamp": server_ms}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["signature"] = sign(keys.secret, payload)
    await ws.send(json.dumps({"id": "sub", "method": "userDataStream.subscribe.signature",
                              "params": params}))  # fmt: skip
    return await next_message(ws, lambda m: m.get("id") == "sub")


async def next_message(ws: ClientConnection, pred: Any, limit_s: float = 10.0) -> dict[str, Any]:
    """The next JSON message on ``ws`` that satisfies ``pred``."""
    async with asyncio.timeout(limit_s):
        while True:
            msg: dict[str, Any] = json.loads(await ws.recv())
            if pred(msg):
                return msg
