"""Bars expanded into ticks: the documented path, determinism, lockstep."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer, TapeEvent
from rrr_live.exchange.bars import Bar, expand_bars

DAY = 86_400_000_000_000
T0 = 1_600_000_000_000_000_000 // DAY * DAY

BARS = [
    Bar("AAA", T0, DAY, 100.00, 101.50, 99.25, 101.00, 4000.0),  # up bar: o -> l -> h -> c
    Bar("AAA", T0 + DAY, DAY, 101.00, 101.20, 98.00, 98.50, 1003.0),  # down: o -> h -> l -> c
    Bar("BBB", T0, DAY, 20.00, 20.10, 19.90, 20.05, 50.0),
    Bar("BBB", T0 + DAY, DAY, 20.05, 20.30, 20.00, 20.00, 0.0),  # no volume: no trades
]


def _events(protocol: str, bars: list[Bar]) -> list[TapeEvent]:
    events = expand_bars(protocol, bars).events  # type: ignore[arg-type]
    assert isinstance(events, list)
    return events


def _plain(events: list[TapeEvent]) -> list[tuple]:
    return [(e.ts_ns, e.symbol, e.channel, e.payload, e.bids, e.asks, e.closes_bar) for e in events]


def test_expansion_is_deterministic_and_in_event_time_order() -> None:
    a = _events("binance", BARS)
    assert _plain(a) == _plain(_events("binance", list(reversed(BARS))))
    times = [e.ts_ns for e in a]
    assert times == sorted(times)


def test_trades_follow_the_ohlc_path_and_sum_to_the_volume() -> None:
    trades = [json.loads(e.payload) for e in _events("binance", BARS) if e.channel == "trade"]
    aaa = [(t["p"], t["q"], t["T"]) for t in trades if t["s"] == "AAA"]
    assert [p for p, _, _ in aaa] == ["100.00", "99.25", "101.50", "101.00",
                                      "101.00", "101.20", "98.00", "98.50"]  # fmt: skip
    assert sum(int(q) for _, q, _ in aaa[:4]) == 4000
    assert sum(int(q) for _, q, _ in aaa[4:]) == 1003
    assert aaa[3][2] == (T0 + DAY) // 1_000_000  # the close trades at the bar's close time
    assert [t for t in trades if t["s"] == "BBB" and t["T"] > (T0 + DAY) // 1_000_000] == []


def test_books_never_cross_and_every_trade_is_at_the_touch() -> None:
    books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
    for e in _events("coinbase", BARS):
        msg = json.loads(e.payload)
        if msg["type"] == "snapshot":
            books[msg["product_id"]] = {
                "buy": {Decimal(p): Decimal(s) for p, s in msg["bids"]},
                "sell": {Decimal(p): Decimal(s) for p, s in msg["asks"]},
            }
        elif msg["type"] == "l2update":
            for side, p, s in msg["changes"]:
                levels = books[msg["product_id"]][side]
                if Decimal(s) == 0:
                    levels.pop(Decimal(p), None)
                else:
                    levels[Decimal(p)] = Decimal(s)
        else:
            book = books[msg["product_id"]]
            assert Decimal(msg["price"]) in (max(book["buy"]), min(book["sell"]))
        for book in books.values():
            assert max(book["buy"]) < min(book["sell"])


def test_closing_events_are_contiguous_per_bar_time() -> None:
    events = _events("binance", BARS)
    by_bar: dict[int, list[int]] = {}
    for i, e in enumerate(events):
        if e.closes_bar:
            by_bar.setdefault(e.closes_bar, []).append(i)
    assert sorted(by_bar) == [T0 + DAY, T0 + 2 * DAY]
    for idx in by_bar.values():
        assert idx == list(range(idx[0], idx[-1] + 1))
        assert {events[i].symbol for i in idx} == {"AAA", "BBB"}


def test_expanding_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no bars"):
        expand_bars("binance", [])


@pytest.mark.asyncio
async def test_lockstep_waits_for_decision_done_after_each_bar() -> None:
    tape = expand_bars("binance", BARS)
    url = "/stream?streams=aaa@trade/bbb@trade"
    seen: list[dict] = []
    async with ExchangeServer(tape, lockstep=True) as ex, connect(ex.ws_url + url) as ws:
        for bar in (T0 + DAY, T0 + 2 * DAY):
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                seen.append(msg)
                if msg["stream"] == "rrr@bar_closed":
                    break
            assert msg["data"]["bar_close_ns"] == bar
            assert sorted(set(msg["data"]["symbols"])) == ["AAA", "BBB"]
            emitted = ex.events_emitted
            await ws.send(json.dumps({"type": "decision_done", "bar_close_ns": bar - 1}))
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            assert json.loads(await ws.recv())["id"] == 1
            assert ex.events_emitted == emitted  # an ack for an older bar does not release it
            await ws.send(json.dumps({"type": "decision_done", "bar_close_ns": bar}))
        await asyncio.wait_for(ex.finished(), 10)
    closes = [i for i, m in enumerate(seen) if m["stream"] == "rrr@bar_closed"]
    first = [m["data"]["T"] for m in seen[: closes[0]] if m["stream"].endswith("@trade")]
    second = [m["data"]["T"] for m in seen[closes[0] :] if m["stream"].endswith("@trade")]
    assert len(first) == 8 and max(first) == (T0 + DAY) // 1_000_000  # 4 AAA + 4 BBB
    assert len(second) == 4 and min(second) > (T0 + DAY) // 1_000_000  # BBB had no volume
