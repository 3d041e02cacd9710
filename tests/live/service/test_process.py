"""``python -m rrr_live`` as a process against a real replay exchange and paper venue: SIGTERM
under load → exit 0, every frame received journaled, open orders canceled and recorded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from decimal import Decimal

import asyncpg
import pytest

from rrr_live.clock import LiveClock
from rrr_live.config import get_settings
from rrr_live.exchange import ExchangeServer
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.model import Decision, OrderIntent, client_order_id
from rrr_live.venue.rest import Credentials, RestConfig, SignedRest
from rrr_live.venue.store import OrderStore
from tests.live.paper.kit import KEYS
from tests.live.service.runner_kit import paper, random_bars, runner_env, tape_of

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]


@pytest.fixture
def env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch):
    """The runner's database, home, keys and registered champion."""
    yield runner_env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch)
    get_settings.cache_clear()


async def _resting_order(ex: ExchangeServer, dsn: str) -> str:
    """A far-from-market limit order under the runner's prefix (it never fills)."""
    rest = SignedRest(RestConfig(ex.http_url), Credentials(KEYS.api_key, KEYS.secret), LiveClock())
    try:
        await rest.sync_time()
        async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:
            broker = BinanceBroker(rest, OrderStore(pool, "t1", "binance", LiveClock()),
                                   {"AAA": ("AAA", "USDT")})  # fmt: skip
            d = Decision("pre", "fs", 0xFFFF)
            intent = OrderIntent(client_order_id("t1", d), "t1", "AAA", "BUY", "LIMIT",
                                 Decimal("1"), Decimal("50.00"), d)  # fmt: skip
            assert (await broker.submit(intent)).state == "NEW"
            return intent.client_id
    finally:
        await rest.close()


def _orders_seen(ex: ExchangeServer, n: int) -> asyncio.Event:
    """An event set once the paper account has taken ``n`` orders (the runner is trading)."""
    account, seen = ex.paper.account, asyncio.Event()
    place = account.place

    def counting(new):
        order = place(new)
        if len(account.orders) >= n:
            seen.set()
        return order

    account.place = counting
    return seen


async def test_sigterm_under_load_exits_0_journals_every_frame_and_cancels(env, tmp_path):
    bars = random_bars(400, seed=5)
    async with ExchangeServer(tape_of(bars), speed=40.0, send_time=True, paper=paper()) as ex:
        resting = await _resting_order(ex, env.dsn)
        trading = _orders_seen(ex, 5)
        path = env.toml(ex.http_url, tmp_path / "runner.toml")
        path.write_text(path.read_text().replace("lockstep = true", "lockstep = false"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rrr_live", "--config", str(path),
            env=dict(os.environ), stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            # under load: the market is flowing and the runner has ordered
            await asyncio.wait_for(trading.wait(), 90)
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert KEYS.secret not in err.decode()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exit"] == "sigterm"
    assert summary["frames"] > 0 and summary["journal"]["frames"] == summary["frames"]
    assert [c["client_id"] for c in summary["canceled"]] == [resting]
    assert summary["canceled"][0]["status"] == "CANCELED"
    conn = await asyncpg.connect(env.dsn)
    try:
        journaled = await conn.fetchval("SELECT count(*) FROM journal_trades")
        events = await conn.fetch(
            "SELECT kind FROM order_events WHERE client_id = $1 ORDER BY id", resting
        )
        state = await conn.fetchval("SELECT state FROM orders WHERE client_id = $1", resting)
    finally:
        await conn.close()
    assert journaled == summary["frames"]  # every frame received before SIGTERM is journaled
    assert state == "CANCELED" and events[-1]["kind"] == "CANCELED"
