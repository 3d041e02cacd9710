"""A database that hangs, stalls or refuses never holds up the producer; the spill takes over.

The blackhole is a real TCP listener on 127.0.0.1 that accepts connections and never answers
(what a hung server or a dropped network path looks like); the slow database is the real one
with a table locked by another session and a short ``statement_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from rrr_live.domain.market import Received
from rrr_live.metrics import Metrics
from rrr_live.persistence.journal.pool import JournalPool, PoolConfig, is_transient
from rrr_live.persistence.journal.status import JournalHealth
from rrr_live.persistence.journal.writer import JournalWriter, WriterConfig
from rrr_live.risk.state import TradingState
from tests.kit.services import free_port
from tests.live.journal.kit import StepClock, make_records, multiset, read_journal

pytestmark = [pytest.mark.asyncio]


@pytest_asyncio.fixture
async def blackhole() -> AsyncIterator[str]:
    """A DSN whose server accepts TCP connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/journal"
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def _produce(writer: JournalWriter, records: list[Received]) -> float:
    """Put every record; return the longest single ``put`` wait in seconds."""
    longest = 0.0
    for rec in records:
        t0 = time.monotonic()
        await writer.put(rec)
        longest = max(longest, time.monotonic() - t0)
    return longest


def _metrics() -> Metrics:
    return Metrics(CollectorRegistry())


async def test_blackholed_database_spills_without_holding_the_producer(
    blackhole: str, journal_dsn: str, tmp_path: Path
) -> None:
    hang = PoolConfig(blackhole, connect_timeout_s=3.0, acquire_timeout_s=3.0)
    cfg = WriterConfig(queue_max=2_000, batch_max=500, spill_after_s=0.2, write_timeout_s=3.0)
    sent = make_records(12_000, seed=11)
    writer = JournalWriter(hang, tmp_path / "spill", metrics=(m := _metrics()),
                           clock=StepClock(), config=cfg)  # fmt: skip
    await writer.start()
    t0 = time.monotonic()
    longest = await _produce(writer, sent)
    produced_in = time.monotonic() - t0
    await writer.flush()  # the batch the database stage holds spills when its 3 s timeout ends
    status = writer.status()
    # Every record is on disk although the database never answered once.
    assert status.spilled == len(sent) and status.committed == status.dropped == 0
    assert status.health is JournalHealth.SPILLING
    assert status.trading_state is TradingState.ACTIVE
    assert m.registry.get_sample_value("rrr_journal_records_spilled_total") == len(sent)
    assert (m.registry.get_sample_value("rrr_journal_spill_bytes") or 0) > 0
    # The producer waited for the spill, never for the 3 s database timeout.
    assert longest < 1.5 and produced_in < 2.5, (longest, produced_in)
    assert await writer.close(timeout_s=0.5) is False  # nothing reached the database
    # The next writer on the same spill directory replays it into the real database.
    async with JournalWriter(PoolConfig(journal_dsn), tmp_path / "spill", metrics=_metrics(),
                             clock=StepClock()) as replayer:  # fmt: skip
        await replayer.drain()
        assert replayer.status().replayed == len(sent)
    assert multiset(await read_journal(journal_dsn)) == multiset(sent)
    assert list((tmp_path / "spill").iterdir()) == []


async def test_slow_database_times_out_spills_and_catches_up(
    journal_dsn: str, tmp_path: Path
) -> None:
    sent = make_records(6_000, seed=12)
    pool_cfg = PoolConfig(journal_dsn, statement_timeout_ms=150, command_timeout_s=2.0)
    cfg = WriterConfig(batch_max=400, spill_after_s=0.1, probe_max_s=0.05)
    async with JournalWriter(pool_cfg, tmp_path / "spill", metrics=_metrics(),
                             clock=StepClock(), config=cfg) as writer:  # fmt: skip
        await writer.put(sent[0])
        await writer.drain()  # partitions exist; the lock below then stalls only the inserts
        locker = await asyncpg.connect(journal_dsn)
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE journal_book_updates, journal_trades, journal_tops")
        t0 = time.monotonic()
        longest = await _produce(writer, sent[1:])
        await writer.flush()
        produced_in = time.monotonic() - t0
        assert writer.status().spilled > 0 and writer.status().committed == 1
        await tx.rollback()
        await locker.close()
        await writer.drain()
        status = writer.status()
    assert longest < 1.5 and produced_in < 6.0, (longest, produced_in)
    assert status.health is JournalHealth.OK and status.dropped == 0
    assert multiset(await read_journal(journal_dsn)) == multiset(sent)


async def test_past_the_hard_cap_drops_are_counted_logged_and_halt(
    blackhole: str, journal_dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = WriterConfig(batch_max=200, spill_after_s=0.05, soft_cap_bytes=40_000,
                       hard_cap_bytes=120_000)  # fmt: skip
    pool_cfg = PoolConfig(blackhole, connect_timeout_s=1.0, acquire_timeout_s=1.0)
    sent = make_records(5_000, seed=13)
    metrics = _metrics()
    with caplog.at_level(logging.WARNING, logger="rrr_live.persistence.journal"):
        writer = JournalWriter(pool_cfg, tmp_path / "spill", metrics=metrics,
                               clock=StepClock(), config=cfg)  # fmt: skip
        await writer.start()
        await _produce(writer, sent)
        await writer.flush()
        status = writer.status()
        await writer.close(timeout_s=0.2)
    assert status.dropped > 0 and status.spilled > 0
    assert status.dropped + status.spilled == len(sent)
    assert status.health is JournalHealth.LOST_DATA
    assert status.trading_state is TradingState.HALTED
    assert metrics.registry.get_sample_value("rrr_journal_records_dropped_total") == status.dropped
    assert metrics.registry.get_sample_value("rrr_journal_lost_data") == 1
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert critical and "LOST DATA" in critical[0].getMessage()
    assert any("soft cap" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert status.spill_bytes <= cfg.hard_cap_bytes
    # What was spilled is intact and is exactly the part that was not dropped.
    async with JournalWriter(PoolConfig(journal_dsn), tmp_path / "spill", metrics=_metrics(),
                             clock=StepClock()) as replayer:  # fmt: skip
        await replayer.drain()
    stored = multiset(await read_journal(journal_dsn))
    assert sum(stored.values()) == status.spilled
    assert not stored - multiset(sent)


async def test_pool_retries_with_injected_backoff_then_gives_up() -> None:
    slept: list[float] = []

    async def sleeper(s: float) -> None:
        slept.append(s)

    port = free_port()  # nothing listens: connection refused at once
    cfg = PoolConfig(
        f"postgresql://postgres@127.0.0.1:{port}/x", retries=4, backoff_initial_s=0.1,
        backoff_max_s=0.3,
    )  # fmt: skip
    pool = JournalPool(cfg, sleeper=sleeper)
    await pool.open()
    try:
        with pytest.raises(OSError):
            await pool.fetch("SELECT 1")
    finally:
        await pool.close()
    assert len(slept) == 4 and all(0 <= s <= 0.3 for s in slept)


async def test_statement_timeout_is_a_transient_error(journal_dsn: str) -> None:
    pool = JournalPool(PoolConfig(journal_dsn, statement_timeout_ms=100, retries=0))
    await pool.open()
    try:
        with pytest.raises(asyncpg.exceptions.QueryCanceledError) as err:
            await pool.execute("SELECT pg_sleep(2)")
        assert is_transient(err.value)
        assert await pool.fetch("SELECT 41 + 1 AS x") == [(42,)]  # the pool is still usable
    finally:
        await pool.close()
