"""The assembled runner end to end: config → feed → batches → trader → paper venue → summary."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from decimal import Decimal

import asyncpg
import httpx
import pytest

from rrr_live.config import get_settings
from rrr_live.exchange import ExchangeServer
from rrr_live.inference.lifecycle import ModelLifecycle
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.service.assemble import run_live
from rrr_live.service.config import load_config
from rrr_live.service.journal_sink import RunnerJournal, replay_fills
from tests.kit.services import free_port
from tests.live.service.runner_kit import (
    BALANCES,
    SYMBOLS,
    T0,
    S,
    paper,
    promote_new,
    random_bars,
    runner_env,
    tape_of,
)

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

N_BARS = 40


@pytest.fixture
def env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch):
    """The runner's database, home, keys and registered champion."""
    yield runner_env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch, shadow=True)
    get_settings.cache_clear()


async def _stop_when_finished(ex: ExchangeServer, metrics_port: int) -> str:
    await ex.finished()
    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    os.kill(os.getpid(), signal.SIGTERM)
    return scraped


async def test_runner_trades_a_lockstep_replay_and_reports(env, tmp_path):
    bars = random_bars(N_BARS)
    async with ExchangeServer(tape_of(bars), lockstep=True, send_time=True, paper=paper()) as ex:
        path = env.toml(ex.http_url, tmp_path / "runner.toml")
        port = free_port()
        path.write_text(path.read_text() + f"[control]\nmetrics_port = {port}\n")
        stopper = asyncio.create_task(_stop_when_finished(ex, port))
        assert await asyncio.wait_for(run_live(load_config(path)), 120) == 0
        scraped = await stopper
        venue_orders = len(ex.paper.account.orders)
        balances = ex.paper.account.balances
        held = {s: balances[s].free + balances[s].locked - BALANCES[s] for s in SYMBOLS}
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
    assert {(s["alias"], s["version"]) for s in summary["served"]} == {
        ("champion", "1"),
        ("shadow", "2"),
    }
    # the shadow is scored on the same batches (never traded): both versions have live scores
    shadow = summary["shadow"]
    assert shadow["version"] == "2" and shadow["n"] > 0
    assert set(summary["live_ic"]) == {"1", "2"}
    assert summary["live_ic"]["1"]["n"] == shadow["n"]
    assert -1 <= shadow["ic"] <= 1 and 0 <= shadow["hit_rate"] <= 1
    lat = summary["latency_ms"]
    assert lat["tick_to_decision"]["n"] == summary["decisions"]
    assert 0 < lat["tick_to_decision"]["p50"] <= lat["tick_to_decision"]["p99"]
    assert lat["venue_ack"]["n"] == len(orders)
    # the same stage latencies are exported to Prometheus while the runner runs
    tick = 'rrr_stage_latency_seconds_count{stage="tick_to_decision"}'
    assert f"{tick} {float(summary['decisions'])}" in scraped
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
    async with asyncpg.create_pool(env.dsn, min_size=1, max_size=1) as pool:
        journal = RunnerJournal(pool, "t1", "check")
        journaled_positions = await journal.filled_positions()
        fills = await journal.filled_orders()
    # what a restart resumes from is what the venue holds for us
    assert journaled_positions == {s: q for s, q in held.items() if q}
    # ... with the average costs the same fills give (the trader's own Portfolio.apply_fills)
    lot = Decimal("0.001")
    restored = Portfolio(SYMBOLS, 1e6, [float(lot)] * len(SYMBOLS))
    replay_fills(restored, [lot] * len(SYMBOLS), fills)
    assert restored.cash == 1e6  # the venue's balance already paid for them
    for i, symbol in enumerate(SYMBOLS):
        assert Decimal(int(restored.position_lots[i])) * lot == held[symbol]
        prices = [float(f.avg_price) for f in fills if f.symbol == symbol and f.avg_price]
        if held[symbol]:
            assert min(prices) <= restored.avg_price[i] <= max(prices)
    assert restored.fees_paid == pytest.approx(float(sum(f.fee for f in fills)))
    assert {"lifecycle", "risk_state"} <= kinds
    assert risk == "ACTIVE"


def _orders_seen(ex: ExchangeServer, n: int) -> asyncio.Event:
    """An event set once the paper account has taken ``n`` orders."""
    account, seen = ex.paper.account, asyncio.Event()
    place = account.place

    def counting(new):
        order = place(new)
        if len(account.orders) >= n:
            seen.set()
        return order

    account.place = counting
    return seen


def _control_toml(env, ex, tmp_path, port):
    path = env.toml(ex.http_url, tmp_path / "runner.toml")
    text = path.read_text().replace("max_drawdown = 0.5", 'max_drawdown = 0.5\non_halt = "freeze"')
    path.write_text(text + f"[control]\nport = {port}\n")
    return load_config(path)


async def test_operator_halt_is_journaled_and_survives_a_restart(env, tmp_path, monkeypatch):
    monkeypatch.setenv("RRR_CONTROL_TOKEN", "tok-123")
    auth = {"Authorization": "Bearer tok-123"}
    port = free_port()
    async with ExchangeServer(tape_of(random_bars(N_BARS)), lockstep=True, paper=paper()) as ex:
        trading = _orders_seen(ex, 3)
        run = asyncio.create_task(run_live(_control_toml(env, ex, tmp_path, port)))
        await asyncio.wait_for(trading.wait(), 60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.post("/halt", headers=auth)).json() == {"state": "halted"}
            at_halt = (await http.get("/status", headers=auth)).json()["batches"]
        await ex.finished()
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(run, 60) == 0
    first = json.loads((tmp_path / "summary.json").read_text())
    assert first["risk_state_path"][-1][1] == "HALTED"
    # no order of a batch decided after the halt was answered (the one in flight may finish)
    assert max(int(o["client_id"].split("-")[1], 16) for o in first["orders"]) <= at_halt + 1
    conn = await asyncpg.connect(env.dsn)
    try:
        by = await conn.fetch(
            "SELECT payload->>'state' AS state, payload->>'by' AS by FROM runner_events"
            " WHERE kind = 'risk_state' ORDER BY id"
        )
        assert [(r["state"], r["by"]) for r in by][-1] == (
            "HALTED",
            "operator halt via control API",
        )
    finally:
        await conn.close()

    # restart on later bars: the HALT was restored from the journal, nothing trades
    later = random_bars(15, seed=4, start_ns=T0 + N_BARS * S)
    async with ExchangeServer(tape_of(later), lockstep=True, paper=paper()) as ex:
        run = asyncio.create_task(run_live(_control_toml(env, ex, tmp_path, free_port())))
        await ex.finished()
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(run, 60) == 0
        assert len(ex.paper.account.orders) == 0
    second = json.loads((tmp_path / "summary.json").read_text())
    assert second["batches"] == 15 and second["orders"] == []
    assert {state for _, state in second["risk_state_path"]} == {"HALTED"}
    # warm-up from the first run's journal: the restarted runner decided from its first batch
    assert second["decisions"] == 15


def _staged(version: str) -> asyncio.Event:
    """An event set once the runner's lifecycle has verified and staged ``version``."""
    staged = asyncio.Event()
    emit = ModelLifecycle._emit

    def spy(self, event):
        emit(self, event)
        if event.kind == "staged" and event.version == version:
            staged.set()

    ModelLifecycle._emit = spy  # restored by the monkeypatch fixture of the caller
    return staged


async def test_hot_swap_under_load_switches_between_batches(env, tmp_path, monkeypatch):
    monkeypatch.setattr(ModelLifecycle, "_emit", ModelLifecycle._emit)
    staged = _staged("3")
    async with ExchangeServer(tape_of(random_bars(N_BARS)), lockstep=True, paper=paper()) as ex:
        path = env.toml(ex.http_url, tmp_path / "runner.toml")
        path.write_text(path.read_text().replace("poll_interval_s = 3600", "poll_interval_s = 0.2"))
        trading = _orders_seen(ex, 3)
        run = asyncio.create_task(run_live(load_config(path)))
        await asyncio.wait_for(trading.wait(), 60)
        ex.pause()  # the market holds while the new version is promoted and verified
        v = await asyncio.to_thread(promote_new, env.registry_url, tmp_path, env.model_name, 7)
        assert v == "3"
        await asyncio.wait_for(staged.wait(), 30)
        ex.resume()
        await ex.finished()
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(run, 60) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["batches"] == N_BARS  # no batch skipped across the swap
    champions = [
        (s["version"], s["from_ts_ns"]) for s in summary["served"] if s["alias"] == "champion"
    ]
    assert [c[0] for c in champions] == ["1", "3"]
    versions = [o["version"] for o in summary["orders"]]
    assert versions == sorted(versions) and set(versions) == {"1", "3"}  # one switch, in order
    conn = await asyncpg.connect(env.dsn)
    try:
        journaled = await conn.fetch("SELECT DISTINCT version FROM runner_batches ORDER BY 1")
        seen = await conn.fetch(
            "SELECT payload->>'version' AS v FROM runner_events WHERE kind = 'lifecycle'"
            " AND payload->>'kind' = 'swapped' AND payload->>'alias' = 'champion' ORDER BY id"
        )
    finally:
        await conn.close()
    assert [r["version"] for r in journaled] == ["1", "3"]
    assert [r["v"] for r in seen] == ["1", "3"]
