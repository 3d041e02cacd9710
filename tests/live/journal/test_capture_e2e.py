"""End to end: replay exchange -> Coinbase adapter -> book keeper -> journal, PostgreSQL killed.

The replay exchange serves a seeded synthetic Coinbase universe paced at 1x event time, so the
feed keeps flowing while this test's OWN embedded PostgreSQL is SIGKILLed, stays down ~2 s and
is restarted from a subprocess. Afterwards the journal holds exactly what the feed yielded (no
loss, no duplicates), what it yielded is exactly what the exchange sent (decoded here with json
and Decimal, independently of rrr_live's parsers), and every book equals the exchange's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from rrr_live.clock import LiveClock
from rrr_live.domain.events import TradeTick
from rrr_live.domain.market import BookUpdate, Received
from rrr_live.exchange.server import ExchangeServer
from rrr_live.exchange.synthetic import synthetic_tape
from rrr_live.exchange.tape import BOOK_ONLY, MATCHES, Tape
from rrr_live.feeds.coinbase import CoinbaseFeed
from rrr_live.feeds.connection import FeedSettings
from rrr_live.feeds.errors import FeedError
from rrr_live.feeds.instruments import fetch_instruments
from rrr_live.feeds.keeper import BookKeeper
from rrr_live.metrics import Metrics
from rrr_live.persistence.journal.capture import CaptureStats, capture
from rrr_live.persistence.journal.pool import PoolConfig
from rrr_live.persistence.journal.status import JournalHealth
from rrr_live.persistence.journal.writer import JournalWriter, WriterConfig
from rrr_live.persistence.server import read_postmaster, start_embedded, stop_embedded
from tests.kit import services
from tests.live.journal.kit import multiset, read_journal

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

TICK, LOT = Decimal("0.01"), Decimal("0.001")  # the synthetic universe's increments
Content = tuple[object, ...]


def _ticks(levels: tuple[tuple[str, str], ...]) -> tuple[tuple[int, int], ...]:
    return tuple((int(Decimal(p) / TICK), int(Decimal(s) / LOT)) for p, s in levels)


def sent_content(tape: Tape) -> Counter[Content]:
    """What the exchange sends for ``tape``, decoded with json and Decimal only."""
    out: Counter[Content] = Counter()
    for ev in tape.events:
        if ev.channel == BOOK_ONLY:
            continue
        if ev.channel == MATCHES:
            m = json.loads(ev.payload)
            taker = -1 if m["side"] == "buy" else 1  # Coinbase names the maker's side
            price, size = _ticks(((m["price"], m["size"]),))[0]
            out["trade", m["product_id"], price, size, taker, m["trade_id"]] += 1
        else:
            assert ev.bids is not None and ev.asks is not None
            kind = "snapshot" if ev.snapshot else "diff"
            out["book", ev.symbol, kind, _ticks(ev.bids), _ticks(ev.asks)] += 1
    return out


def received_content(records: list[Received]) -> Counter[Content]:
    """The same projection of what the feed yielded (or the journal stored)."""
    out: Counter[Content] = Counter()
    for rec in records:
        ev = rec.event
        if isinstance(ev, TradeTick):
            out[
                "trade", ev.symbol, ev.price_ticks, ev.size_lots, int(ev.aggressor), ev.trade_id
            ] += 1
        else:
            assert isinstance(ev, BookUpdate)
            out["book", ev.symbol, ev.kind.value, ev.bids, ev.asks] += 1
    return out


async def _tee(feed: CoinbaseFeed, seen: list[Received]) -> AsyncIterator[Received]:
    async for rec in feed:
        seen.append(rec)
        yield rec


async def test_exchange_to_journal_survives_a_postgres_sigkill(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg" / "data"
    address = await asyncio.to_thread(start_embedded, pgdata)
    try:
        dsn = services.fresh_database(address, "e2e").replace("+psycopg2", "", 1)
        tape = synthetic_tape("coinbase", 40, 24_000, rate=8_000.0, seed=5)
        expected = sent_content(tape)
        total = sum(expected.values())
        pool_cfg = PoolConfig(dsn, connect_timeout_s=1.0, acquire_timeout_s=1.0,
                              command_timeout_s=2.0)  # fmt: skip
        writer = JournalWriter(pool_cfg, tmp_path / "spill", metrics=Metrics(CollectorRegistry()),
                               clock=LiveClock(), config=WriterConfig(probe_max_s=0.2))  # fmt: skip
        seen: list[Received] = []
        stats = CaptureStats()
        quarter = asyncio.Event()

        def until(_rec: Received) -> bool:
            if stats.events >= total // 4:
                quarter.set()
            return False  # run until the exchange closes the connection

        async with ExchangeServer(tape, speed=1.0) as ex, writer:
            instruments = await fetch_instruments("coinbase", ex.http_url)
            keeper = BookKeeper(instruments)
            feed = CoinbaseFeed(ex.ws_url, instruments, FeedSettings(max_reconnects=0),
                                keeper=keeper)  # fmt: skip
            source = _tee(feed, seen)
            run = asyncio.create_task(capture(source, writer, until=until, stats=stats))
            await quarter.wait()
            state = read_postmaster(pgdata.resolve())
            assert state is not None and state.running
            os.kill(state.pid, signal.SIGKILL)
            await asyncio.sleep(2.0)  # the outage; the feed keeps flowing meanwhile
            during = writer.status()
            await asyncio.to_thread(start_embedded, pgdata)
            async with asyncio.timeout(60):
                await ex.finished()
                ex.disconnect(1000)
                with pytest.raises(FeedError, match="gave up after 0 reconnects"):
                    await run  # max_reconnects=0: the clean close ends the feed
            books = {s: ex.book(s) for s in instruments}
            assert await writer.close(timeout_s=60.0)
        stored = await read_journal(dsn)
    finally:
        await asyncio.to_thread(stop_embedded, pgdata)
    assert stats.events == total
    assert not during.database_up and during.spilled > 0  # the kill happened mid-run
    assert writer.status().health is JournalHealth.OK and writer.status().dropped == 0
    assert feed.rejected == {} and feed.connects == 1
    assert multiset(stored) == multiset(seen)  # no loss, no duplicates
    assert received_content(seen) == expected  # exactly what the exchange sent
    for symbol, (bids, asks) in books.items():
        ours = keeper.books[symbol].top(10_000)
        assert ours == (list(_ticks(tuple(bids))), list(_ticks(tuple(asks)))), symbol
