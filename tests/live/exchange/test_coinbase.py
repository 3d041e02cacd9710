"""Coinbase protocol of the replay exchange over a real websocket, and its REST endpoints."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer, load_recording
from tests.live.exchange.kit import COINBASE_WS, RECORDED, received_lines, recv_n, recv_until

pytestmark = pytest.mark.asyncio

PRODUCTS = ["BAND-GBP", "SKL-USD"]


def _level2(product: str) -> list[dict]:
    return _of(product, ("snapshot", "l2update"))


def _of(product: str, types: tuple[str, ...]) -> list[dict]:
    return [m for m in received_lines(COINBASE_WS)
            if m.get("product_id") == product and m["type"] in types]  # fmt: skip


def _reference(frames: list[dict]) -> dict[str, dict[Decimal, str]]:
    book: dict[str, dict[Decimal, str]] = {"buy": {}, "sell": {}}
    for m in frames:
        if m["type"] == "snapshot":
            book = {"buy": {Decimal(p): s for p, s in m["bids"]},
                    "sell": {Decimal(p): s for p, s in m["asks"]}}  # fmt: skip
            continue
        for side, p, s in m["changes"]:
            if Decimal(s) == 0:
                book[side].pop(Decimal(p), None)
            else:
                book[side][Decimal(p)] = s
    return book


def _as_book(bids: list, asks: list) -> dict[str, dict[Decimal, str]]:
    return {"buy": {Decimal(p): s for p, s, *_ in bids},
            "sell": {Decimal(p): s for p, s, *_ in asks}}  # fmt: skip


@pytest.mark.parametrize("channel", ["level2", "level2_batch"])
async def test_subscribe_gets_ack_then_every_recorded_level2_frame(channel: str) -> None:
    want = {p: _level2(p) for p in PRODUCTS}
    async with ExchangeServer(load_recording(COINBASE_WS)) as ex:
        async with connect(ex.ws_url) as ws:
            sub = {"type": "subscribe", "product_ids": PRODUCTS, "channels": [channel]}
            await ws.send(json.dumps(sub))
            ack, *frames = await recv_n(ws, 1 + sum(len(v) for v in want.values()))
        await ex.finished()
        server_books = {p: _as_book(*ex.book(p)) for p in PRODUCTS}
    assert ack == {
        "type": "subscriptions",
        "channels": [{"name": channel, "product_ids": PRODUCTS}],
    }
    for product in PRODUCTS:
        got = [m for m in frames if m["product_id"] == product]
        assert got == want[product]
        assert server_books[product] == _reference(want[product])


async def test_late_subscriber_gets_a_snapshot_of_the_servers_book() -> None:
    product = "YFI-BTC"
    async with ExchangeServer(load_recording(COINBASE_WS)) as ex, connect(ex.ws_url) as first:
        await first.send(json.dumps({"type": "subscribe", "product_ids": [product],
                                     "channels": ["matches"]}))  # fmt: skip
        await ex.finished()
        async with connect(ex.ws_url) as late:
            await late.send(json.dumps({"type": "subscribe", "product_ids": [product],
                                        "channels": ["level2_batch"]}))  # fmt: skip
            _ack, snap = await recv_n(late, 2)
    assert snap["type"] == "snapshot"
    assert _as_book(snap["bids"], snap["asks"]) == _reference(_level2(product))


async def test_matches_and_heartbeats() -> None:
    product = "SKL-USD"
    matches = _of(product, ("match", "last_match"))
    async with ExchangeServer(load_recording(COINBASE_WS)) as ex, connect(ex.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "product_ids": [product],
                                  "channels": ["matches", "heartbeat"]}))  # fmt: skip
        frames = await recv_until(ws, lambda m: m.get("trade_id") == matches[-1]["trade_id"])
    assert [m for m in frames if m["type"] in ("match", "last_match")] == matches
    beats = [m for m in frames if m["type"] == "heartbeat"]
    assert beats and all(m["product_id"] == product for m in beats)
    for i, m in enumerate(frames):  # each heartbeat names the last trade sent before it
        if m["type"] == "heartbeat":
            before = [f["trade_id"] for f in frames[:i] if "trade_id" in f]
            assert m["last_trade_id"] == (before[-1] if before else 0)
    seconds = [m["time"][:19] for m in beats]
    assert len(set(seconds)) == len(seconds)  # one a second of event time


async def test_unknown_product_or_channel_is_an_error_message() -> None:
    async with ExchangeServer(load_recording(COINBASE_WS)) as ex, connect(ex.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "product_ids": ["NOPE-USD"],
                                  "channels": ["level2"]}))  # fmt: skip
        await ws.send(json.dumps({"type": "subscribe", "product_ids": ["SKL-USD"],
                                  "channels": ["full_book"]}))  # fmt: skip
        await ws.send("not json")
        errors = await recv_n(ws, 3)
    assert [e["type"] for e in errors] == ["error"] * 3
    assert "NOPE-USD is not a valid product" in errors[0]["reason"]
    assert "full_book is not a valid channel" in errors[1]["reason"]


async def test_products_and_time_from_the_recording() -> None:
    async with (
        ExchangeServer(load_recording(COINBASE_WS), autostart=False) as ex,
        httpx.AsyncClient(base_url=ex.http_url) as http,
    ):
        products = await http.get("/products")
        one = await http.get("/products/SKL-USD")
        missing = await http.get("/products/NOPE-USD")
        now = await http.get("/time")
    line = (RECORDED / "coinbase-exchange-2021-04-17.rest-products.log").read_text()
    recorded = json.loads(line.split(": ", 1)[1])
    assert products.json() == recorded
    assert one.json() == next(p for p in recorded if p["id"] == "SKL-USD")
    assert missing.status_code == 404
    assert now.json()["iso"].endswith("Z")
