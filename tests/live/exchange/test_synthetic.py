"""The synthetic universe: deterministic, gap-free, book-consistent, served exactly."""

from __future__ import annotations

import itertools
from decimal import Decimal

import httpx
import pytest
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer, TapeEvent
from rrr_live.exchange.synthetic import synthetic_tape
from tests.live.exchange.kit import recv_n


def _payloads(events: object) -> list[bytes]:
    return [e.payload for e in events]  # type: ignore[attr-defined]


def test_seeded_lazy_and_eager_tapes_are_identical() -> None:
    eager = synthetic_tape("coinbase", 20, 500, rate=1000.0, seed=3)
    lazy = synthetic_tape("coinbase", 20, 500, rate=1000.0, seed=3, lazy=True)
    assert not isinstance(lazy.events, list)
    assert _payloads(eager.events) == _payloads(lazy.events)
    assert _payloads(eager.events) != _payloads(synthetic_tape("coinbase", 20, 500, seed=4).events)


def test_bar_closes_mark_the_last_frame_of_each_second() -> None:
    events: list[TapeEvent] = synthetic_tape("binance", 10, 2500, rate=1000.0).events  # type: ignore[assignment]
    sent = [e for e in events if e.channel]
    for this, after in itertools.pairwise(sent):
        crosses = this.ts_ns // 10**9 < after.ts_ns // 10**9
        assert bool(this.closes_bar) == crosses or this.ts_ns == after.ts_ns
    assert sent[-1].closes_bar


@pytest.mark.asyncio
async def test_rest_snapshot_plus_diffs_equal_the_servers_book() -> None:
    tape = synthetic_tape("binance", 5, 3000, rate=1000.0, seed=1)
    symbols = tape.symbols[:3]
    expected = sum(1 for e in tape.events if e.channel == "depth" and e.symbol in symbols)  # type: ignore[attr-defined]
    streams = "/".join(f"{s.lower()}@depth@100ms" for s in symbols)
    async with ExchangeServer(tape) as ex, httpx.AsyncClient(base_url=ex.http_url) as http:
        books = {}
        for s in symbols:
            snap = (await http.get("/api/v3/depth", params={"symbol": s, "limit": 100})).json()
            assert snap["lastUpdateId"] == 0
            books[s] = ({Decimal(p): q for p, q in snap["bids"]},
                        {Decimal(p): q for p, q in snap["asks"]})  # fmt: skip
        async with connect(f"{ex.ws_url}/stream?streams={streams}") as ws:
            frames = [f["data"] for f in await recv_n(ws, expected)]
        await ex.finished()
        final = {s: (await http.get("/api/v3/depth", params={"symbol": s})).json() for s in symbols}
    last = dict.fromkeys(symbols, 0)
    for d in frames:
        assert d["U"] == last[d["s"]] + 1  # gap-free per symbol
        last[d["s"]] = d["u"]
        bids, asks = books[d["s"]]
        for side, levels in ((bids, d["b"]), (asks, d["a"])):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(Decimal(p))  # a deletion always names an existing level
                else:
                    side[Decimal(p)] = q
        assert max(bids) < min(asks)
    for s in symbols:
        assert final[s]["lastUpdateId"] == last[s]
        assert {Decimal(p): q for p, q in final[s]["bids"]} == books[s][0]
        assert {Decimal(p): q for p, q in final[s]["asks"]} == books[s][1]


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="synthetic needs"):
        synthetic_tape("binance", 0, 10)
