"""The assembled runner end to end: config → feed → batches → trader → paper venue → summary."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import asyncpg
import pytest

from rrr_live.config import get_settings
from rrr_live.exchange import ExchangeServer
from rrr_live.service.assemble import run_live
from rrr_live.service.config import load_config
from tests.live.service.runner_kit import SYMBOLS, paper, random_bars, runner_env, tape_of

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

N_BARS = 40


@pytest.fixture
def env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch):
    """The runner's database, home, keys and registered champion."""
    yield runner_env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch)
    get_settings.cache_clear()


async def _stop_when_finished(ex: ExchangeServer) -> None:
    await ex.finished()
    os.kill(os.getpid(), signal.SIGTERM)


async def test_runner_trades_a_lockstep_replay_and_reports(env, tmp_path):
    bars = random_bars(N_BARS)
    async with ExchangeServer(tape_of(bars), lockstep=True, send_time=True, paper=paper()) as ex:
        cfg = load_config(env.toml(ex.http_url, tmp_path / "runner.toml"))
        stopper = asyncio.create_task(_stop_when_finished(ex))
        assert await asyncio.wait_for(run_live(cfg), 120) == 0
        await stopper
        venue_orders = len(ex.paper.account.orders)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["runner"] == "t1" and summary["exit"] == "sigterm"
    # one batch per bar close: every symbol's bar of one second decided together
    assert summary["batches"] == N_BARS
    assert summary["decisions"] > 0
    orders = summary["orders"]
    assert orders and {o["status"] for o in orders} == {"FILLED"}
    assert {o["symbol"] for o in orders} <= set(SYMBOLS) and len(orders) == venue_orders
    assert summary["fills"] == len(orders)
    assert {o["version"] for o in orders} == {"1"}
    assert summary["served"][0]["alias"] == "champion"
    lat = summary["latency_ms"]
    assert lat["tick_to_decision"]["n"] == summary["decisions"]
    assert 0 < lat["tick_to_decision"]["p50"] <= lat["tick_to_decision"]["p99"]
    assert lat["venue_ack"]["n"] == len(orders)
    assert summary["journal"]["frames"] == summary["frames"] > 0
    assert summary["risk_state_path"][0][1] == "ACTIVE"
    conn = await asyncpg.connect(env.dsn)
    try:
        journaled = await conn.fetchval("SELECT count(*) FROM journal_trades")
        batch_rows = await conn.fetchval("SELECT count(*) FROM runner_batches")
        kinds = {r["kind"] for r in await conn.fetch("SELECT kind FROM runner_events")}
        risk = await conn.fetchval("SELECT state FROM runner_risk WHERE runner = 't1'")
    finally:
        await conn.close()
    assert journaled == summary["frames"]
    assert batch_rows == N_BARS
    assert {"lifecycle", "risk_state"} <= kinds
    assert risk == "ACTIVE"
