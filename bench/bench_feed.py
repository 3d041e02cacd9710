"""Live market data end to end: replay exchange -> adapter -> book keeper -> journal.

Sections (all by default, or pick with ``--only``):

* ``copy``: journal writer rows/s next to raw binary COPY into the same tables, same rows, same
  run (a throw-away embedded PostgreSQL).
* ``e2e``: for 10 / 100 / 1000 symbols the replay exchange runs in its own process (a seeded
  synthetic Coinbase universe, pre-encoded, sent as fast as the client reads) and serves the same
  tape twice: to a raw websockets receive loop that only counts frames (the ceiling), then to the
  real Coinbase adapter -> book keeper -> journal writer. Prints frames/s of both, the sender's
  rate and the CPU seconds of the sender, this process and PostgreSQL; then checks every book
  against the exchange's final books and that every event is in the journal.
* ``outage``: the e2e path at 1000 symbols, the sender paced at ``--outage-rate`` frames/s,
  PostgreSQL SIGKILLed for ``--outage-s`` seconds (default 20) mid-run and restarted; prints the
  spill and the catch-up, and checks the journal still holds every event exactly once.

    python bench/bench_feed.py [--only copy,e2e,outage] [--frames 100000] [--outage-s 20]
    python bench/bench_feed.py --serve SYMBOLS FRAMES RUNS RATE SPEED   # the sender process
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rrr_live.clock import LiveClock
from rrr_live.domain.events import TradeTick
from rrr_live.domain.market import BookUpdate, BookUpdateKind, Received
from rrr_live.domain.orders import Side
from rrr_live.exchange.server import ExchangeServer
from rrr_live.exchange.synthetic import synthetic_tape
from rrr_live.feeds.coinbase import DEFAULT_CHANNELS, CoinbaseFeed
from rrr_live.feeds.connection import FeedSettings
from rrr_live.feeds.errors import FeedError
from rrr_live.feeds.gc_tuning import tuned_gc
from rrr_live.feeds.instruments import fetch_instruments
from rrr_live.feeds.keeper import BookKeeper
from rrr_live.metrics import Metrics
from rrr_live.persistence.journal.capture import CaptureStats, capture
from rrr_live.persistence.journal.pool import PoolConfig
from rrr_live.persistence.journal.rows import BOOK, TABLES, TRADE, to_row
from rrr_live.persistence.journal.sql import DAY_NS, ensure_partitions
from rrr_live.persistence.journal.writer import JournalWriter, WriterConfig
from rrr_live.persistence.migrate import migrate
from rrr_live.persistence.server import (
    ensure_databases,
    read_postmaster,
    start_embedded,
    stop_embedded,
)

BATCH = 5_000
FLOOR = 25_000.0  # frames/s end to end at 1000 symbols (issue 14)


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
        for rec in via:  # as the capture loop feeds it
            if not writer.offer(rec):
                await writer.put(rec)
        await writer.drain()
        journal_s = time.perf_counter() - t0
    raw_rate, journal_rate = n / raw_s, n / journal_s
    print(f"raw COPY (no staging, no conflict check): {n:,} rows in {raw_s:.2f} s = "
          f"{raw_rate:,.0f} rows/s")  # fmt: skip
    print(f"journal writer (queue, rows, COPY in one transaction; staged INSERT ON CONFLICT only for a batch already partly stored): {n:,} rows in "
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

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends die with it)."""
        state = read_postmaster(self.pgdata.resolve())
        assert state is not None and state.running
        os.kill(state.pid, signal.SIGKILL)

    def cpu_s(self) -> float:
        """CPU seconds of the server and its live backends so far."""
        state = read_postmaster(self.pgdata.resolve())
        if state is None or not state.running:
            return 0.0
        main = psutil.Process(state.pid)
        total = 0.0
        for proc in [main, *main.children()]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total


# ------------------------------------------------------------------------------ sender process


def serve_main(symbols: int, frames: int, runs: int, rate: float, speed: float | None) -> None:
    """The sender: encode one synthetic tape, serve it ``runs`` times, report after each."""
    t0 = time.perf_counter()
    tape = synthetic_tape("coinbase", symbols, frames, rate=rate, seed=7)
    print(json.dumps({"encoded_s": time.perf_counter() - t0}), flush=True)
    for _ in range(runs):
        asyncio.run(_serve_once(tape, speed))


async def _serve_once(tape: Any, speed: float | None) -> None:
    async with ExchangeServer(tape, speed=speed, hold_without_clients=True) as ex:
        cpu0, t0 = time.process_time(), time.perf_counter()
        print(json.dumps({"ws": ex.ws_url, "http": ex.http_url}), flush=True)
        await ex.finished()  # the timeline holds until the client subscribes
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        books = {s: ex.book(s) for s in tape.symbols}
        ex.disconnect(1000)
        # Books go through a file: a large line would fill the pipe and stall the close.
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(books, fh)
        print(json.dumps({"frames": ex.frames_sent, "elapsed_s": elapsed, "cpu_s": cpu,
                          "books_file": fh.name}), flush=True)  # fmt: skip


class Sender:
    """The sender process, read line by line."""

    def __init__(self, symbols: int, frames: int, runs: int, rate: float, speed: str) -> None:
        argv = [sys.executable, __file__, "--serve", str(symbols), str(frames), str(runs),
                str(rate), speed]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    def read(self) -> dict[str, Any]:
        """The next JSON line (with the books file read and removed)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sender exited early")
        msg: dict[str, Any] = json.loads(line)
        if "books_file" in msg:
            path = Path(msg.pop("books_file"))
            msg["books"] = json.loads(path.read_text())
            path.unlink()
        return msg

    def close(self) -> None:
        """Wait for (or stop) the sender."""
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------ receivers


async def ceiling(ws_url: str, products: list[str]) -> tuple[int, float, float]:
    """A raw websockets loop with the adapter's subscription: count frames until closed.

    Returns the frames, the seconds from the first to the last, and the CPU seconds spent.
    """
    msg = {"type": "subscribe", "product_ids": products,
           "channels": ["level2_batch", *DEFAULT_CHANNELS]}  # fmt: skip
    n, first, last = 0, 0.0, 0.0
    cpu0 = time.process_time()
    async with connect(ws_url, max_size=2**20, compression=None) as ws:
        await ws.send(json.dumps(msg))
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                last = time.perf_counter()
                if n == 0:
                    first = last
                n += 1
    return n, last - first, time.process_time() - cpu0


async def adapter_to_journal(
    urls: dict[str, str],
    dsn: str,
    spill_dir: Path,
    db: Database,
    outage: tuple[float, float] | None,
) -> dict[str, Any]:
    """The real path; with ``outage=(at_s, for_s)`` PostgreSQL is killed and restarted."""
    instruments = await fetch_instruments("coinbase", urls["http"])
    keeper = BookKeeper(instruments)
    metrics = Metrics(CollectorRegistry())
    feed = CoinbaseFeed(urls["ws"], instruments, FeedSettings(max_reconnects=0), metrics,
                        keeper=keeper)  # fmt: skip
    pool = PoolConfig(dsn, connect_timeout_s=2.0, acquire_timeout_s=2.0, command_timeout_s=5.0)
    writer = JournalWriter(pool, spill_dir, metrics=metrics, clock=LiveClock(),
                           config=WriterConfig(probe_max_s=0.5))  # fmt: skip
    stats = CaptureStats()
    out: dict[str, Any] = {}
    with tuned_gc():  # as a capture process does once start-up is done
        async with writer:
            cpu0, pg0 = time.process_time(), db.cpu_s()
            marks = [0.0, 0.0]  # first and last event

            def mark(_rec: Received) -> bool:
                marks[1] = time.perf_counter()
                marks[0] = marks[0] or marks[1]
                return False

            run = asyncio.create_task(_capture(feed, writer, stats, mark))
            if outage is not None:
                await asyncio.sleep(outage[0])
                db.kill()
                out["killed_at_events"] = stats.events
                await asyncio.sleep(outage[1])
                out["during"] = writer.status()
                await asyncio.to_thread(db.start)
                out["restarted_at_s"] = time.perf_counter() - marks[0]
            await run
            out["recv_s"] = marks[1] - marks[0]
            out["after_recv"] = writer.status()
            await writer.drain()
            out["journaled_s"] = time.perf_counter() - marks[0]
            out["cpu_s"] = time.process_time() - cpu0
            out["pg_cpu_s"] = db.cpu_s() - pg0 if outage is None else float("nan")
            out["status"] = writer.status()
    out["events"] = stats.events
    out["sessions"] = stats.by_session
    out["keeper"] = keeper
    out["instruments"] = instruments
    out["rejected"] = dict(feed.rejected)
    return out


async def _capture(
    feed: CoinbaseFeed, writer: JournalWriter, stats: CaptureStats, mark: Any
) -> None:
    # max_reconnects=0: the exchange's close at the end of the tape ends the feed
    with contextlib.suppress(FeedError):
        await capture(feed, writer, stats=stats, until=mark)


def books_exact(result: dict[str, Any], books: dict[str, Any]) -> bool:
    """Whether every keeper book equals the exchange's final book, level by level."""
    keeper, instruments = result["keeper"], result["instruments"]
    for symbol, (bids, asks) in books.items():
        inst = instruments[symbol]
        ours = keeper.books[symbol].top(10_000)
        theirs = [[(Decimal(p), Decimal(q)) for p, q in side] for side in (bids, asks)]
        mine = [[(inst.ticks_to_decimal(p), inst.lot_size * q) for p, q in side] for side in ours]
        if mine != theirs:
            return False
    return True


async def journal_count(dsn: str, sessions: list[str]) -> int:
    """Rows in the journal tables for ``sessions``."""
    con = await asyncpg.connect(dsn)
    try:
        total = 0
        for table in TABLES:
            total += await con.fetchval(
                f"SELECT count(*) FROM {table} WHERE session = ANY($1::text[])", sessions
            )
        return int(total)
    finally:
        await con.close()


def run_e2e(symbols: int, frames: int, dsn: str, tmp: Path, db: Database) -> dict[str, float]:
    """One symbol count: ceiling, then the real path, against the same pre-encoded tape."""
    sender = Sender(symbols, frames, 2, 100_000.0, "max")
    try:
        encoded = sender.read()["encoded_s"]
        urls = sender.read()
        products = [f"SYN{i:04d}-USD" for i in range(symbols)]
        n_raw, raw_s, raw_cpu = asyncio.run(ceiling(urls["ws"], products))
        sent_raw = sender.read()
        urls = sender.read()
        res = asyncio.run(adapter_to_journal(urls, dsn, tmp / f"spill-{symbols}", db, None))
        sent = sender.read()
    finally:
        sender.close()
    stored = asyncio.run(journal_count(dsn, list(res["sessions"])))
    exact = books_exact(res, sent["books"])
    raw_rate, e2e_rate = n_raw / raw_s, res["events"] / res["recv_s"]
    st = res["status"]
    print(f"{symbols:>5} symbols | ceiling (raw websockets): {raw_rate:>8,.0f} frames/s "
          f"(sender {sent_raw['frames'] / sent_raw['elapsed_s']:,.0f}/s, sender CPU "
          f"{sent_raw['cpu_s']:.1f} s, receiver CPU {raw_cpu / n_raw * 1e6:.1f} us/frame) | "
          f"adapter->book->journal: {e2e_rate:>8,.0f} frames/s "
          f"= {e2e_rate / raw_rate:.0%} of ceiling (sender CPU {sent['cpu_s']:.1f} s, "
          f"this process CPU {res['cpu_s']:.1f} s, PostgreSQL CPU {res['pg_cpu_s']:.1f} s) | "
          f"received {res['recv_s']:.2f} s, all journaled {res['journaled_s']:.2f} s "
          f"({res['events'] / res['journaled_s']:,.0f} rows/s), spilled {st.spilled:,} | "
          f"CPU us/frame: this process {res['cpu_s'] / res['events'] * 1e6:.1f}, sender "
          f"{sent['cpu_s'] / sent['frames'] * 1e6:.1f}, PostgreSQL "
          f"{res['pg_cpu_s'] / res['events'] * 1e6:.1f} (load {os.getloadavg()[0]:.1f}) | "
          f"books exact: {exact} | journal rows {stored:,} == events {res['events']:,}: "
          f"{stored == res['events']} | rejected {res['rejected'] or 0} | tape encoded in "
          f"{encoded:.1f} s")  # fmt: skip
    return {"symbols": symbols, "ceiling": raw_rate, "e2e": e2e_rate, "exact": exact,
            "all_journaled": stored == res["events"]}  # fmt: skip


def run_outage(frames: int, rate: float, outage_s: float, dsn: str, tmp: Path,
               db: Database) -> None:  # fmt: skip
    """1000 symbols paced at ``rate``; PostgreSQL down for ``outage_s`` from 20 % of the run."""
    sender = Sender(1000, frames, 1, rate, "1")
    try:
        sender.read()
        urls = sender.read()
        at = 0.2 * frames / rate
        res = asyncio.run(adapter_to_journal(urls, dsn, tmp / "spill-outage", db, (at, outage_s)))
        sent = sender.read()
    finally:
        sender.close()
    stored = asyncio.run(journal_count(dsn, list(res["sessions"])))
    during, after, st = res["during"], res["after_recv"], res["status"]
    print(f"outage: 1000 symbols at {rate:,.0f} frames/s, PostgreSQL SIGKILLed after "
          f"{res['killed_at_events']:,} events, down {outage_s:.0f} s (spill then: "
          f"{during.spilled:,} rows, {during.spill_bytes / 2**20:.1f} MB, health "
          f"{during.health.value}); restarted at {res['restarted_at_s']:.1f} s; feed done at "
          f"{res['recv_s']:.1f} s ({res['events'] / res['recv_s']:,.0f} frames/s, spill "
          f"{after.spill_bytes / 2**20:.1f} MB left); all journaled at {res['journaled_s']:.1f} s; "
          f"spilled {st.spilled:,}, replayed {st.replayed:,}, dropped {st.dropped} | books exact: "
          f"{books_exact(res, sent['books'])} | journal rows {stored:,} == events "
          f"{res['events']:,}: {stored == res['events']}")  # fmt: skip


def main() -> None:
    """Run the selected sections and print their numbers."""
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        sym, frames, runs, rate, speed = sys.argv[2:7]
        serve_main(int(sym), int(frames), int(runs), float(rate),
                   None if speed == "max" else float(speed))  # fmt: skip
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="copy,e2e,outage")
    ap.add_argument("--rows", type=int, default=200_000, help="rows of the COPY section")
    ap.add_argument("--frames", type=int, default=100_000, help="frames per e2e run")
    ap.add_argument("--symbols", default="10,100,1000")
    ap.add_argument("--outage-s", type=float, default=20.0)
    ap.add_argument("--outage-rate", type=float, default=10_000.0)
    ap.add_argument("--outage-frames", type=int, default=300_000)
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} (shared machine: "
          "figures are order-of-magnitude)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-feed-") as tmp:
        db = Database(Path(tmp))
        dsn = db.start()
        try:
            if "copy" in only:
                asyncio.run(bench_copy(dsn, args.rows, Path(tmp) / "spill-copy"))
            if "e2e" in only:
                for n in map(int, args.symbols.split(",")):
                    r = run_e2e(n, args.frames, dsn, Path(tmp), db)
                    if n >= 1000:
                        ok = r["e2e"] >= FLOOR and r["exact"] and r["all_journaled"]
                        print(f"floor ({FLOOR:,.0f} frames/s at {n} symbols, exact books, every "
                              f"frame journaled): {'met' if ok else 'NOT met'}")  # fmt: skip
            if "outage" in only:
                run_outage(args.outage_frames, args.outage_rate, args.outage_s, dsn,
                           Path(tmp), db)  # fmt: skip
        finally:
            db.stop()


if __name__ == "__main__":
    main()
