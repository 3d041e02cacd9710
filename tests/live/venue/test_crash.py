"""Crash acceptance: the order flow SIGKILLed at every persistence boundary and at 20 seeded
random points (a subprocess), then restarted; the reconciled journal equals the venue, with no
duplicate orders or fills. The paper venue runs in lockstep mode in this process."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from collections import Counter
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.synthetic import synthetic_tape
from tests.live.paper.kit import config

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]
ENV_KEYS = {"PYTHONHASHSEED": "0"}
BOUNDARY_HITS = 8  # a clean run: 3 after_persist, 3 after_send, 2 fill_before_position
KILLS = ["after_persist:1", "after_send:1", "fill_before_position:1"]
KILLS += [f"any:{n}" for n in random.Random(15).choices(range(1, BOUNDARY_HITS + 1), k=20)]


async def _flow(dsn: str, venue: ExchangeServer, prefix: str, base: str, kill: str) -> Any:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.live.venue.crash_flow", dsn, venue.http_url, prefix, base,
        kill, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


def _totals(venue: ExchangeServer) -> dict[str, str]:
    acc = venue.paper.account  # type: ignore[union-attr]
    return {a: str(b.free + b.locked) for a, b in acc.balances.items()}


def _venue_view(
    venue: ExchangeServer, prefix: str
) -> tuple[Counter[str], dict[str, str], list[Any]]:
    acc = venue.paper.account  # type: ignore[union-attr]
    mine = [o for o in acc.orders.values() if o.client_id.startswith(f"{prefix}-")]
    ids = {o.order_id for o in mine}
    trades = [t for t in acc.trades if t["orderId"] in ids]
    return Counter(o.client_id for o in mine), {o.client_id: o.status for o in mine}, trades


def _net(trades: list[Any]) -> dict[str, Decimal]:
    """The venue's account change from these trades (the fee is in the quote asset)."""
    base = quote = Decimal(0)
    for t in trades:
        sign = 1 if t["isBuyer"] else -1
        base += sign * Decimal(t["qty"])
        quote -= sign * Decimal(t["quoteQty"]) + Decimal(t["commission"])
    return {k: v for k, v in {"SYN0000": base, "USDT": quote}.items() if v}


async def test_sigkill_at_every_boundary_and_seeded_points(orders_dsn: str) -> None:
    tape = synthetic_tape("binance", 3, 2000, rate=1000.0, seed=7)
    async with ExchangeServer(tape, paper=config(), lockstep=True) as venue:
        clean = await _flow(orders_dsn, venue, "clean", json.dumps(_totals(venue)), "none:0")
        assert clean[0] == 0, clean[2]
        assert json.loads(clean[1])["sends"] == 3
        for n, kill in enumerate(KILLS):
            prefix = f"k{n}"
            base = json.dumps(_totals(venue))
            killed = await _flow(orders_dsn, venue, prefix, base, kill)
            assert killed[0] == -signal.SIGKILL, (kill, killed[2][-2000:])
            again = await _flow(orders_dsn, venue, prefix, base, "none:0")
            assert again[0] == 0, (kill, again[2][-2000:])
            await _check(orders_dsn, venue, prefix, kill)


async def _check(dsn: str, venue: ExchangeServer, prefix: str, kill: str) -> None:
    counts, statuses, trades = _venue_view(venue, prefix)
    assert sorted(counts) == [f"{prefix}-{s}-0" for s in range(3)], kill
    assert set(counts.values()) == {1}, (kill, counts)  # no duplicate order
    con = await asyncpg.connect(dsn)
    try:
        rows = await con.fetch("SELECT client_id, state FROM orders WHERE prefix = $1", prefix)
        fills = await con.fetch(
            "SELECT f.trade_id FROM fills f JOIN orders o USING (client_id) WHERE o.prefix = $1",
            prefix,
        )
        pos = await con.fetch("SELECT asset, qty FROM positions WHERE prefix = $1", prefix)
    finally:
        await con.close()
    assert {r["client_id"]: r["state"] for r in rows} == statuses, kill
    assert sorted(f["trade_id"] for f in fills) == sorted(int(t["id"]) for t in trades), kill
    assert {r["asset"]: r["qty"] for r in pos if r["qty"]} == _net(trades), kill
    assert trades, kill  # the flow traded: the checks above compared something
