"""The paper venue over the wire: signed orders matched against the replayed tape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

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
