"""A shard restarted after dying between send and journal: its in-doubt order is settled by a
query and never resent, its batches continue after it, another shard's orders stay untouched."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from decimal import Decimal

import asyncpg
import httpx
import pytest

from rrr_live.clock import LiveClock
from rrr_live.config import get_settings
from rrr_live.exchange import ExchangeServer
from rrr_live.service.assemble import run_live
from rrr_live.service.config import load_config
from rrr_live.service.journal_sink import RunnerJournal
from rrr_live.shards.hashing import ShardSpec, owned
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.model import Decision, OrderIntent, client_order_id
from rrr_live.venue.reconcile import reconcile_owned
from rrr_live.venue.rest import Credentials, RestConfig, SignedRest
from rrr_live.venue.store import OrderStore
from tests.kit.services import free_port
from tests.live.paper.kit import KEYS
from tests.live.service.runner_kit import BALANCES, SYMBOLS, paper, random_bars, runner_env, tape_of

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

N_BARS, IN_DOUBT_SEQ = 40, 30
ME, OTHER = ShardSpec(4, 5), ShardSpec(1, 5)  # of AAA, BBB, CCC: BBB+CCC, and AAA


class Died(Exception):
    """The process 'died' at a persistence boundary (the crash tests SIGKILL there)."""


@pytest.fixture
def env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch):
    """The runner's database, home, keys and registered champion."""
    yield runner_env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch)
    get_settings.cache_clear()


def _die_after_send(boundary: str) -> None:
    if boundary == "after_send":
        raise Died(boundary)


async def _broker(pool, url: str, prefix: str, symbols, crash=None) -> BinanceBroker:
    rest = SignedRest(RestConfig(url), Credentials(KEYS.api_key, KEYS.secret), LiveClock())
    await rest.sync_time()
    store = OrderStore(pool, prefix, "binance", LiveClock())
    assets = {s: (s, "USDT") for s in symbols}
    return BinanceBroker(rest, store, assets, **({"crash": crash} if crash else {}))


async def _sent_then_died(
    pool, url: str, prefix: str, symbol: str, price: str = "50.00", seq: int = IN_DOUBT_SEQ
) -> str:
    """Persist and send a buy, then die before the answer is recorded or journaled."""
    broker = await _broker(pool, url, prefix, [symbol], _die_after_send)
    d = Decision("1", "fs", seq)
    intent = OrderIntent(client_order_id(prefix, d), prefix, symbol, "BUY", "LIMIT",
                         Decimal("0.5"), Decimal(price), d)  # fmt: skip
    with pytest.raises(Died):
        await broker.submit(intent)
    await broker.rest.close()
    return intent.client_id


async def _answered_then_died(pool, url: str, prefix: str, symbol: str, seq: int) -> str:
    """A marketable buy sent and its answer recorded; the process dies before journaling it."""
    broker = await _broker(pool, url, prefix, [symbol])
    d = Decision("1", "fs", seq)
    intent = OrderIntent(client_order_id(prefix, d), prefix, symbol, "BUY", "LIMIT",
                         Decimal("0.25"), Decimal("10000.00"), d)  # fmt: skip
    assert (await broker.submit(intent)).state == "FILLED"
    await broker.rest.close()
    return intent.client_id


async def test_restarted_shard_settles_its_in_doubt_order_and_never_resends(
    env, tmp_path, monkeypatch
):
    monkeypatch.setenv("RRR_CONTROL_TOKEN", "tok-1")
    port = free_port()
    mine, theirs = owned(SYMBOLS, ME), owned(SYMBOLS, OTHER)
    assert mine and theirs and not set(mine) & set(theirs)
    me, other = f"t1{ME.suffix}", f"t1{OTHER.suffix}"
    async with ExchangeServer(tape_of(random_bars(N_BARS)), lockstep=True, paper=paper()) as ex:
        async with asyncpg.create_pool(env.dsn, min_size=1, max_size=2) as pool:
            doubt = await _sent_then_died(pool, ex.http_url, me, mine[0])
            # a marketable one (far above the book) that filled: its fill is not journaled
            filled = await _sent_then_died(pool, ex.http_url, me, mine[1], "10000.00", 29)
            answered = await _answered_then_died(pool, ex.http_url, me, mine[1], 28)
            foreign = await _sent_then_died(pool, ex.http_url, other, theirs[0])
        path = env.toml(ex.http_url, tmp_path / "runner.toml", shard=f'"{ME}"')
        path.write_text(path.read_text() + f"[control]\nport = {port}\n")
        cfg = load_config(path)
        assert cfg.runner.name == me

        assert cfg.control.port == port + ME.index  # a shard listens on port + its index

        async def stop() -> dict:
            await ex.finished()
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cfg.control.port}") as h:
                    return (
                        await h.get("/status", headers={"Authorization": "Bearer tok-1"})
                    ).json()
            finally:
                os.kill(os.getpid(), signal.SIGTERM)

        stopper = asyncio.create_task(stop())
        assert await asyncio.wait_for(run_live(cfg), 120) == 0
        status = await stopper
        assert status["runner"] == me and status["shard"] == "4/5"
        assert status["symbols"] == len(mine)
        venue = {o.client_id: o for o in ex.paper.account.orders.values()}
        sent = Counter(o.client_id for o in ex.paper.account.orders.values())
        async with asyncpg.create_pool(env.dsn, min_size=1, max_size=2) as pool:
            # the shard's positions on its own base assets are the venue's (journal + fills)
            held = await RunnerJournal(pool, me, "check").filled_positions()
            check = await _broker(pool, ex.http_url, me, mine)
            await reconcile_owned(check, await RunnerJournal(pool, me, "c").client_ids(),
                                  BALANCES, held)  # fmt: skip
            await check.rest.close()
            states = {r["client_id"]: r["state"] for r in await pool.fetch(
                "SELECT client_id, state FROM orders")}  # fmt: skip
            events = await OrderStore(pool, me, "binance", LiveClock()).events(doubt)
    summary = json.loads((tmp_path / f"summary{ME.suffix}.json").read_text())
    assert summary["runner"] == me and summary["batches"] == N_BARS
    orders = summary["orders"]
    assert orders and {o["symbol"] for o in orders} <= set(mine)  # it trades its symbols only
    # its batches continue after the in-doubt decision: no client id is handed out twice
    assert min(int(o["client_id"].split("-")[2], 16) for o in orders) > IN_DOUBT_SEQ
    assert max(sent.values()) == 1 and sent[doubt] == 1  # never resent
    # settled by query (the venue had it, resting), then canceled at shutdown like any open order
    assert events[:2] == ["persisted", "NEW"] and states[doubt] == venue[doubt].status
    assert venue[doubt].status == "CANCELED"
    assert states[filled] == venue[filled].status == "FILLED" and sent[filled] == 1
    assert states[answered] == "FILLED" and sent[answered] == 1
    # (the base-asset check above counted both unjournaled fills: 0.5 + 0.25 of mine[1])
    # the other shard's in-doubt order is not this shard's business: untouched on both sides
    assert states[foreign] == "pending_send" and venue[foreign].status == "NEW"
