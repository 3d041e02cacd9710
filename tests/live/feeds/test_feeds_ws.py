"""The real adapters over a real websocket: the recorded sessions served by the replay exchange."""

from __future__ import annotations

import asyncio
import random

import pytest

from rrr_live.book.l2 import BookState
from rrr_live.clock import SimulatedClock
from rrr_live.domain.market import BookUpdate, BookUpdateKind, Received
from rrr_live.exchange.recorded import load_recording
from rrr_live.exchange.server import ExchangeServer
from rrr_live.feeds.binance import DEFAULT_STREAMS
from rrr_live.feeds.connection import Backoff, FeedSettings
from rrr_live.feeds.keeper import BookKeeper
from tests.live.feeds.fake_time import FakeTimer
from tests.live.feeds.harness import Run, is_snapshot, make_feed, server
from tests.live.feeds.reference import (
    BINANCE_WS,
    COINBASE_WS,
    Book,
    binance_books,
    binance_snapshots,
    coinbase_books,
    received,
)
from tests.live.feeds.test_binance_sync import decimal_book

pytestmark = pytest.mark.asyncio


def once() -> FeedSettings:
    """Settings for a run that ends when the exchange closes the connection."""
    return FeedSettings(max_reconnects=0, idle_timeout_s=30)


def assert_books_equal_reference(keeper: BookKeeper | None, reference: dict[str, Book]) -> None:
    assert keeper is not None
    for symbol, ref in reference.items():
        assert decimal_book(keeper, symbol) == ref, symbol


async def test_recorded_coinbase_session_gives_exact_books() -> None:
    async with server("coinbase") as ex:
        feed = await make_feed("coinbase", ex, once())
        run = Run(feed)
        await run.finish(ex)
    assert feed.rejected == {} and feed.connects == 1
    assert sum(is_snapshot(i) for i in run.items) == 10
    assert [i.seq for i in run.items] == list(range(1, len(run.items) + 1))
    assert_books_equal_reference(feed.keeper, coinbase_books(received(COINBASE_WS)))


async def test_recorded_binance_session_synchronises_exactly() -> None:
    async with server("binance", autostart=False) as ex:
        feed = await make_feed("binance", ex, once(), streams=(*DEFAULT_STREAMS, "kline_1m"))
        started = 0

        def start_after_snapshots(item: Received) -> None:
            nonlocal started
            started += is_snapshot(item)
            if started == 4:
                ex.start()  # the stream starts after the REST snapshots: diffs apply on them

        run = Run(feed, start_after_snapshots)
        await run.finish(ex)
        sent = ex.frames_sent  # market data, replies and control frames: all well formed
    diffs = [
        i
        for i in run.items
        if isinstance(i.event, BookUpdate) and i.event.kind is BookUpdateKind.DIFF
    ]
    assert feed.rejected == {} and feed.resyncs == {} and len(diffs) > 100
    assert feed.ignored["kline_1m"] == 2  # an unused stream: counted, not an error
    assert (
        feed.metrics.registry.get_sample_value(
            "rrr_feed_frames_ignored_total", {"venue": "binance", "stream": "kline_1m"}
        )
        == 2
    )
    # counted locally and reported in batches: complete once the connection has ended
    frames = {"venue": "binance"}
    assert feed.metrics.registry.get_sample_value("rrr_feed_frames_received_total", frames) == sent
    assert_books_equal_reference(
        feed.keeper, binance_books(received(BINANCE_WS), binance_snapshots())
    )


async def test_binance_snapshots_fetched_while_the_stream_runs_still_sync_exactly() -> None:
    async with server("binance") as ex:  # the stream starts at SUBSCRIBE, before any snapshot
        feed = await make_feed("binance", ex, once())
        run = Run(feed)
        await run.wait_for(lambda _: sum(map(is_snapshot, run.items)) == 4)
        await run.finish(ex)
    assert feed.rejected == {} and sum(map(is_snapshot, run.items)) == 4
    assert_books_equal_reference(
        feed.keeper, binance_books(received(BINANCE_WS), binance_snapshots())
    )


def snapshots_of(run: Run, symbol: str) -> int:
    return sum(is_snapshot(i) and getattr(i.event, "symbol", "") == symbol for i in run.items)


async def test_binance_gap_resyncs_from_rest_and_ends_exact() -> None:
    async with server("binance", autostart=False) as ex:
        feed = await make_feed("binance", ex, once())
        ex.skip(3, symbol="NKNUSDT")  # the first is covered by the snapshot, then a real gap
        started = 0

        def start_after_snapshots(item: Received) -> None:
            nonlocal started
            started += is_snapshot(item)
            if started == 4:
                ex.start()

        run = Run(feed, start_after_snapshots)
        await ex.finished()
        if snapshots_of(run, "NKNUSDT") < 2:  # the resync may still be fetching at the end
            await run.wait_for(lambda _: snapshots_of(run, "NKNUSDT") == 2)
        await run.finish(ex)
    assert feed.resyncs == {"gap": 1} and feed.rejected == {}
    assert snapshots_of(run, "NKNUSDT") == 2
    assert_books_equal_reference(
        feed.keeper, binance_books(received(BINANCE_WS), binance_snapshots())
    )


async def test_binance_duplicate_and_out_of_order_frames_resync_and_end_exact() -> None:
    depth = [line for line in received(BINANCE_WS) if "nknusdt@depth" in line]

    def nkn_snapshots(run: Run) -> int:
        return sum(
            is_snapshot(i) and getattr(i.event, "symbol", "") == "NKNUSDT" for i in run.items
        )

    async with server("binance", autostart=False) as ex:
        feed = await make_feed("binance", ex, once())
        ex.skip(2, symbol="NKNUSDT")  # depth[0] (covered by the snapshot) and depth[1] held back
        run = Run(feed, lambda i: ex.start() if is_snapshot(i) else None)
        await run.wait_for(lambda _: nkn_snapshots(run) == 2)  # depth[2] showed the gap
        ex.pause()
        await ex.send_raw(depth[0])  # a repeat of an old frame
        await ex.send_raw(depth[1])  # the held-back frame, late: out of order
        ex.resume()
        await run.finish(ex)
    assert feed.resyncs == {"gap": 1} and feed.rejected == {}
    assert feed.ignored["covered_update"] >= 2 and nkn_snapshots(run) == 2
    assert_books_equal_reference(
        feed.keeper, binance_books(received(BINANCE_WS), binance_snapshots())
    )


async def test_silent_feed_goes_stale_untradable_then_reconnects_with_a_fresh_snapshot() -> None:
    """Idle detection on the injected clock: nothing happens before the timeout, then it does."""
    timer = FakeTimer(SimulatedClock(1_000_000_000))
    waiting: list[str] = []  # why the other books were untradable at the first fresh snapshot
    fresh: list[str] = []  # each book's reason right after its fresh snapshot

    async def no_wait(delay: float) -> None:
        await asyncio.sleep(0)

    settings = FeedSettings(
        clock=timer.clock, sleeper=no_wait, watchdog_sleeper=timer.sleep, idle_timeout_s=5.0,
        max_reconnects=3,
    )  # fmt: skip
    async with server("coinbase") as ex:
        feed = await make_feed("coinbase", ex, settings)
        keeper = feed.keeper
        assert keeper is not None

        def watch(item: Received) -> None:
            if item.seq == 1 and feed.connects == 1:
                ex.pause()  # the venue goes silent after the first frame of the first session
            if feed.connects > 1 and is_snapshot(item):  # yielded after the keeper applied it
                symbol = item.event.symbol
                if not fresh:  # the others still wait for their fresh snapshot
                    waiting.extend(
                        b.untradable_reason() for s, b in keeper.books.items() if s != symbol
                    )
                fresh.append(keeper.books[symbol].untradable_reason())

        run = Run(feed, watch)
        first = await run.wait_for(lambda i: sum(map(is_snapshot, run.items)) == 10)
        await timer.sleeping()
        timer.advance(4.999)  # just inside the timeout: still connected, books tradable
        await timer.sleeping()
        assert feed.connects == 1 and feed.reconnect_causes == {}
        assert all(b.state is BookState.TRADABLE for b in keeper.books.values())
        timer.advance(0.001)
        await run.wait_for(lambda i: i.session != first.session and is_snapshot(i))
        assert feed.reconnect_causes == {"idle": 1}
        feed.settings.max_reconnects = 0  # the close after the tape ends stops the run
        ex.resume()
        await run.finish(ex)
    assert len(waiting) == 9 and len(fresh) == 10
    assert all(r.startswith(("feed silent", "disconnected")) for r in waiting)
    assert not any(r.startswith(("feed silent", "disconnected")) for r in fresh)
    assert_books_equal_reference(keeper, coinbase_books(received(COINBASE_WS)))


async def test_coinbase_trade_id_gap_resubscribes_and_ends_exact() -> None:
    tape = load_recording(COINBASE_WS)
    events = list(tape.events)
    matches = [i for i, e in enumerate(events) if e.channel == "matches" and e.symbol == "SKL-USD"]
    del events[matches[5]]  # the venue loses one trade: ids 1568267..72 then 1568274
    tape.events = events

    def skl_snapshots(run: Run) -> int:
        return sum(
            is_snapshot(i) and getattr(i.event, "symbol", "") == "SKL-USD" for i in run.items
        )

    async with ExchangeServer(tape) as ex:
        feed = await make_feed("coinbase", ex, once())
        run = Run(feed)
        await ex.finished()
        if skl_snapshots(run) < 2:  # the fresh snapshot answers the resubscribe
            await run.wait_for(lambda _: skl_snapshots(run) == 2)
        await run.finish(ex)
    assert feed.resyncs == {"trade_id_gap": 1} and feed.rejected == {}
    assert skl_snapshots(run) == 2
    assert_books_equal_reference(feed.keeper, coinbase_books(received(COINBASE_WS)))


async def test_handshake_refused_backs_off_capped_and_reconnects() -> None:
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0)

    backoff = Backoff(initial_s=0.5, max_s=2.0, factor=2.0, jitter=0.5, rng=random.Random(7))
    settings = FeedSettings(
        sleeper=record, watchdog_sleeper=asyncio.sleep, backoff=backoff, max_reconnects=10
    )
    async with server("coinbase") as ex:
        feed = await make_feed("coinbase", ex, settings)
        ex.refuse_handshakes(5, status=503)
        run = Run(feed)
        await run.wait_for(is_snapshot)
        run.task.cancel()
    assert feed.reconnect_causes == {"http_503": 5} and feed.connects == 1
    assert len(delays) == 5 and all(0 < d <= 2.0 for d in delays)
    bases = [0.5, 1.0, 2.0, 2.0, 2.0]
    assert all(b * 0.5 <= d <= b for d, b in zip(delays, bases, strict=True))


async def test_server_down_then_back_reconnects_on_the_same_port() -> None:
    async with server("coinbase") as probe:
        port = probe.port
        feed = await make_feed("coinbase", probe, FeedSettings())
    back = server("coinbase", port=port)
    calls: list[float] = []

    async def sleeper(delay: float) -> None:
        calls.append(delay)
        if len(calls) == 3:
            await back.__aenter__()  # the venue comes back during the third wait
        await asyncio.sleep(0)

    feed.settings = FeedSettings(sleeper=sleeper, watchdog_sleeper=asyncio.sleep, max_reconnects=10)
    try:
        run = Run(feed)
        await run.wait_for(is_snapshot)
        run.task.cancel()
    finally:
        await back.close()
    assert feed.reconnect_causes == {"unreachable": 3} and feed.connects == 1


_L2 = '{"type":"l2update","product_id":"%s","changes":[["%s",%s,%s]],"time":"%s"}'
_T = "2021-04-17T16:43:37Z"
BAD_FRAMES = [
    '{"type":"l2update",',
    _L2 % ("SKL-BTC", "buy", "NaN", '"1"', _T),
    _L2 % ("SKL-BTC", "buy", '"Infinity"', '"1"', _T),
    _L2 % ("SKL-BTC", "sell", '"0.00001306"', '"-5"', _T),
    _L2 % ("SKL-BTC", "buy", "1306", '"1"', _T),
    _L2 % ("DOGE-XYZ", "buy", '"1"', '"1"', _T),
]


async def test_malformed_frames_are_counted_by_reason_and_the_connection_lives_on() -> None:
    async with server("coinbase") as ex:
        feed = await make_feed("coinbase", ex, once())
        run = Run(feed, lambda i: ex.pause() if i.seq == 1 else None)
        await run.wait_for(is_snapshot)
        for frame in BAD_FRAMES:
            await ex.send_raw(frame)
        await ex.send_raw(b"\x00\x01binary")
        ex.resume()
        await run.finish(ex)
    assert feed.rejected == {
        "invalid_json": 2, "bad_number": 1, "negative": 1, "schema": 1, "unknown_symbol": 1,
        "binary_frame": 1,
    }  # fmt: skip
    assert feed.connects == 1 and feed.reconnect_causes == {"closed": 1}
    rejected = feed.metrics.registry.get_sample_value(
        "rrr_feed_frames_rejected_total", {"venue": "coinbase", "reason": "invalid_json"}
    )
    assert rejected == 2
    assert not any(getattr(i.event, "symbol", "") == "DOGE-XYZ" for i in run.items)
    assert_books_equal_reference(feed.keeper, coinbase_books(received(COINBASE_WS)))


async def test_oversized_frame_closes_1009_then_reconnects_and_resyncs() -> None:
    async with server("binance", autostart=False) as ex:
        settings = FeedSettings(max_size=64 * 1024, max_reconnects=1, idle_timeout_s=30)
        feed = await make_feed("binance", ex, settings)
        run = Run(feed)
        first = await run.wait_for(is_snapshot)
        await ex.send_oversized(64 * 1024 + 1)
        again = await run.wait_for(lambda i: i.session != first.session and is_snapshot(i))
        fresh = [i for i in run.items if i.session == again.session and is_snapshot(i)]
        if len(fresh) < 4:
            await run.wait_for(
                lambda _: sum(i.session == again.session and is_snapshot(i) for i in run.items) == 4
            )
        feed.settings.max_reconnects = 0
        ex.start()
        await run.finish(ex)
    assert again.seq == 1
    assert feed.rejected == {"oversized": 1} and feed.reconnect_causes["oversized"] == 1
    assert feed.connects == 2
    assert_books_equal_reference(
        feed.keeper, binance_books(received(BINANCE_WS), binance_snapshots())
    )
