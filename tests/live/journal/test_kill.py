"""PostgreSQL killed with SIGKILL mid-run and restarted: the journal loses and repeats nothing.

This test starts its OWN embedded server (never the session's), kills its postmaster while the
writer is busy, keeps the producer going through a ~2 s outage, restarts the server from a
subprocess (the embedded library cannot restart a dead server in-process) and checks that the
journal equals, as a multiset, every record that was put.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from rrr_live.domain.market import Received
from rrr_live.metrics import Metrics
from rrr_live.persistence.journal.pool import PoolConfig
from rrr_live.persistence.journal.status import JournalHealth
from rrr_live.persistence.journal.writer import JournalWriter, WriterConfig
from rrr_live.persistence.server import read_postmaster, start_embedded, stop_embedded
from tests.kit import services
from tests.live.journal.kit import StepClock, make_records, multiset, read_journal

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

OUTAGE_S = 2.0


async def _produce(writer: JournalWriter, records: list[Received], halfway: asyncio.Event) -> None:
    """Put ``records`` at a steady ~10k/s (a live feed), announcing the halfway mark."""
    for i in range(0, len(records), 200):
        for rec in records[i : i + 200]:
            await writer.put(rec)
        if i >= len(records) // 3:
            halfway.set()
        await asyncio.sleep(0.02)


async def test_sigkill_and_restart_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg" / "data"
    address = await asyncio.to_thread(start_embedded, pgdata)
    try:
        url = services.fresh_database(address, prefix="kill")
        dsn = url.replace("postgresql+psycopg2://", "postgresql://", 1)
        pool_cfg = PoolConfig(dsn, connect_timeout_s=1.0, acquire_timeout_s=1.0,
                              command_timeout_s=2.0)  # fmt: skip
        cfg = WriterConfig(batch_max=500, probe_max_s=0.2)
        sent = make_records(30_000, seed=21, session="coinbase-kill")
        writer = JournalWriter(pool_cfg, tmp_path / "spill", metrics=Metrics(CollectorRegistry()),
                               clock=StepClock(), config=cfg)  # fmt: skip
        await writer.start()
        halfway = asyncio.Event()
        producer = asyncio.create_task(_produce(writer, sent, halfway), name="producer")
        await halfway.wait()
        committed_before = writer.status().committed
        state = read_postmaster(pgdata.resolve())
        assert state is not None and state.running
        os.kill(state.pid, signal.SIGKILL)
        await asyncio.sleep(OUTAGE_S)  # the outage itself: the producer keeps going meanwhile
        during = writer.status()
        await asyncio.to_thread(start_embedded, pgdata)
        await producer
        assert await writer.close(timeout_s=30.0)
        after = writer.status()
        stored = await read_journal(dsn)
    finally:
        await asyncio.to_thread(stop_embedded, pgdata)
    assert committed_before > 0
    assert not during.database_up and during.spilled > 0
    assert during.health in (JournalHealth.SPILLING, JournalHealth.REDUCING)
    assert after.dropped == 0 and after.health is JournalHealth.OK
    assert after.replayed == after.spilled
    assert len(stored) == len(sent)
    assert multiset(stored) == multiset(sent)
