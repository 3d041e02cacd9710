"""Resting paper orders filled by the replayed tape, reported on the user-data stream."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.synthetic import synthetic_tape
from tests.live.exchange.kit import BINANCE_WS
from tests.live.paper.kit import KEYS, SYMBOL, Client, config, subscribe


async def _drain(ws: Any) -> None:
    async for _ in ws:
        pass


async def _collect_until_done(user: Any, server: ExchangeServer) -> list[dict[str, Any]]:
    """User-data events until the tape is done and a ping answer shows the queue is empty."""
    async with connect(f"{server.ws_url}/ws/{SYMBOL.lower()}@trade") as market:
        reader = asyncio.create_task(_drain(market))  # the timeline runs while it is read
        await asyncio.wait_for(server.finished(), 60)
        reader.cancel()
    await user.send(json.dumps({"id": "end", "method": "ping"}))
    events: list[dict[str, Any]] = []
    while True:  # answers and events share one ordered queue: the ping answer comes last
        msg = json.loads(await asyncio.wait_for(user.recv(), 10))
        if msg.get("id") == "end":
            return events
        events.append(msg["event"])


@pytest.mark.asyncio
async def test_resting_orders_fill_from_the_tape_as_maker() -> None:
    tape = synthetic_tape("binance", 2, 3000, rate=1000.0, seed=5)
    async with (
        ExchangeServer(tape, paper=config()) as server,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        client = Client(http)
        (bid, _), (ask, _) = (side[0] for side in server.book(SYMBOL, 1))
        async with connect(f"{server.ws_url}/ws-api/v3") as user:
            assert (await subscribe(user, await client.server_ms()))["status"] == 200
            ids = []
            for side, price in (("BUY", bid), ("SELL", ask)):
                r = await client.signed("POST", "/api/v3/order", symbol=SYMBOL, side=side,
                                        type="LIMIT", timeInForce="GTC", quantity="3",
                                        price=price)  # fmt: skip
                assert r.json()["status"] == "NEW", r.text
                ids.append(r.json()["orderId"])
            # a market-data client starts the timeline; the tape plays to its end
            events = await _collect_until_done(user, server)
        trades = (await client.signed("GET", "/api/v3/myTrades", symbol=SYMBOL)).json()
        account = (await client.signed("GET", "/api/v3/account")).json()
    reports = [e for e in events if e["e"] == "executionReport" and e["x"] == "TRADE"]
    assert trades and all(t["isMaker"] for t in trades)
    assert [(e["t"], e["i"], e["l"], e["L"]) for e in reports] == [
        (t["id"], t["orderId"], t["qty"], t["price"]) for t in trades
    ]
    assert {t["orderId"] for t in trades} <= set(ids)
    balances = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]}
    bought = sum(Decimal(t["qty"]) * (1 if t["isBuyer"] else -1) for t in trades)
    paid = sum(Decimal(t["quoteQty"]) * (1 if t["isBuyer"] else -1) for t in trades)
    fees = sum(Decimal(t["commission"]) for t in trades)
    assert balances["SYN0000"] == 10 + bought
    assert balances["USDT"] == 100_000 - paid - fees
    last = {e["i"]: e for e in events if e["e"] == "executionReport"}
    positions = [e for e in events if e["e"] == "outboundAccountPosition"]
    assert positions and {r["a"] for r in positions[-1]["B"]} == {"SYN0000", "USDT"}
    for order_id in ids:
        executed = sum(Decimal(t["qty"]) for t in trades if t["orderId"] == order_id)
        if order_id in last:
            assert Decimal(last[order_id]["z"]) == executed


@pytest.mark.asyncio
async def test_cli_serves_the_paper_venue_on_a_recording(tmp_path: Path) -> None:
    env = {**os.environ, "RRR_HOME": str(tmp_path / "home"), "RRR_LOG_FORMAT": "text",
           "RRR_VENUE_API_KEY": KEYS.api_key, "RRR_VENUE_API_SECRET": KEYS.secret}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rrr_pipelines.cli", "exchange", "serve", "--recording",
        str(BINANCE_WS), "--paper", "--balances", "USDT=1000", "--taker-fee", "0.001",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        url = dict(re.findall(r"(ws|http) (\S+)", line))["http"]
        async with httpx.AsyncClient(base_url=url) as http:
            client = Client(http)
            depth = (await http.get("/api/v3/depth", params={"symbol": "NKNUSDT"})).json()
            ask = Decimal(depth["asks"][0][0])
            r = await client.signed("POST", "/api/v3/order", in_body=True, symbol="NKNUSDT",
                                    side="BUY", type="MARKET", quantity="100")  # fmt: skip
            assert r.status_code == 200, r.text
            fill = r.json()["fills"][0]
            assert (Decimal(fill["price"]), fill["commissionAsset"]) == (ask, "USDT")
            assert Decimal(fill["commission"]) == (ask * 100 * Decimal("0.001")).quantize(
                Decimal("1e-8")
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert KEYS.secret not in err.decode()


@pytest.mark.asyncio
async def test_cli_refuses_paper_without_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RRR_VENUE_")}
    env["RRR_HOME"] = str(tmp_path / "home")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rrr_pipelines.cli", "exchange", "serve", "--recording",
        str(BINANCE_WS), "--paper", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    assert "RRR_VENUE_API_KEY" in err.decode() and len(err.decode().strip().splitlines()) == 1
