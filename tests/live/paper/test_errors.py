"""Binance's error shape and codes on the paper venue: auth, time, ids, filters, funds, limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.paper.auth import ApiKeys, sign, signature_ok
from rrr_live.exchange.paper.limits import RateLimits
from rrr_live.exchange.synthetic import synthetic_tape
from tests.live.paper.kit import KEYS, SYMBOL, Client, config, subscribe


class Clock:
    """Injected wall clock (seconds) for the rate limits."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def clock() -> Clock:
    """The rate limits' clock."""
    return Clock()


@pytest_asyncio.fixture
async def venue(clock: Clock) -> AsyncIterator[ExchangeServer]:
    """Synthetic Binance tape, paper venue with small limits on the injected clock."""
    tape = synthetic_tape("binance", 2, 200, rate=1000.0, seed=3)
    limits = RateLimits(weight_per_minute=200, orders_per_10s=12, ban_after=2, clock=clock)
    async with ExchangeServer(tape, paper=config(limits=limits)) as server:
        yield server


@pytest_asyncio.fixture
async def client(venue: ExchangeServer) -> AsyncIterator[Client]:
    """A signed client of the venue."""
    async with httpx.AsyncClient(base_url=venue.http_url) as http:
        yield Client(http)


def _err(r: httpx.Response) -> tuple[int, int, str]:
    body: dict[str, Any] = r.json()
    assert set(body) == {"code", "msg"}
    return r.status_code, body["code"], body["msg"]


async def _limit_buy(client: Client, price: Decimal, **kw: Any) -> httpx.Response:
    params = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
              "quantity": "1", "price": str(price)} | kw  # fmt: skip
    return await client.signed("POST", "/api/v3/order", **params)


def _bid(venue: ExchangeServer) -> Decimal:
    return Decimal(venue.book(SYMBOL, 1)[0][0][0])


def test_signature_is_over_query_then_body_without_separator() -> None:
    q, b = "symbol=A&side=BUY", "quantity=1&timestamp=5"
    good = sign(KEYS.secret, q + b)
    assert signature_ok(KEYS.secret, q, f"{b}&signature={good}")
    assert signature_ok(KEYS.secret, f"{q}&signature={good}", b)
    assert not signature_ok(KEYS.secret, q, f"{b}&signature={sign(KEYS.secret, q + '&' + b)}")
    assert "secret" not in repr(KEYS) and KEYS.secret not in repr(KEYS)


@pytest.mark.asyncio
async def test_bad_signature_key_and_stale_timestamp(venue: ExchangeServer, client: Client) -> None:
    now = await client.server_ms()
    forged = Client(client.http, ApiKeys(KEYS.api_key, "another-secret"))
    assert _err(await _limit_buy(forged, _bid(venue)))[:2] == (400, -1022)
    stranger = Client(client.http, ApiKeys("nobody", KEYS.secret))
    assert _err(await _limit_buy(stranger, _bid(venue)))[:2] == (401, -2015)
    assert _err(await _limit_buy(client, _bid(venue), timestamp=now - 5001))[:2] == (400, -1021)
    assert _err(await _limit_buy(client, _bid(venue), timestamp=now + 1000))[:2] == (400, -1021)
    inside = await _limit_buy(client, _bid(venue), timestamp=now - 9000, recvWindow=10000)
    assert inside.status_code == 200, inside.text
    r = await client.http.get("/api/v3/account?timestamp=1")
    assert _err(r)[:2] == (401, -2014)


@pytest.mark.asyncio
async def test_client_order_id_rules(venue: ExchangeServer, client: Client) -> None:
    low = _bid(venue) - Decimal("0.10")
    assert (await _limit_buy(client, low, newClientOrderId="A.b:c/d_e-1")).status_code == 200
    dup = await _limit_buy(client, low, newClientOrderId="A.b:c/d_e-1")
    assert _err(dup) == (400, -2010, "Duplicate order sent.")
    for bad in ("x" * 37, "has space", "semi;colon"):
        assert _err(await _limit_buy(client, low, newClientOrderId=bad))[:2] == (400, -1100)
    first = await client.signed("GET", "/api/v3/order", symbol=SYMBOL,
                                origClientOrderId="A.b:c/d_e-1")  # fmt: skip
    await client.signed("DELETE", "/api/v3/order", symbol=SYMBOL, orderId=first.json()["orderId"])
    again = await _limit_buy(client, low, newClientOrderId="A.b:c/d_e-1")
    assert again.status_code == 200 and again.json()["orderId"] != first.json()["orderId"]


@pytest.mark.asyncio
async def test_unknown_orders_filters_and_funds(venue: ExchangeServer, client: Client) -> None:
    missing = await client.signed("GET", "/api/v3/order", symbol=SYMBOL, orderId=999)
    assert _err(missing) == (400, -2013, "Order does not exist.")
    gone = await client.signed("DELETE", "/api/v3/order", symbol=SYMBOL, origClientOrderId="no")
    assert _err(gone)[:2] == (400, -2013)
    bid = _bid(venue)
    assert _err(await _limit_buy(client, bid + Decimal("0.001")))[1:] == (
        -1013, "Filter failure: PRICE_FILTER")  # fmt: skip
    assert _err(await _limit_buy(client, bid, quantity="1.0005"))[1:] == (
        -1013, "Filter failure: LOT_SIZE")  # fmt: skip
    assert _err(await _limit_buy(client, bid, quantity="0.001"))[2] == "Filter failure: NOTIONAL"
    rich = (Decimal(100_000) / bid).quantize(Decimal("0.001")) + 1
    broke = _err(await _limit_buy(client, bid, quantity=str(rich)))
    assert broke == (400, -2010, "Account has insufficient balance for requested action.")
    sell = await client.signed("POST", "/api/v3/order", symbol=SYMBOL, side="SELL",
                               type="MARKET", quantity="10.001")  # fmt: skip
    assert _err(sell)[1] == -2010
    assert _err(await _limit_buy(client, bid, symbol="NOPE"))[:2] == (400, -1121)
    assert _err(await _limit_buy(client, bid, side="HOLD"))[1] == -1117
    assert (await client.signed("GET", "/api/v3/openOrders")).json() == []


@pytest.mark.asyncio
async def test_weight_then_ban_with_retry_after(
    venue: ExchangeServer, client: Client, clock: Clock
) -> None:
    ts = await client.server_ms()  # weight 1; event time stands still without subscribers
    clock.now = 1_000_040.0  # a new minute window (from 1_000_020) with 40 s left
    for n in range(1, 11):  # account: weight 20 each, 200 a minute
        ok = await client.signed("GET", "/api/v3/account", timestamp=ts)
        assert ok.headers["X-MBX-USED-WEIGHT-1M"] == str(20 * n)
    over = await client.signed("GET", "/api/v3/account", timestamp=ts)
    assert _err(over)[:2] == (429, -1003) and over.headers["Retry-After"] == "40"
    for _ in range(2):
        assert (await client.signed("GET", "/api/v3/account", timestamp=ts)).status_code == 429
    banned = await client.signed("GET", "/api/v3/account", timestamp=ts)
    assert _err(banned)[:2] == (418, -1003) and banned.headers["Retry-After"] == "120"
    clock.now += 119.5
    assert (await client.signed("GET", "/api/v3/account", timestamp=ts)).status_code == 418
    clock.now += 0.5
    ok = await client.signed("GET", "/api/v3/account", timestamp=ts)
    assert ok.status_code == 200 and ok.headers["X-MBX-USED-WEIGHT-1M"] == "20"


@pytest.mark.asyncio
async def test_order_count_limit(venue: ExchangeServer, client: Client, clock: Clock) -> None:
    low = _bid(venue) - Decimal("0.10")
    clock.now = 1_000_000.0  # a 10 s window starts
    for n in range(1, 13):
        ok = await _limit_buy(client, low)
        assert ok.headers["X-MBX-ORDER-COUNT-10S"] == str(n)
    over = await _limit_buy(client, low)
    assert _err(over)[:2] == (429, -1015) and over.headers["Retry-After"] == "10"
    clock.now += 10
    assert (await _limit_buy(client, low)).status_code == 200


@pytest.mark.asyncio
async def test_user_data_subscription_needs_a_valid_signature(
    venue: ExchangeServer, client: Client
) -> None:
    now = await client.server_ms()
    async with connect(f"{venue.ws_url}/ws-api/v3") as ws:
        bad = await subscribe(ws, now, ApiKeys(KEYS.api_key, "wrong"))
        assert (bad["status"], bad["error"]["code"]) == (400, -1022)
        stale = await subscribe(ws, now - 60_000)
        assert stale["error"]["code"] == -1021
        assert (await subscribe(ws, now))["status"] == 200
        await ws.send(json.dumps({"id": 9, "method": "session.subscriptions"}))
        assert json.loads(await ws.recv()) == {
            "id": 9, "status": 200, "result": [{"subscriptionId": 0}]}  # fmt: skip
