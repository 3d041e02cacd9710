"""The journal writer against the session PostgreSQL: round trip, idempotence, partitions."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from rrr_live.metrics import Metrics
from rrr_live.persistence.journal.pool import PoolConfig
from rrr_live.persistence.journal.status import JournalHealth
from rrr_live.persistence.journal.writer import JournalWriter, WriterConfig
from tests.live.journal.kit import DAY_NS, StepClock, make_records, multiset, read_journal

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]


def _writer(dsn: str, tmp_path: Path, metrics: Metrics, **cfg: object) -> JournalWriter:
    return JournalWriter(
        PoolConfig(dsn), tmp_path / "spill", metrics=metrics, clock=StepClock(),
        config=WriterConfig(**cfg),  # type: ignore[arg-type]
    )  # fmt: skip


async def test_round_trip_stores_every_event_exactly(journal_dsn: str, tmp_path: Path) -> None:
    metrics = Metrics(CollectorRegistry())
    sent = make_records(3_000, step_ns=60_000_000_000)  # spans three days -> three partitions
    async with _writer(journal_dsn, tmp_path, metrics, batch_max=700) as writer:
        for rec in sent:
            await writer.put(rec)
        await writer.drain()
        status = writer.status()
    assert multiset(await read_journal(journal_dsn)) == multiset(sent)
    assert status.health is JournalHealth.OK and status.committed == len(sent)
    assert status.spilled == status.dropped == 0
    stored = sum(
        metrics.registry.get_sample_value("rrr_journal_rows_written_total", {"table": t}) or 0
        for t in ("journal_book_updates", "journal_trades", "journal_tops")
    )
    assert stored == len(sent)
    con = await asyncpg.connect(journal_dsn)
    try:
        parts = await con.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'journal_trades'"
        )
    finally:
        await con.close()
    days = {r.recv_ns // DAY_NS for r in sent}
    assert len(parts) >= len(days)


async def test_duplicates_are_stored_once(journal_dsn: str, tmp_path: Path) -> None:
    metrics = Metrics(CollectorRegistry())
    sent = make_records(1_000, seed=2)
    async with _writer(journal_dsn, tmp_path, metrics, batch_max=300) as writer:
        for rec in sent + sent[::-1] + sent[:10]:
            await writer.put(rec)
        await writer.drain()
    assert multiset(await read_journal(journal_dsn)) == multiset(sent)
    inserted = sum(
        metrics.registry.get_sample_value("rrr_journal_rows_written_total", {"table": t}) or 0
        for t in ("journal_book_updates", "journal_trades", "journal_tops")
    )
    assert inserted == len(sent)


class _Clock:
    def __init__(self, now_ns: int) -> None:
        self.now = now_ns

    def now_ns(self) -> int:
        return self.now


async def _partition_days(dsn: str) -> list[str]:
    con = await asyncpg.connect(dsn)
    try:
        rows = await con.fetch(
            "SELECT right(c.relname, 8) AS day FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE p.relname = 'journal_trades' ORDER BY 1"
        )
    finally:
        await con.close()
    return [r["day"] for r in rows]


async def test_retention_drops_whole_old_days_on_the_injected_clock(
    journal_dsn: str, tmp_path: Path
) -> None:
    hour = 3_600 * 10**9
    sent = make_records(96, step_ns=hour)  # four days from 2024-10-04 01:00 UTC
    async with _writer(journal_dsn, tmp_path, Metrics(CollectorRegistry())) as writer:
        for rec in sent:
            await writer.put(rec)
        await writer.drain()
    assert await _partition_days(journal_dsn) == [
        "20241004", "20241005", "20241006", "20241007", "20241008", "20241009",  # a day ahead
    ]  # fmt: skip
    clock = _Clock(sent[-1].recv_ns)  # 2024-10-08 00:00: keep 1 full day before today
    cfg = WriterConfig(retention_days=1, retention_check_s=3_600)
    writer = JournalWriter(
        PoolConfig(journal_dsn), tmp_path / "spill2", metrics=Metrics(CollectorRegistry()),
        clock=clock, config=cfg,
    )  # fmt: skip
    async with writer:
        await writer.put(sent[-1])
        await writer.drain()
        assert await _partition_days(journal_dsn) == ["20241007", "20241008", "20241009"]
        clock.now += 30 * 60 * 10**9  # within the check interval: nothing runs
        await writer.put(sent[-1])
        await writer.drain()
        assert await _partition_days(journal_dsn) == ["20241007", "20241008", "20241009"]
        clock.now += DAY_NS
        await writer.put(sent[-1])
        await writer.drain()
        assert await _partition_days(journal_dsn) == ["20241008", "20241009"]
    stored = await read_journal(journal_dsn)
    keep_from = sent[-1].recv_ns // DAY_NS * DAY_NS
    assert multiset(stored) == multiset([r for r in sent if r.recv_ns >= keep_from])


async def test_offer_refuses_a_full_buffer_and_put_waits_for_room(
    journal_dsn: str, tmp_path: Path
) -> None:
    sent = make_records(11)
    writer = _writer(journal_dsn, tmp_path, Metrics(CollectorRegistry()), queue_max=10,
                     batch_max=5)  # fmt: skip
    assert all(writer.offer(rec) for rec in sent[:10])  # not started: nothing takes them yet
    assert not writer.offer(sent[10]) and writer.status().received == 10
    async with writer:  # the batcher frees room, then the waiting put gets in
        await writer.put(sent[10])
        await writer.drain()
    assert multiset(await read_journal(journal_dsn)) == multiset(sent)
    with pytest.raises(RuntimeError, match="closed"):
        writer.offer(sent[0])
