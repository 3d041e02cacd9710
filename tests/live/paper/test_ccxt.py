"""Acceptance: a real third-party client (ccxt's binance class) trades the paper venue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
import pytest_asyncio

from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.paper.auth import ApiKeys
from rrr_live.exchange.paper.limits import RateLimits
from rrr_live.exchange.synthetic import synthetic_tape
from tests.live.paper.kit import KEYS, config

MARKET = "SYN0000/USDT"


def _client(base: str, keys: ApiKeys = KEYS, **options: Any) -> Any:
    ex = ccxt.binance({
        "urls": {"api": {"public": f"{base}/api/v3", "private": f"{base}/api/v3",
                         "v1": f"{base}/api/v1", "sapi": f"{base}/sapi/v1"}},
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "fetchMargins": False, "adjustForTimeDifference": True, **options},
        "apiKey": keys.api_key, "secret": keys.secret, "timeout": 5000,
        "enableRateLimit": False,
    })  # fmt: skip
    # ccxt keeps Binance's spot error table for its own hosts only (STACK_NOTES 12.6).
    ex.exceptions["exact"] = {**ex.exceptions["exact"], **ex.exceptions["spot"]["exact"]}
    return ex


@pytest_asyncio.fixture
async def venue() -> AsyncIterator[ExchangeServer]:
    """Synthetic Binance tape with the paper venue (the venue's clock is event time)."""
    tape = synthetic_tape("binance", 3, 500, rate=1000.0, seed=11)
    limits = RateLimits(orders_per_10s=8)
    async with ExchangeServer(tape, paper=config(limits=limits)) as server:
        yield server


@pytest_asyncio.fixture
async def ex(venue: ExchangeServer) -> AsyncIterator[Any]:
    """ccxt's binance pointed at the venue, markets loaded."""
    client = _client(venue.http_url)
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_ccxt_trades_the_paper_venue(venue: ExchangeServer, ex: Any) -> None:
    assert MARKET in ex.markets and ex.markets[MARKET]["spot"]
    bid, ask = (Decimal(side[0][0]) for side in venue.book("SYN0000USDT", 1))
    before = await ex.fetch_balance()
    assert before["USDT"]["free"] == 100_000 and before["SYN0000"]["free"] == 10
    resting = await ex.create_order(MARKET, "limit", "buy", 2, float(bid - Decimal("0.05")))
    assert resting["status"] == "open" and resting["filled"] == 0
    assert [o["id"] for o in await ex.fetch_open_orders(MARKET)] == [resting["id"]]
    locked = await ex.fetch_balance()
    assert locked["USDT"]["used"] == pytest.approx(float((bid - Decimal("0.05")) * 2))
    canceled = await ex.cancel_order(resting["id"], MARKET)
    assert canceled["status"] == "canceled"
    assert (await ex.fetch_order(resting["id"], MARKET))["status"] == "canceled"
    bought = await ex.create_order(MARKET, "market", "buy", 1)
    assert bought["status"] == "closed" and bought["filled"] == 1
    assert bought["average"] == pytest.approx(float(ask))
    sold = await ex.create_order(MARKET, "limit", "sell", 3, float(bid), {"timeInForce": "IOC"})
    assert sold["filled"] > 0
    trades = await ex.fetch_my_trades(MARKET)
    assert [t["order"] for t in trades][:1] == [bought["id"]]
    assert sum(t["amount"] for t in trades if t["order"] == sold["id"]) == sold["filled"]
    after = await ex.fetch_balance()
    assert after["SYN0000"]["total"] == pytest.approx(10 + 1 - sold["filled"])
    assert after["USDT"]["used"] == 0


@pytest.mark.asyncio
async def test_ccxt_sees_binance_error_classes(venue: ExchangeServer, ex: Any) -> None:
    bid = float(Decimal(venue.book("SYN0000USDT", 1)[0][0][0]) - Decimal("0.05"))
    forged = _client(venue.http_url, ApiKeys(KEYS.api_key, "wrong-secret"))
    try:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await forged.fetch_balance()
    finally:
        await forged.close()
    stale = _client(venue.http_url, adjustForTimeDifference=False)  # wall clock vs event time
    try:
        with pytest.raises(ccxt.InvalidNonce, match="-1021"):
            await stale.fetch_balance()
    finally:
        await stale.close()
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        await ex.fetch_order("424242", MARKET)
    params = {"newClientOrderId": "dup-1"}
    await ex.create_order(MARKET, "limit", "buy", 1, bid, params)
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await ex.create_order(MARKET, "limit", "buy", 1, bid, params)
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        await ex.create_order(MARKET, "limit", "buy", 10_000, bid)
    with pytest.raises(ccxt.DDoSProtection, match="-1015"):
        for _ in range(10):
            await ex.create_order(MARKET, "limit", "buy", 1, bid)
