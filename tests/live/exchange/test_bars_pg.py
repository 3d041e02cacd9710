"""Bars read from the published table in a real PostgreSQL, expanded and served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.bars import Bar, expand_bars, read_published_bars
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


@pytest.mark.pg
@pytest.mark.asyncio
async def test_published_bars_are_read_expanded_and_served(rrr_db_url: str) -> None:
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
    assert [t["p"] for t in trades] == ["2683.73", "2682.36", "2695.89", "2695.81",
                                        "2697.85", "2697.77", "2714.37", "2713.06"]  # fmt: skip
    assert trades[3]["T"] == (start_ns + DAY_NS) // 1_000_000
    assert sum(int(t["q"]) for t in trades[:4]) == 3367250000
