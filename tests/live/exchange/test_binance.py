"""Binance protocol of the replay exchange over a real websocket, and its REST endpoints."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer, load_recording
from tests.live.exchange.kit import BINANCE_WS, binance_reference, received_lines, recv_n

pytestmark = pytest.mark.asyncio


def _recorded(stream: str) -> list[dict]:
    return [m["data"] for m in received_lines(BINANCE_WS) if m["stream"] == stream]


async def test_combined_stream_sends_every_recorded_frame_in_order() -> None:
    want = {s: _recorded(s) for s in ("nknusdt@depth@100ms", "lrcbtc@depth@100ms",
                                      "nknusdt@bookTicker", "nknusdt@kline_1m")}  # fmt: skip
    total = sum(len(v) for v in want.values())
    async with ExchangeServer(load_recording(BINANCE_WS)) as ex:
        url = f"{ex.ws_url}/stream?streams={'/'.join(want)}"
        async with connect(url) as ws:
            got = await recv_n(ws, total)
        await ex.finished()
    for stream, frames in want.items():
        assert [m["data"] for m in got if m["stream"] == stream] == frames
    assert {m["stream"] for m in got} == set(want)


async def test_subscribe_method_on_raw_socket() -> None:
    want = _recorded("blzeth@depth@100ms")
    async with ExchangeServer(load_recording(BINANCE_WS)) as ex, connect(f"{ex.ws_url}/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["blzeth@depth"], "id": 7}))
        ack, *frames = await recv_n(ws, 1 + len(want))
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
        (listed,) = await recv_n(ws, 1)
        await ws.send(json.dumps({"method": "FROB", "id": 9}))
        (error,) = await recv_n(ws, 1)
    assert ack == {"result": None, "id": 7}
    assert frames == want  # raw stream: the payload itself, no wrapper
    assert listed == {"result": ["blzeth@depth"], "id": 8}
    assert error["id"] == 9 and error["error"]["code"] == 2


async def test_unknown_websocket_path_is_404() -> None:
    async with ExchangeServer(load_recording(BINANCE_WS)) as ex:
        async with httpx.AsyncClient(base_url=ex.http_url) as http:
            r = await http.get("/nope")
        with pytest.raises(Exception, match="404"):
            async with connect(f"{ex.ws_url}/nope"):
                pass
    assert r.status_code == 404


async def test_rest_depth_is_the_servers_book_at_the_last_u_sent() -> None:
    symbol = "NKNUSDT"
    last_u, bids, asks = binance_reference(symbol)
    async with (
        ExchangeServer(load_recording(BINANCE_WS)) as ex,
        connect(f"{ex.ws_url}/stream?streams=nknusdt@depth@100ms") as ws,
    ):
        frames = await recv_n(ws, len(_recorded("nknusdt@depth@100ms")))
        await ex.finished()
        async with httpx.AsyncClient(base_url=ex.http_url) as http:
            r = await http.get("/api/v3/depth", params={"symbol": symbol, "limit": 1000})
    body = r.json()
    assert r.status_code == 200
    assert body["lastUpdateId"] == frames[-1]["data"]["u"] == last_u
    assert {Decimal(p): s for p, s in body["bids"]} == bids
    assert {Decimal(p): s for p, s in body["asks"]} == asks
    prices = [Decimal(p) for p, _ in body["bids"]]
    assert prices == sorted(prices, reverse=True)


async def test_rest_depth_before_any_diff_is_the_recorded_snapshot() -> None:
    async with (
        ExchangeServer(load_recording(BINANCE_WS), autostart=False) as ex,
        httpx.AsyncClient(base_url=ex.http_url) as http,
    ):
        ok = await http.get("/api/v3/depth", params={"symbol": "RUNEEUR", "limit": 5})
        missing = await http.get("/api/v3/depth")
        unknown = await http.get("/api/v3/depth", params={"symbol": "NOPE"})
        bad_limit = await http.get("/api/v3/depth", params={"symbol": "RUNEEUR", "limit": 7})
    assert ok.json()["lastUpdateId"] == 15602511
    assert len(ok.json()["bids"]) == 5
    assert (missing.status_code, missing.json()["code"]) == (400, -1102)
    assert (unknown.status_code, unknown.json()["code"]) == (400, -1121)
    assert (bad_limit.status_code, bad_limit.json()["code"]) == (400, -1100)


async def test_exchange_info_and_time_from_the_recording() -> None:
    async with (
        ExchangeServer(load_recording(BINANCE_WS), autostart=False) as ex,
        httpx.AsyncClient(base_url=ex.http_url) as http,
    ):
        full = await http.get("/api/v3/exchangeInfo")
        one = await http.get("/api/v3/exchangeInfo", params={"symbol": "LRCBTC"})
        two = await http.get("/api/v3/exchangeInfo", params={"symbols": '["LRCBTC","BLZETH"]'})
        ping = await http.get("/api/v3/ping")
        now = await http.get("/api/v3/time")
    assert len(full.json()["symbols"]) == 1695
    (lrc,) = one.json()["symbols"]
    tick = next(f for f in lrc["filters"] if f["filterType"] == "PRICE_FILTER")["tickSize"]
    assert (lrc["symbol"], tick) == ("LRCBTC", "0.00000001")
    assert sorted(s["symbol"] for s in two.json()["symbols"]) == ["BLZETH", "LRCBTC"]
    assert ping.json() == {}
    assert isinstance(now.json()["serverTime"], int)
