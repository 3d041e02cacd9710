"""Shared test helpers: the recorded files and a reference replay that does not use rrr_live."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

RECORDED = Path("/work/shared/data/recorded")
BINANCE_WS = RECORDED / "binance-spot-2021-10-12.ws.log"
BINANCE_DEPTH = RECORDED / "binance-spot-2021-10-12.rest-depth.log"
COINBASE_WS = RECORDED / "coinbase-exchange-2021-04-17.part1.ws.log"


def received_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON of every received line (``<ts>: <json>``) of a recording."""
    out = []
    for line in path.read_text().splitlines():
        if line[:1].isdigit():
            out.append(json.loads(line.split(": ", 1)[1]))
    return out


def binance_depth_snapshots() -> dict[str, dict[str, Any]]:
    """Recorded REST depth snapshots by symbol."""
    snaps = {}
    for line in filter(None, BINANCE_DEPTH.read_text().splitlines()):
        url, rest = line.split(" -> ", 1)
        symbol = url.split("symbol=")[1].split("&")[0]
        snaps[symbol] = json.loads(rest.split(": ", 1)[1])
    return snaps


def binance_reference(symbol: str) -> tuple[int, dict[Decimal, str], dict[Decimal, str]]:
    """The documented sync rules by hand: snapshot, drop ``u <= lastUpdateId``, apply the rest."""
    snap = binance_depth_snapshots()[symbol]
    last = snap["lastUpdateId"]
    bids = {Decimal(p): s for p, s in snap["bids"]}
    asks = {Decimal(p): s for p, s in snap["asks"]}
    for msg in received_lines(BINANCE_WS):
        data = msg["data"]
        if data.get("e") != "depthUpdate" or data["s"] != symbol or data["u"] <= last:
            continue
        for side, levels in ((bids, data["b"]), (asks, data["a"])):
            for p, s in levels:
                if Decimal(s) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = s
        last = data["u"]
    return last, bids, asks


async def recv_n(ws: ClientConnection, n: int, limit_s: float = 10.0) -> list[Any]:
    """Receive exactly ``n`` JSON frames (bounded)."""
    out = []
    async with asyncio.timeout(limit_s):
        while len(out) < n:
            out.append(json.loads(await ws.recv()))
    return out


async def recv_until(ws: ClientConnection, pred: Any, limit_s: float = 10.0) -> list[Any]:
    """Receive JSON frames until one satisfies ``pred`` (included), bounded."""
    out = []
    async with asyncio.timeout(limit_s):
        while True:
            msg = json.loads(await ws.recv())
            out.append(msg)
            if pred(msg):
                return out
