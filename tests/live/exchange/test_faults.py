"""Fault hooks of the replay exchange, each observed by a real websocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from rrr_live.errors import RRRError
from rrr_live.exchange import ExchangeServer, Tape, TapeEvent, load_recording
from tests.live.exchange.kit import BINANCE_WS, COINBASE_WS, received_lines, recv_n

pytestmark = pytest.mark.asyncio

NKN = "/stream?streams=nknusdt@depth@100ms"


def _nkn_diffs() -> list[dict]:
    return [m["data"] for m in received_lines(BINANCE_WS) if m["stream"] == "nknusdt@depth@100ms"]


async def _roundtrip(ws) -> None:  # type: ignore[no-untyped-def]
    """A request/answer pair: the server ran in between (no sleeping)."""
    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 99}))
    while json.loads(await ws.recv()).get("id") != 99:
        pass


async def test_pause_holds_the_timeline_and_resume_continues() -> None:
    diffs = _nkn_diffs()
    async with ExchangeServer(load_recording(BINANCE_WS)) as ex:
        ex.pause()
        async with connect(ex.ws_url + NKN) as ws:
            for _ in range(3):
                await _roundtrip(ws)
            emitted_while_paused = ex.events_emitted
            ex.resume()
            frames = await recv_n(ws, len(diffs))
    assert emitted_while_paused == 0
    assert [f["data"] for f in frames] == diffs


async def test_skip_makes_a_sequence_gap_but_the_rest_book_includes_it() -> None:
    diffs = _nkn_diffs()
    async with ExchangeServer(load_recording(BINANCE_WS)) as ex:
        ex.pause()
        async with connect(ex.ws_url + NKN) as ws:
            await _roundtrip(ws)
            ex.skip(1, symbol="NKNUSDT")
            ex.resume()
            frames = [f["data"] for f in await recv_n(ws, len(diffs) - 1)]
            await ex.finished()
            async with httpx.AsyncClient(base_url=ex.http_url) as http:
                depth = (await http.get("/api/v3/depth", params={"symbol": "NKNUSDT"})).json()
    assert frames == diffs[1:]
    assert [e.last_seq for e in ex.faults.skipped] == [diffs[0]["u"]]
    assert depth["lastUpdateId"] == diffs[-1]["u"]


async def test_coinbase_skip_on_matches_leaves_a_trade_id_gap() -> None:
    product = "SKL-USD"
    kinds = ("match", "last_match")
    matches = [m for m in received_lines(COINBASE_WS)
               if m.get("product_id") == product and m["type"] in kinds]  # fmt: skip
    async with ExchangeServer(load_recording(COINBASE_WS)) as ex:
        ex.skip(2, symbol=product, channel="matches")
        async with connect(ex.ws_url) as ws:
            await ws.send(json.dumps({"type": "subscribe", "product_ids": [product],
                                      "channels": ["matches"]}))  # fmt: skip
            _ack, *got = await recv_n(ws, 1 + len(matches) - 2)
    assert got == matches[2:]
    assert len(ex.faults.skipped) == 2


@pytest.mark.parametrize("code", [None, 4000])
async def test_disconnect_drops_every_connection(code: int | None) -> None:
    async with ExchangeServer(load_recording(BINANCE_WS)) as ex:
        ex.pause()
        async with connect(ex.ws_url + NKN) as a, connect(ex.ws_url + NKN) as b:
            await _roundtrip(a)
            await _roundtrip(b)
            assert ex.disconnect(code) == 2
            for ws in (a, b):
                with pytest.raises(ConnectionClosedError) as err:
                    await ws.recv()
                got = err.value.rcvd.code if err.value.rcvd else 1006
                assert got == (code or 1006)


async def test_raw_bytes_and_binary_frames() -> None:
    async with ExchangeServer(load_recording(BINANCE_WS)) as ex:
        ex.pause()
        async with connect(ex.ws_url + NKN) as ws:
            await _roundtrip(ws)
            await ex.send_raw(b"\x00\x01binary", framed=True)
            assert await ws.recv() == b"\x00\x01binary"
            await ex.send_raw("{not json", framed=True)
            assert await ws.recv() == "{not json"
            await ex.send_raw(b"\xff\xff\xff\xff", framed=False)
            with pytest.raises(ConnectionClosedError) as err:
                await ws.recv()
    assert err.value.sent is not None and err.value.sent.code == 1002  # protocol error


async def test_refused_handshakes_then_accepted() -> None:
    async with ExchangeServer(load_recording(BINANCE_WS)) as ex:
        ex.refuse_handshakes(2, status=503)
        for _ in range(2):
            with pytest.raises(InvalidStatus) as err:
                async with connect(ex.ws_url + NKN):
                    pass
            assert err.value.response.status_code == 503
        async with connect(ex.ws_url + NKN) as ws:
            frames = await recv_n(ws, len(_nkn_diffs()))
    assert [f["data"] for f in frames] == _nkn_diffs()


async def test_oversized_frame_closes_with_1009() -> None:
    async with ExchangeServer(load_recording(BINANCE_WS)) as ex:
        ex.pause()
        async with connect(ex.ws_url + NKN, max_size=4096) as ws:
            await _roundtrip(ws)
            await ex.send_oversized(4097)
            with pytest.raises(ConnectionClosedError) as err:
                await ws.recv()
    assert err.value.sent is not None and err.value.sent.code == 1009


async def test_send_time_field_is_monotonic_and_top_level() -> None:
    ticks = iter(range(1_000, 10**9, 1_000))
    tape = load_recording(BINANCE_WS)
    server = ExchangeServer(tape, send_time=True, clock=lambda: next(ticks))
    async with server as ex, connect(ex.ws_url + NKN) as ws:
        frames = await recv_n(ws, len(_nkn_diffs()))
    stamps = [f["rrr_send_ns"] for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(frames)
    assert all(set(f) == {"stream", "data", "rrr_send_ns"} for f in frames)


async def test_a_broken_tape_fails_finished_with_a_clear_error() -> None:
    def broken() -> Iterator[TapeEvent]:
        yield TapeEvent(1, "NKNUSDT", "depth", b"{}", (("1", "1"),), ())
        raise OSError("disk went away")

    tape = Tape("binance", broken())
    async with ExchangeServer(tape, hold_without_clients=False) as ex:
        with pytest.raises(RRRError, match="timeline failed: disk went away"):
            await asyncio.wait_for(ex.finished(), 10)
