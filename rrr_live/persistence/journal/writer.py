"""Batched journal writer: bounded queue -> batches -> staged COPY -> INSERT ... ON CONFLICT.

Three stages in one event loop:

* ``put`` appends to a bounded buffer and waits only when it is full (backpressure).
* The batcher takes up to ``batch_max`` records (lingering briefly for more), turns them into
  rows, and hands the batch to the database stage. When the database is known to be down, or
  the database stage has not taken a ready batch within ``spill_after_s`` (a slow or blackholed
  server), the batch goes to the fsync'd spill buffer instead: the producer is never held up
  by the database for longer than that.
* The database stage COPYs each batch into per-connection temp staging tables and moves it into
  the journal with ``INSERT ... ON CONFLICT DO NOTHING``, all in one transaction, so a batch
  written twice (retry, spill replay after a crash) is stored once. After a failure it probes
  the server with capped jittered backoff and, once it answers, replays the spill oldest first.

Past the spill's hard cap records are dropped: counted, logged CRITICAL and reported as
``LOST_DATA`` (a risk-engine input), never silently.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from rrr_live.clock import Clock
from rrr_live.domain.market import Received
from rrr_live.metrics import Metrics
from rrr_live.persistence.journal import sql
from rrr_live.persistence.journal.config import WriterConfig
from rrr_live.persistence.journal.pool import JournalPool, PoolConfig, backoff_delay, is_transient
from rrr_live.persistence.journal.rows import RECV_NS_COLUMN, TABLES, Row, to_row
from rrr_live.persistence.journal.spill import SpillBuffer, SpillChunk
from rrr_live.persistence.journal.status import JournalHealth, JournalStatus

log = logging.getLogger(__name__)

Sleeper = Callable[[float], Awaitable[None]]
_NS = 1_000_000_000


@dataclass
class _Batch:
    rows: dict[str, list[Row]]
    count: int
    oldest_ns: int
    chunk: SpillChunk | None = None  # set when the batch came from the spill


def _make_batch(records: list[Received]) -> _Batch:
    rows: dict[str, list[Row]] = {}
    for rec in records:
        table, row = to_row(rec)
        rows.setdefault(table, []).append(row)
    return _Batch(rows, len(records), min(r.recv_ns for r in records))


class JournalWriter:
    """Writes :class:`Received` events to the journal tables; see the module docstring.

    Args:
        pool_config: the database (the writer builds its pool with the staging tables).
        spill_dir: directory of the spill segments (those of a previous run are replayed).
        metrics: where rows, lag, queue depth, spill bytes and drops are counted.
        clock: injected time (lag, retention schedule).
        config: tuning.
        sleeper: awaited between database probes.
        rng: jitter source.
    """

    def __init__(
        self,
        pool_config: PoolConfig,
        spill_dir: Path,
        *,
        metrics: Metrics,
        clock: Clock,
        config: WriterConfig | None = None,
        sleeper: Sleeper = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = cfg = config if config is not None else WriterConfig()
        if not 0 < cfg.soft_cap_bytes <= cfg.hard_cap_bytes:
            raise ValueError("WriterConfig needs 0 < soft_cap_bytes <= hard_cap_bytes")
        self.pool = JournalPool(pool_config, init=sql.create_staging, sleeper=sleeper, rng=rng)
        self.spill = SpillBuffer(
            spill_dir, hard_cap_bytes=cfg.hard_cap_bytes, segment_bytes=cfg.segment_bytes
        )
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleeper
        self._rng = rng if rng is not None else random.Random()
        self._buf: deque[Received] = deque()
        self._ready: deque[_Batch] = deque()
        self._space = asyncio.Event()
        self._data = asyncio.Event()
        self._full = asyncio.Event()
        self._work = asyncio.Event()
        self._taken = asyncio.Event()
        self._progress = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._db_up = True
        self._stalled = False
        self._spill_turn = False
        self._inflight = 0
        self._handing = 0
        self._write_s = 0.0  # moving average of a successful batch write (monotonic seconds)
        self._closing = False
        self._spill_lock = asyncio.Lock()
        self._known_days: set[int] = set()
        self._next_retention_ns = 0
        self._over_soft = False
        self._lost = False
        self._received = self._committed = self._spilled = 0
        self._replayed = self._dropped = 0
        self._down_oldest_ns: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the pool and start the batcher and database tasks."""
        await self.pool.open()
        if not self.spill.empty:
            self._work.set()
        self._update_spill_gauge()
        self._tasks = [
            asyncio.create_task(self._batch_loop(), name="journal-batcher"),
            asyncio.create_task(self._db_loop(), name="journal-db"),
        ]

    async def __aenter__(self) -> JournalWriter:
        """Start the writer."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close the writer (drain what the database takes, the rest stays spilled)."""
        await self.close()

    async def close(self, timeout_s: float = 30.0) -> bool:
        """Stop intake, write everything out, stop; idempotent.

        Waits up to ``timeout_s`` for the database to take every record, including the spill.
        What it has not taken by then is left in the spill on disk (durable, replayed by the
        next writer on the same directory). Returns True when everything reached the database.
        """
        if self._closing and not self._tasks:
            return self.spill.empty
        self._closing = True
        self._data.set()
        self._full.set()
        drained = True
        try:
            async with asyncio.timeout(timeout_s):
                await self.drain()
        except TimeoutError:
            drained = False
            self._db_up = False  # the batcher now spills what is left instead of waiting
            self._taken.set()
        if self._tasks:
            batcher, db_task = self._tasks
            await batcher  # returns once the buffer is empty
            db_task.cancel()
            await asyncio.gather(db_task, return_exceptions=True)
            self._tasks = []
        while self._ready:
            batch = self._ready.popleft()
            if batch.chunk is None:
                await self._spill_batch(batch)
        await self.pool.close()
        self.spill.close()
        if not drained:
            log.warning(
                "journal closed with %d bytes still spilled in %s (replayed on the next start)",
                self.spill.pending_bytes, self.spill.directory,
            )  # fmt: skip
        return drained and self.spill.empty

    # -- intake ------------------------------------------------------------------------------------

    async def put(self, rec: Received) -> None:
        """Queue one record; waits while the buffer is full (backpressure).

        Raises:
            RuntimeError: after :meth:`close` was called.
        """
        while not self.offer(rec):
            self._space.clear()
            await self._space.wait()

    def offer(self, rec: Received) -> bool:
        """Queue one record if there is room (no coroutine); False, queuing nothing, when full.

        Raises:
            RuntimeError: after :meth:`close` was called.
        """
        if self._closing:
            raise RuntimeError("the journal writer is closed")
        n = len(self._buf)
        if n >= self.config.queue_max:
            return False
        self._buf.append(rec)
        self._received += 1
        if n == 0:
            self._data.set()
        if n + 1 >= self.config.batch_max:
            self._full.set()
        return True

    async def flush(self) -> None:
        """Wait until every record put so far is durable: committed, spilled or counted dropped."""
        target = self._received
        async with self._progress:
            await self._progress.wait_for(
                lambda: self._committed_fresh + self._spilled + self._dropped >= target
            )

    async def drain(self) -> None:
        """Wait until the database holds every record put so far and the spill is empty."""
        self._work.set()
        async with self._progress:
            await self._progress.wait_for(self._idle)

    def _idle(self) -> bool:
        busy = self._buf or self._ready or self._inflight or self._handing
        return not busy and self.spill.empty

    @property
    def _committed_fresh(self) -> int:
        return self._committed - self._replayed

    def status(self) -> JournalStatus:
        """The current health and counters (the risk engine's input)."""
        spill_bytes = self.spill.pending_bytes
        if self._lost:
            health = JournalHealth.LOST_DATA
        elif spill_bytes > self.config.soft_cap_bytes:
            health = JournalHealth.REDUCING
        elif spill_bytes or not self._db_up:
            health = JournalHealth.SPILLING
        else:
            health = JournalHealth.OK
        return JournalStatus(
            health, self._db_up, len(self._buf) + sum(b.count for b in self._ready),
            self._received, self._committed, self._spilled, self._replayed, self._dropped,
            spill_bytes,
        )  # fmt: skip

    # -- batcher -----------------------------------------------------------------------------------

    async def _batch_loop(self) -> None:
        cfg = self.config
        while True:
            if not self._buf:
                self._data.clear()
                await self._notify()
                if self._closing:
                    return
                await self._data.wait()
                continue
            if len(self._buf) < cfg.batch_max and not self._closing:
                self._full.clear()
                try:
                    async with asyncio.timeout(cfg.linger_s):
                        await self._full.wait()
                except TimeoutError:
                    pass
            n = min(len(self._buf), cfg.batch_max)
            popleft = self._buf.popleft
            records = [popleft() for _ in range(n)]
            self._space.set()
            self._metrics.queue_depth.labels(queue="journal").set(len(self._buf))
            self._handing += 1  # neither queued nor ready nor spilled until dispatched
            try:
                await self._dispatch(_make_batch(records))
            finally:
                self._handing -= 1

    async def _dispatch(self, batch: _Batch) -> None:
        cfg = self.config
        if self._db_up and not self._stalled and len(self._ready) >= cfg.ready_max:
            try:
                # A database that is merely slow gets backpressure; one stuck on a write
                # (no batch taken for a few typical write times) gets the spill.
                async with asyncio.timeout(cfg.spill_after_s + 4 * self._write_s):
                    while self._db_up and len(self._ready) >= cfg.ready_max:
                        self._taken.clear()
                        await self._taken.wait()
            except TimeoutError:
                self._stalled = True  # spill at once until the database stage moves again
        if self._db_up and len(self._ready) < cfg.ready_max:
            self._ready.append(batch)
            self._work.set()
        else:
            await self._spill_batch(batch)

    # -- spill -------------------------------------------------------------------------------------

    async def _spill_batch(self, batch: _Batch) -> None:
        async with self._spill_lock:
            if await asyncio.to_thread(self.spill.append, batch.rows):
                self._spilled += batch.count
                self._metrics.journal_spilled.inc(batch.count)
            else:
                self._drop(batch.count)
            if self._down_oldest_ns is None:
                self._down_oldest_ns = batch.oldest_ns
        self._check_soft_cap()
        self._update_spill_gauge()
        self._work.set()
        await self._notify()

    def _drop(self, n: int) -> None:
        self._dropped += n
        self._lost = True
        self._metrics.journal_dropped.inc(n)
        self._metrics.journal_lost_data.set(1)
        log.critical(
            "journal LOST DATA: spill buffer full (hard cap %d bytes); dropped %d records"
            " (%d dropped in total)",
            self.config.hard_cap_bytes, n, self._dropped,
        )  # fmt: skip

    def _check_soft_cap(self) -> None:
        over = self.spill.pending_bytes > self.config.soft_cap_bytes
        if over and not self._over_soft:
            log.warning(
                "journal spill passed its soft cap (%d bytes): health REDUCING",
                self.config.soft_cap_bytes,
            )  # fmt: skip
        self._over_soft = over

    def _update_spill_gauge(self) -> None:
        self._metrics.spill_bytes.set(self.spill.pending_bytes)

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    # -- database stage ----------------------------------------------------------------------------

    async def _db_loop(self) -> None:
        await self._warm_up()
        await self._apply_retention()
        while True:
            batch = await self._next_batch()
            self._inflight += 1
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                if batch.chunk is None:
                    self._ready.appendleft(batch)  # close() spills it
                raise
            except Exception as e:  # every failure spills; the error is logged
                await self._on_failure(batch, e)
                continue
            finally:
                self._inflight -= 1
            self._on_written(batch)
            await self._apply_retention()
            await self._notify()

    async def _next_batch(self) -> _Batch:
        while True:
            spill_waiting = not self.spill.empty
            # Alternate fresh batches with spill replay so neither starves the other.
            if self._ready and not (spill_waiting and self._spill_turn):
                self._spill_turn = True
                batch = self._ready.popleft()
                self._stalled = False
                self._taken.set()
                return batch
            if spill_waiting:
                self._spill_turn = False
                chunk = await asyncio.to_thread(self.spill.read, self.config.batch_max)
                if chunk is not None:
                    oldest = min(r[RECV_NS_COLUMN] for rs in chunk.rows.values() for r in rs)
                    return _Batch(chunk.rows, chunk.count, oldest, chunk)
            self._work.clear()
            await self._notify()
            await self._work.wait()

    async def _write(self, batch: _Batch) -> None:
        t0 = time.monotonic()
        async with asyncio.timeout(self.config.write_timeout_s):
            async with self.pool.connection() as con:
                await self._ensure_partitions(con, batch)
                inserted = await sql.copy_batch(con, batch.rows)
        self._write_s = 0.8 * self._write_s + 0.2 * (time.monotonic() - t0)
        for table, n in inserted.items():
            self._metrics.journal_rows.labels(table=table).inc(n)

    def _on_written(self, batch: _Batch) -> None:
        self._committed += batch.count
        if batch.chunk is not None:
            self.spill.ack(batch.chunk)
            self._replayed += batch.count
            self._update_spill_gauge()
            self._check_soft_cap()
        if self.spill.empty:
            self._down_oldest_ns = None
        lag_ns = self._clock.now_ns() - batch.oldest_ns
        self._metrics.journal_lag.set(max(lag_ns, 0) / _NS)

    async def _on_failure(self, batch: _Batch, err: Exception) -> None:
        was_up, self._db_up = self._db_up, False
        if was_up:
            log.log(
                logging.WARNING if is_transient(err) else logging.ERROR,
                "journal: database write failed (%s: %s); spilling to %s",
                type(err).__name__, err, self.spill.directory,
                exc_info=not is_transient(err),
            )  # fmt: skip
        if batch.chunk is None:
            await self._spill_batch(batch)
        await self._go_down()

    async def _go_down(self) -> None:
        """Spill what waits for the database, then probe until it answers again."""
        self._db_up = False
        while self._ready:
            await self._spill_batch(self._ready.popleft())
        self._taken.set()
        await self._wait_for_database()

    async def _wait_for_database(self) -> None:
        cfg = self.config
        attempt = 0
        while True:
            if self._down_oldest_ns is not None:
                lag_ns = self._clock.now_ns() - self._down_oldest_ns
                self._metrics.journal_lag.set(max(lag_ns, 0) / _NS)
            await self._sleep(
                backoff_delay(attempt, cfg.probe_initial_s, cfg.probe_max_s, self._rng)
            )
            attempt += 1
            try:
                await self.pool.run(sql.probe, retries=0)
            except Exception as e:  # still down; keep probing
                log.debug("journal: database still unavailable (%s)", type(e).__name__)
                continue
            log.warning("journal: database is back after %d probe(s); replaying the spill", attempt)
            self._db_up = True
            return

    async def _warm_up(self) -> None:
        """Open a connection (staging tables) and today's partitions before the first batch."""
        today = self._clock.now_ns() // sql.DAY_NS

        async def prepare(con: asyncpg.Connection) -> None:
            await sql.ensure_partitions(con, today, today + 1)

        try:
            await self.pool.run(prepare, retries=0)
        except Exception as e:  # known down: batches spill at once until a probe succeeds
            log.warning(
                "journal: database unavailable at start (%s: %s); spilling to %s",
                type(e).__name__, e, self.spill.directory,
            )  # fmt: skip
            await self._go_down()
            return
        self._known_days.update((today, today + 1))

    async def _ensure_partitions(self, con: asyncpg.Connection, batch: _Batch) -> None:
        days = {row[RECV_NS_COLUMN] // sql.DAY_NS for rows in batch.rows.values() for row in rows}
        missing = days - self._known_days
        if missing:
            await sql.ensure_partitions(con, min(missing), max(missing) + 1)
            self._known_days.update(range(min(missing), max(missing) + 2))

    async def _apply_retention(self) -> None:
        days = self.config.retention_days
        now = self._clock.now_ns()
        if days is None or now < self._next_retention_ns:
            return
        self._next_retention_ns = now + int(self.config.retention_check_s * _NS)
        keep_from = now // sql.DAY_NS - days
        try:
            dropped = await self.pool.run(
                lambda con: sql.drop_partitions(con, keep_from), retries=0
            )
        except Exception as e:  # retention retries at the next check
            log.warning("journal retention failed (%s: %s)", type(e).__name__, e)
            self._next_retention_ns = now
            return
        self._known_days = {d for d in self._known_days if d >= keep_from}
        if dropped:
            log.info("journal retention (%d days): dropped %s", days, ", ".join(dropped))


__all__ = ["TABLES", "JournalWriter", "WriterConfig"]
