"""A flood of 1,000,000 frames at the sender's full rate: memory stays bounded.

The replay exchange runs in its own process and sends as fast as this one reads. Here the
Coinbase adapter, its book keeper and the journal writer (real PostgreSQL) take everything; the
journal's bounded queue (and, when the database falls behind, the spill on disk) is the only
buffer, so the process's resident memory must grow by less than 100 MB. The garbage collector
is tuned as a capture process tunes it (``gc_tuning``): the bound holds with that setting.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry

from rrr_live.clock import LiveClock
from rrr_live.feeds.coinbase import CoinbaseFeed
from rrr_live.feeds.connection import FeedSettings
from rrr_live.feeds.errors import FeedError
from rrr_live.feeds.gc_tuning import tuned_gc
from rrr_live.feeds.instruments import fetch_instruments
from rrr_live.feeds.keeper import BookKeeper
from rrr_live.metrics import Metrics
from rrr_live.persistence.journal.capture import CaptureStats, capture
from rrr_live.persistence.journal.pool import PoolConfig
from rrr_live.persistence.journal.writer import JournalWriter

pytestmark = [pytest.mark.pg, pytest.mark.asyncio, pytest.mark.slow]

FRAMES = 1_000_000
SYMBOLS = 20
LIMIT_BYTES = 100 * 2**20
REPO = Path(__file__).resolve().parents[3]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _sample_rss(proc: psutil.Process, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        try:
            async with asyncio.timeout(0.2):
                await stop.wait()
        except TimeoutError:
            pass


async def test_million_frame_flood_keeps_rss_growth_under_100mb(
    journal_dsn: str, tmp_path: Path
) -> None:
    children_cpu0 = _children_cpu_s()
    sender = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.live.journal.flood_sender", "--frames", str(FRAMES),
        "--symbols", str(SYMBOLS), stdout=asyncio.subprocess.PIPE, start_new_session=True,
        cwd=REPO,
    )  # fmt: skip
    try:
        assert sender.stdout is not None
        async with asyncio.timeout(60):
            ws_url, http_url = (await sender.stdout.readline()).decode().split()
        instruments = await fetch_instruments("coinbase", http_url)
        feed = CoinbaseFeed(ws_url, instruments, FeedSettings(max_reconnects=0),
                            keeper=BookKeeper(instruments))  # fmt: skip
        writer = JournalWriter(PoolConfig(journal_dsn), tmp_path / "spill",
                               metrics=Metrics(CollectorRegistry()), clock=LiveClock())  # fmt: skip
        with tuned_gc():  # collects and freezes start-up first
            cpu0 = time.process_time()
            me = psutil.Process(os.getpid())
            baseline = me.memory_info().rss
            peak = [baseline]
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_rss(me, peak, stop))
            stats = CaptureStats()
            async with writer:
                with pytest.raises(FeedError):  # the exchange closes when its tape is done
                    async with asyncio.timeout(400):
                        await capture(feed, writer, stats=stats)
                await writer.flush()
                status = writer.status()
                stop.set()
                await sampler
                await writer.close(timeout_s=5.0)  # what the database has not taken stays spilled
            cpu_s = time.process_time() - cpu0
        assert await sender.wait() == 0
        sender_cpu_s = _children_cpu_s() - children_cpu0
    finally:
        if sender.returncode is None:
            sender.kill()
            await sender.wait()
    growth = peak[0] - baseline
    print(f"flood: {stats.events:,} events, RSS {baseline / 2**20:.0f} MB -> peak "
          f"{peak[0] / 2**20:.0f} MB (+{growth / 2**20:.1f} MB); committed {status.committed:,}, "
          f"spilled {status.spilled:,}; CPU us/frame: capture {cpu_s / FRAMES * 1e6:.1f}, "
          f"sender {sender_cpu_s / FRAMES * 1e6:.1f} (load {os.getloadavg()[0]:.1f})")  # fmt: skip
    assert stats.events == FRAMES + SYMBOLS  # every frame plus the initial snapshots
    assert feed.rejected == {} and feed.connects == 1
    assert status.dropped == 0 and status.received == stats.events
    assert status.committed - status.replayed + status.spilled == stats.events
    assert growth < LIMIT_BYTES, f"RSS grew by {growth / 2**20:.1f} MB"
