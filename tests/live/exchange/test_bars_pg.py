"""Bars read from the published table in a real PostgreSQL, expanded and served."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.bars import Bar, expand_bars, read_published_bars
from rrr_live.persistence.urls import ServerAddress
from tests.live.exchange.kit import recv_n

DAY_NS = 86_400_000_000_000
START = datetime(2018, 1, 2, tzinfo=UTC)
ROWS = [
    ("bundled", "SP500", "1d", START, 2683.73, 2695.89, 2682.36, 2695.81, 2695.81, 3367250000.0),
    ("bundled", "SP500", "1d", START + timedelta(days=1), 2697.85, 2714.37, 2697.77, 2713.06,
     2713.06, 3538660000.0),
    ("bundled", "NASDAQ", "1d", START, 6937.65, 7006.90, 6924.08, 7006.90, 7006.90, 0.0),
    ("other", "SP500", "1d", START, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),  # another source: not read
]  # fmt: skip

# o -> l -> h -> c for both (up) bars, as written above
SP500_PATH = [
    "2683.73",
    "2682.36",
    "2695.89",
    "2695.81",
    "2697.85",
    "2697.77",
    "2714.37",
    "2713.06",
]


def _insert(rrr_db_url: str) -> str:
    dsn = rrr_db_url.replace("postgresql+psycopg2", "postgresql")
    con = psycopg2.connect(dsn)
    try:
        with con, con.cursor() as cur:  # commits on exit
            cur.executemany(
                "INSERT INTO market_bars (source, symbol, interval, ts, open, high, low, close,"
                " adj_close, volume) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", ROWS,
            )  # fmt: skip
    finally:
        con.close()
    return dsn


@pytest.mark.pg
@pytest.mark.asyncio
async def test_published_bars_are_read_expanded_and_served(rrr_db_url: str) -> None:
    dsn = _insert(rrr_db_url)
    bars = await read_published_bars(dsn, "bundled", "1d", ["SP500", "NASDAQ"], START,
                                     START + timedelta(days=10), DAY_NS)  # fmt: skip
    start_ns = int(START.timestamp()) * 1_000_000_000
    assert bars == [
        Bar("NASDAQ", start_ns, DAY_NS, 6937.65, 7006.90, 6924.08, 7006.90, 0.0),
        Bar("SP500", start_ns, DAY_NS, 2683.73, 2695.89, 2682.36, 2695.81, 3367250000.0),
        Bar("SP500", start_ns + DAY_NS, DAY_NS, 2697.85, 2714.37, 2697.77, 2713.06, 3538660000.0),
    ]
    tape = expand_bars("binance", bars)
    async with ExchangeServer(tape) as ex, connect(ex.ws_url + "/stream?streams=sp500@trade") as ws:
        trades = [m["data"] for m in await recv_n(ws, 8)]
    assert [t["p"] for t in trades] == SP500_PATH
    assert trades[3]["T"] == (start_ns + DAY_NS) // 1_000_000
    assert sum(int(t["q"]) for t in trades[:4]) == 3367250000


@pytest.mark.pg
@pytest.mark.asyncio
async def test_cli_serves_published_bars(
    tmp_path: Path, pg_server: ServerAddress, rrr_db_url: str
) -> None:
    _insert(rrr_db_url)
    name = urlsplit(rrr_db_url).path.lstrip("/")
    env = {**os.environ, "RRR_HOME": str(tmp_path / "home"), "RRR_LOG_FORMAT": "text",
           "RRR_DATABASE_URL": pg_server.url("postgres"), "RRR_RRR_DB": name,
           "RRR_DAGSTER_DB": f"{name}_dagster", "RRR_MLFLOW_DB": f"{name}_mlflow"}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rrr_pipelines.cli", "exchange", "serve", "--protocol", "coinbase",
        "--bars", "bundled/1d", "--symbols", "SP500,NASDAQ", "--start", "2018-01-01",
        "--speed", "max", "--exit-when-done", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
    ws_url = dict(re.findall(r"(ws|http) (\S+)", line))["ws"]
    async with connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "product_ids": ["SP500"],
                                  "channels": ["matches"]}))  # fmt: skip
        _ack, *matches = await recv_n(ws, 1 + 8)
        out, _err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, _err.decode()[-2000:]
    assert [m["price"] for m in matches] == SP500_PATH
    assert "stopped after" in out.decode()
