"""A client that stops reading stops the timeline (bounded buffers); two clients get the same."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.synthetic import synthetic_tape
from tests.live.exchange.kit import recv_n

pytestmark = pytest.mark.asyncio


async def _stalled(ex: ExchangeServer) -> int:
    """Poll until the timeline stops moving (bounded); return where it stopped."""
    async with asyncio.timeout(20):
        last = -1
        while ex.events_emitted != last:
            last = ex.events_emitted
            await asyncio.sleep(0.2)  # observing an absence: there is no event to await
    return last


async def test_a_client_that_does_not_read_holds_the_timeline() -> None:
    tape = synthetic_tape("coinbase", 10, 60_000, rate=1e6)
    total = sum(1 for e in tape.events if e.channel)  # type: ignore[attr-defined]
    products = tape.symbols
    sub = {"type": "subscribe", "product_ids": products, "channels": ["level2_batch", "matches"]}
    async with ExchangeServer(tape) as ex:
        async with connect(ex.ws_url, max_queue=4) as ws:
            await ws.send(json.dumps(sub))
            stopped = await _stalled(ex)
            assert stopped < total  # held by the socket, not buffered without bound
            conn = next(iter(ex._conns))
            assert conn.ws.transport.get_write_buffer_size() < 2**20
            got = await recv_n(ws, 1 + total)  # reading again releases it
        await asyncio.wait_for(ex.finished(), 20)
    assert len(got) == 1 + total


async def test_two_clients_receive_the_same_frames() -> None:
    tape = synthetic_tape("binance", 4, 2_000, rate=1e4, seed=5)
    streams = "/".join(f"{s.lower()}@depth@100ms" for s in tape.symbols)
    expected = sum(1 for e in tape.events if e.channel == "depth")  # type: ignore[attr-defined]
    async with ExchangeServer(tape, autostart=False) as ex:
        url = f"{ex.ws_url}/stream?streams={streams}"
        async with connect(url) as a, connect(url) as b:
            ex.start()
            got_a, got_b = await asyncio.gather(recv_n(a, expected), recv_n(b, expected))
    assert got_a == got_b
    assert len({(f["data"]["s"], f["data"]["u"]) for f in got_a}) == expected
