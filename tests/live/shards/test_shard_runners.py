"""Two shard runners of one account on one replay exchange: the account ledger halts both."""

from __future__ import annotations

import asyncio
import json
import math
from decimal import Decimal

import asyncpg
import numpy as np
import pytest

from rrr_live.config import get_settings
from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.bars import Bar
from rrr_live.risk.state import TradingState
from rrr_live.service.assemble import run_live
from rrr_live.service.config import load_config
from rrr_live.shards.hashing import owned, parse_shard
from tests.live.service.runner_kit import T0, S, paper, random_bars, runner_env, tape_of

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

UNIVERSE = ("AAA", "BBB", "DDD")  # shard 0/2 owns DDD, shard 1/2 AAA and BBB
N_BARS = 36
JUMPS = {14: 0.7, 18: 1.4, 22: 0.7, 26: 1.4, 30: 0.7}  # DDD's close jumps (x) at these bars


def _bars() -> list[Bar]:
    """A seeded random walk; DDD (shard 0's) jumps down and up by 30-40 %."""
    out = [b for b in random_bars(N_BARS, seed=5, symbols=UNIVERSE) if b.symbol != "DDD"]
    rng = np.random.default_rng(9)
    px = 300.0
    for i in range(N_BARS):
        o = round(px, 2)
        c = round(o * JUMPS.get(i, math.exp(0.004 * rng.normal())), 2)
        h, lo = round(max(o, c) * 1.001, 2), round(min(o, c) * 0.999, 2)
        out.append(Bar("DDD", T0 + i * S, S, o, h, lo, c, 60.0))
        px = c
    return out


@pytest.fixture
def env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch):
    """The runners' database, home, keys and a champion for ``UNIVERSE``."""
    yield runner_env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch, symbols=UNIVERSE)
    get_settings.cache_clear()


async def test_account_drawdown_on_one_shard_halts_and_flattens_both(
    env, tmp_path, live_services
) -> None:
    assert owned(UNIVERSE, parse_shard("0/2")) == ("DDD",)
    services = live_services
    async with ExchangeServer(
        tape_of(_bars()), lockstep=True, lockstep_clients=2, paper=paper(UNIVERSE)
    ) as ex:
        path = env.toml(ex.http_url, tmp_path / "runner.toml")
        text = path.read_text().replace("max_drawdown = 0.5", "max_drawdown = 0.001")
        path.write_text(text + '[ledger]\naccount = "acct"\n')
        runs = [asyncio.create_task(run_live(load_config(path, shard=f"{i}/2"))) for i in (0, 1)]
        await asyncio.wait_for(ex.finished(), 120)
        for svc in services:
            svc.request_stop()
        assert await asyncio.wait_for(asyncio.gather(*runs), 60) == [0, 0]
        balances = ex.paper.account.balances
        held = {s: balances[s].free + balances[s].locked - Decimal(1_000) for s in UNIVERSE}
    summaries = [json.loads((tmp_path / f"summary-s{i}of2.json").read_text()) for i in (0, 1)]
    assert [len(s["orders"]) > 0 for s in summaries] == [True, True]
    for s in summaries:
        assert s["risk_state_path"][-1][1] == "HALTED"
    # every position was closed: the paper account holds what it started with
    assert held == {s: 0 for s in UNIVERSE}
    conn = await asyncpg.connect(env.dsn)
    try:
        account = await conn.fetchrow("SELECT * FROM risk_account WHERE account = 'acct'")
        shards = {r["shard"]: r for r in await conn.fetch("SELECT * FROM risk_shard")}
    finally:
        await conn.close()
    assert account["state"] == "HALTED" and account["halted_by"] == "t1-s0of2"
    assert {k: r["state"] for k, r in shards.items()} == {
        "t1-s0of2": "HALTED",
        "t1-s1of2": "HALTED",
    }
    # shard 0's sync saw the account drawdown; shard 1 halted because the account did
    halts = {
        svc.trader.p.prefix: [c.reason for c in svc.trader.p.step.risk.machine.history
                              if c.new is TradingState.HALTED]
        for svc in services
    }  # fmt: skip
    assert halts["t1-s0of2"] == [f"portfolio halted by t1-s0of2: {account['halt_reason']}"]
    assert halts["t1-s1of2"] == [f"portfolio halted by t1-s0of2: {account['halt_reason']}"]
    assert account["halt_reason"].startswith("account drawdown")
