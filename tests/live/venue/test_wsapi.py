"""Orders on Binance's WebSocket API: the paper venue's ``order.*`` methods and WsApiRest."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from rrr_live.clock import SimulatedClock
from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.paper.limits import RateLimits
from rrr_live.exchange.synthetic import synthetic_tape
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.rest import RestConfig, VenueRejected
from rrr_live.venue.store import OrderStore
from rrr_live.venue.wsapi import WsApiRest, ws_api_url
from tests.live.paper.kit import SYMBOL, config
from tests.live.venue.kit import ASSETS, CREDS, intent, paper_venue


def _api(venue: ExchangeServer) -> WsApiRest:
    """Order requests on the venue's WebSocket API, the rest on its REST port."""
    config = RestConfig(venue.http_url, timeout_s=5.0)
    return WsApiRest(ws_api_url(venue.http_url), config, CREDS, SimulatedClock(0))


def test_ws_api_url_sits_next_to_the_rest_base():
    assert ws_api_url("http://127.0.0.1:9000/") == "ws://127.0.0.1:9000/ws-api/v3"
    assert ws_api_url("https://api.example.com") == "wss://api.example.com/ws-api/v3"


@pytest.mark.pg
@pytest.mark.asyncio
async def test_orders_travel_on_one_connection_and_refusals_keep_their_code(
    orders_dsn: str,
) -> None:
    async with paper_venue() as venue:
        api = _api(venue)
        async with asyncpg.create_pool(orders_dsn, min_size=1, max_size=3) as pool:
            try:
                await api.sync_time()
                broker = BinanceBroker(api, OrderStore(pool, "w1", "paper", api.clock), ASSETS)
                orders = [intent(k, "BUY", "1", None, prefix="w1") for k in range(1, 5)]
                answers = await asyncio.wait_for(
                    broker.submit_many(orders, 4, time.monotonic_ns), 30
                )
                assert [a.outcome.state for a in answers] == ["FILLED"] * 4  # type: ignore[union-attr]
                assert api._ws is not None and api._next_id == 4  # one connection, four frames
                found = await broker.query(orders[0].client_id)  # order.status on the same one
                assert found is not None and found.state == "FILLED" and api._next_id == 5
                with pytest.raises(VenueRejected) as refused:
                    await broker.submit(intent(9, "BUY", "100000000", None, prefix="w1"))
                assert refused.value.code == -2010
                assert (await broker.store.events("w1-9-0"))[-1] == "REJECTED"
            finally:
                await api.close()


@pytest.mark.asyncio
async def test_a_dropped_connection_fails_what_waits_and_the_next_request_reconnects() -> None:
    async with paper_venue() as venue:
        api = _api(venue)
        try:
            await api.sync_time()
            first = await api.signed("GET", "/api/v3/order",
                                     {"symbol": SYMBOL, "origClientOrderId": "none-1"})  # fmt: skip
            pytest.fail(f"an unknown order was found: {first}")
        except VenueRejected as e:
            assert e.code == -2013  # answered over the WebSocket API: "Order does not exist."
        assert api._ws is not None
        waiting = asyncio.get_running_loop().create_future()
        api._pending[999] = waiting
        await api._ws.close()  # the venue side goes away with a request unanswered
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(VenueRejected):  # a fresh connection answers the next request
            await api.signed("GET", "/api/v3/order",
                             {"symbol": SYMBOL, "origClientOrderId": "none-2"})  # fmt: skip
        await api.close()


@pytest.mark.asyncio
async def test_a_rate_limit_is_waited_out_for_as_long_as_the_venue_states():
    now = [1_000.0]  # the venue's rate-limit clock, moved by the client's waits
    limits = RateLimits(orders_per_10s=1, clock=lambda: now[0])
    tape = synthetic_tape("binance", 3, 2000, rate=1000.0, seed=7)
    async with ExchangeServer(tape, paper=config(limits=limits)) as venue:
        api = _api(venue)

        async def sleeper(seconds: float) -> None:
            now[0] += seconds

        api.sleeper = sleeper
        try:
            await api.sync_time()
            order = {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "1"}
            first = await api.signed("POST", "/api/v3/order", {**order, "newClientOrderId": "a"})
            second = await api.signed("POST", "/api/v3/order", {**order, "newClientOrderId": "b"})
            assert (first["status"], second["status"]) == ("FILLED", "FILLED")
            assert len(api.waits) == 1 and 0 < api.waits[0] <= 10  # the window's rest, once
        finally:
            await api.close()
