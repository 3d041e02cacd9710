"""The paper venue over the wire: signed orders matched against the replayed tape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.synthetic import synthetic_tape
from tests.live.paper.kit import SYMBOL, Client, config, next_message, subscribe


@pytest_asyncio.fixture
async def venue() -> AsyncIterator[ExchangeServer]:
    """A synthetic Binance tape (3 symbols) with the paper venue mounted."""
    tape = synthetic_tape("binance", 3, 2000, rate=1000.0, seed=7)
    async with ExchangeServer(tape, paper=config()) as server:
        yield server


@pytest_asyncio.fixture
async def client(venue: ExchangeServer) -> AsyncIterator[Client]:
    """A signed client of the venue."""
    async with httpx.AsyncClient(base_url=venue.http_url) as http:
        yield Client(http)


async def _drain(ws: Any) -> None:
    async for _ in ws:
        pass


def _best(venue: ExchangeServer) -> tuple[Decimal, Decimal]:
    bids, asks = venue.book(SYMBOL, 1)
    return Decimal(bids[0][0]), Decimal(asks[0][0])


@pytest.mark.asyncio
async def test_marketable_limit_fills_and_is_streamed(
    venue: ExchangeServer, client: Client
) -> None:
    _, ask = _best(venue)
    async with connect(f"{venue.ws_url}/ws-api/v3") as ws:
        sub = await subscribe(ws, await client.server_ms())
        assert sub["status"] == 200 and sub["result"] == {"subscriptionId": 0}
        r = await client.signed("POST", "/api/v3/order", in_body=True, symbol=SYMBOL,
                                side="BUY", type="LIMIT", timeInForce="GTC", quantity="1",
                                price=str(ask), newClientOrderId="slice-1")  # fmt: skip
        assert r.status_code == 200, r.text
        ack = r.json()
        assert ack["status"] == "FILLED" and ack["clientOrderId"] == "slice-1"
        assert [Decimal(f["price"]) for f in ack["fills"]] == [ask]
        report = await next_message(ws, lambda m: m.get("event", {}).get("x") == "TRADE")
        position = await next_message(
            ws, lambda m: m.get("event", {}).get("e") == "outboundAccountPosition"
        )
    event = report["event"]
    assert (event["i"], event["c"], event["X"]) == (ack["orderId"], "slice-1", "FILLED")
    assert Decimal(event["l"]) == 1 and Decimal(event["L"]) == ask
    assets = {row["a"]: Decimal(row["f"]) for row in position["event"]["B"]}
    assert assets["SYN0000"] == Decimal(11)
    assert assets["USDT"] == Decimal(100_000) - ask
    got = await client.signed("GET", "/api/v3/order", symbol=SYMBOL, origClientOrderId="slice-1")
    assert got.json()["status"] == "FILLED"
    assert Decimal(got.json()["cummulativeQuoteQty"]) == ask
    trades = (await client.signed("GET", "/api/v3/myTrades", symbol=SYMBOL)).json()
    assert [(t["orderId"], Decimal(t["qty"]), t["isMaker"]) for t in trades] == [
        (ack["orderId"], Decimal(1), False)
    ]


@pytest.mark.asyncio
async def test_resting_order_locks_funds_and_cancel_releases_them(
    venue: ExchangeServer, client: Client
) -> None:
    bid, _ = _best(venue)
    price = bid - Decimal("0.05")
    r = await client.signed("POST", "/api/v3/order", symbol=SYMBOL, side="BUY", type="LIMIT",
                            timeInForce="GTC", quantity="2", price=str(price))  # fmt: skip
    assert r.json()["status"] == "NEW", r.text
    account = (await client.signed("GET", "/api/v3/account")).json()
    usdt = next(b for b in account["balances"] if b["asset"] == "USDT")
    assert Decimal(usdt["locked"]) == price * 2
    assert Decimal(usdt["free"]) == Decimal(100_000) - price * 2
    open_orders = (await client.signed("GET", "/api/v3/openOrders", symbol=SYMBOL)).json()
    assert [o["orderId"] for o in open_orders] == [r.json()["orderId"]]
    c = await client.signed("DELETE", "/api/v3/order", symbol=SYMBOL, orderId=r.json()["orderId"])
    assert c.json()["status"] == "CANCELED", c.text
    account = (await client.signed("GET", "/api/v3/account")).json()
    usdt = next(b for b in account["balances"] if b["asset"] == "USDT")
    assert (Decimal(usdt["free"]), Decimal(usdt["locked"])) == (Decimal(100_000), 0)
    assert (await client.signed("GET", "/api/v3/openOrders")).json() == []


@pytest.mark.asyncio
async def test_partial_fills_across_levels_and_ioc_expiry(
    venue: ExchangeServer, client: Client
) -> None:
    _, asks = venue.book(SYMBOL, 5)
    size = sum(Decimal(q) for _, q in asks[:2])
    worst = Decimal(asks[1][0])
    params = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "IOC"}
    r = await client.signed("POST", "/api/v3/order", quantity=str(size + 1), price=str(worst),
                            **params)  # fmt: skip
    ack = r.json()
    assert ack["status"] == "EXPIRED", r.text
    assert [(f["price"], Decimal(f["qty"])) for f in ack["fills"]] == [
        (f"{Decimal(p):.8f}", Decimal(q)) for p, q in asks[:2]
    ]
    assert Decimal(ack["executedQty"]) == size
    for kind, keys in (("ACK", {"symbol", "orderId", "orderListId", "clientOrderId",
                                "transactTime"}), ("RESULT", set(ack) - {"fills"})):  # fmt: skip
        r = await client.signed("POST", "/api/v3/order", quantity="1", price=str(worst),
                                newOrderRespType=kind, **params)  # fmt: skip
        assert set(r.json()) == keys, r.text
    again = await client.signed("DELETE", "/api/v3/order", symbol=SYMBOL, orderId=ack["orderId"])
    assert again.status_code == 400 and again.json()["code"] == -2011
    account = (await client.signed("GET", "/api/v3/account")).json()
    usdt = next(b for b in account["balances"] if b["asset"] == "USDT")
    assert Decimal(usdt["locked"]) == 0
    assert Decimal(usdt["free"]) == 100_000 - Decimal(ack["cummulativeQuoteQty"])


@pytest.mark.asyncio
async def test_latency_acks_new_then_fills_on_the_next_event() -> None:
    from rrr_live.execution.models import LatencyModel

    tape = synthetic_tape("binance", 1, 500, rate=1000.0, seed=2)
    async with (
        ExchangeServer(tape, paper=config(latency=LatencyModel(5_000_000))) as server,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        client = Client(http)
        ask = Decimal(server.book(SYMBOL, 1)[1][0][0])
        async with connect(f"{server.ws_url}/ws-api/v3") as user:
            await subscribe(user, await client.server_ms())
            r = await client.signed("POST", "/api/v3/order", symbol=SYMBOL, side="BUY",
                                    type="MARKET", quantity="1")  # fmt: skip
            assert (r.json()["status"], r.json()["fills"]) == ("NEW", []), r.text
            async with connect(f"{server.ws_url}/ws/{SYMBOL.lower()}@trade") as market:
                reader = asyncio.create_task(_drain(market))  # the timeline runs while read
                done = await next_message(user, lambda m: m.get("event", {}).get("X") in (
                    "FILLED", "EXPIRED"))  # fmt: skip
                reader.cancel()
    event = done["event"]
    assert event["E"] - event["O"] >= 5  # arrived after the latency, in event time
    assert event["i"] == r.json()["orderId"]
    assert (event["X"], Decimal(event["z"])) == ("FILLED", 1)
    assert abs(Decimal(event["L"]) - ask) <= Decimal("0.05")  # the book moved a few ticks at most
