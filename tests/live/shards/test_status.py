"""``rrr live status``: the account's shards from the runner journal tables, and a total."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from click.testing import CliRunner

from rrr_live.config import get_settings
from rrr_live.shards.status import account_status, status_table
from rrr_pipelines.cli.main import cli
from tests.kit import services

pytestmark = [pytest.mark.pg]
S = 1_000_000_000
T0 = 1_700_000_000 * S
BATCH = """INSERT INTO runner_batches (runner, session, seq, ts_ns, version, state, equity,
    n_symbols, n_orders, n_denied, n_rejected, closing_send_ns, decided_ns, report)
    VALUES ($1, 's', $2, $3, '1', 'ACTIVE', 1.0, 1, 1, 0, 0, 0, 0, $4::jsonb)"""
RISK = "INSERT INTO runner_risk (runner, ts_ns, state, snapshot) VALUES ($1, $2, $3, '{}')"


def _order(symbol: str, side: str, qty: str) -> str:
    o = {"client_id": "x", "symbol": symbol, "side": side, "qty": qty, "state": "FILLED",
         "filled_qty": qty, "avg_price": "10", "commission": "0"}  # fmt: skip
    return json.dumps({"orders": [o]})


async def _journal(dsn: str) -> None:
    con = await asyncpg.connect(dsn)
    try:
        rows = [("acct-s0of2", 1, T0, _order("AAA", "BUY", "0.5")),
                ("acct-s0of2", 2, T0 + S, _order("AAA", "SELL", "0.2")),
                ("acct-s1of2", 1, T0 + 3 * S, _order("BBB", "BUY", "2")),
                ("acct-s0of3", 7, T0 - S, _order("BBB", "BUY", "1")),  # before a resize to 2
                ("acctx", 1, T0 + 9 * S, _order("CCC", "BUY", "1")),  # another account
                ("acct-b", 1, T0 + 9 * S, _order("CCC", "BUY", "1"))]  # fmt: skip
        await con.executemany(BATCH, rows)
        await con.executemany(RISK, [("acct-s0of2", T0 + S, "ACTIVE"),
                                     ("acct-s1of2", T0 + 3 * S, "HALTED")])  # fmt: skip
    finally:
        await con.close()


async def _status(dsn: str) -> dict:
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:

        async def ledger(_pool, account):
            return {"account": account, "seam": True}

        return await account_status(pool, "acct", "main", ledger)


def test_status_lists_the_accounts_shards_and_totals(pg_server, tmp_path, monkeypatch):
    url = services.fresh_database(pg_server, prefix="status")
    dsn = url.replace("postgresql+psycopg2://", "postgresql://", 1)
    asyncio.run(_journal(dsn))
    st = asyncio.run(_status(dsn))
    assert [(r["runner"], r["shard"], r["state"], r["batches"]) for r in st["runners"]] == [
        ("acct-s0of2", "0/2", "ACTIVE", 2),
        ("acct-s1of2", "1/2", "HALTED", 1),
        ("acct-s0of3", "0/3", "", 1),
    ]
    first = st["runners"][0]
    assert first["positions"] == {"AAA": "0.3"} and first["last_data_ns"] == T0 + S
    agg = st["aggregate"]
    assert agg["runners"] == 3 and agg["batches"] == 4
    assert agg["states"] == {"ACTIVE": 1, "HALTED": 1, "unknown": 1}
    assert agg["last_data_ns"] == T0 + 3 * S and agg["last_data"].startswith("2023-11-14T22:13:23")
    assert agg["shard_counts"] == [2, 3] and agg["missing_shards"] == {"3": [1, 2]}
    assert agg["positions"] == {"AAA": "0.3", "BBB": "3"}
    assert st["account"] == "main" and st["ledger"] == {"account": "main", "seam": True}
    text = "\n".join(status_table(st))
    assert "acct-s1of2  1/2    HALTED" in text and "of 3 shards, 1, 2 never journaled" in text

    # the command: the config's runner name is the account; no venue secret is needed
    monkeypatch.setenv("RRR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RRR_DATABASE_URL", pg_server.url("postgres", "libpq"))
    monkeypatch.setenv("RRR_RRR_DB", url.rsplit("/", 1)[1].split("?", 1)[0])
    monkeypatch.delenv("RRR_VENUE_API_KEY", raising=False)
    get_settings.cache_clear()
    cfg = tmp_path / "r.toml"
    cfg.write_text('[runner]\nname = "acct"\nshard = "1/2"\n')
    try:
        out = CliRunner().invoke(cli, ["live", "status", "--config", str(cfg), "--json"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["aggregate"]["batches"] == 4
        table = CliRunner().invoke(cli, ["live", "status", "--config", str(cfg)])
        assert table.exit_code == 0 and "total: 3 runners (ACTIVE 1, HALTED 1" in table.output
    finally:
        get_settings.cache_clear()
