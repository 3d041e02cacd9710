"""Order round trip through the paper venue: submit -> ack -> executionReport fill.

The paper venue (``ExchangeServer`` with the paper order API, a seeded synthetic Binance tape)
runs in its own process; this process runs ``BinanceBroker`` with its order store on a
throw-away embedded PostgreSQL (persist-before-send: one committed transaction before every
request) and the user-data stream on the WebSocket API. Marketable limit orders alternate buy
and sell. Prints p50/p99 of submit->ack (REST answer recorded) and submit->fill (the fill's
executionReport stored), then orders/s, sequential and with ``--concurrency`` in flight.

    python bench/bench_paper_venue.py [--orders 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from rrr_live.clock import SimulatedClock
from rrr_live.persistence.migrate import migrate
from rrr_live.persistence.server import ensure_databases, start_embedded, stop_embedded
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.model import Decision, OrderIntent, client_order_id
from rrr_live.venue.rest import Credentials, RestConfig, SignedRest
from rrr_live.venue.store import OrderStore
from rrr_live.venue.stream import pump, subscribe

SYMBOL = "SYN0000USDT"
QTY = Decimal("0.02")  # above the minimum notional; small: the held book is not refilled
KEY, SECRET = "bench-key", "bench-secret-not-a-real-one"
VENUE = """
import asyncio
from decimal import Decimal
from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.paper.auth import ApiKeys
from rrr_live.exchange.paper.limits import RateLimits
from rrr_live.exchange.paper.venue import PaperConfig
from rrr_live.exchange.synthetic import synthetic_tape

async def main():
    tape = synthetic_tape("binance", 3, 2000, rate=1000.0, seed=7)
    balances = {"USDT": Decimal(10**9), "SYN0000": Decimal(10**6)}
    # Binance's default limits (100 orders / 10 s) would measure the backoff, not the path.
    limits = RateLimits(weight_per_minute=10**8, orders_per_10s=10**7, orders_per_day=10**8)
    cfg = PaperConfig(ApiKeys.from_env(), balances, limits=limits)
    async with ExchangeServer(tape, paper=cfg) as server:
        print(server.port, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def pct(xs: list[float], q: float) -> float:
    """The q-quantile of xs in ms."""
    return statistics.quantiles(xs, n=100)[int(q) - 1] * 1000 if len(xs) > 1 else xs[0] * 1000


async def run(url: str, dsn: str, orders: int, concurrency: int) -> dict[str, Any]:
    """Sequential then concurrent round trips; latencies in seconds."""
    clock = SimulatedClock(0)  # the venue's time is the held replay's event time: follow it
    rest = SignedRest(RestConfig(f"http://{url}"), Credentials(KEY, SECRET), clock)
    await rest.sync_time()
    fills: dict[str, asyncio.Future[float]] = {}
    async with asyncpg.create_pool(dsn, min_size=2, max_size=concurrency + 2) as pool:
        broker = BinanceBroker(
            rest, OrderStore(pool, "b", "paper", clock), {SYMBOL: ("SYN0000", "USDT")}
        )
        applied = broker.on_event

        async def on_event(event: dict[str, Any]) -> None:
            await applied(event)
            fut = fills.get(str(event.get("c")))
            if event.get("x") == "TRADE" and fut is not None and not fut.done():
                fut.set_result(time.perf_counter())

        ws = await subscribe(f"ws://{url}/ws-api/v3", rest.creds, rest.now_ms())
        reader = asyncio.create_task(pump(ws, on_event))
        book = await rest.public("GET", "/api/v3/depth", {"symbol": SYMBOL, "limit": 5})
        bid, ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
        acks: list[float] = []
        trips: list[float] = []

        async def one(seq: int) -> None:
            side, px = ("BUY", ask + 50) if seq % 2 == 0 else ("SELL", bid - 50)
            d = Decision("bench", "bench", seq)
            cid = client_order_id("b", d)
            fills[cid] = asyncio.get_running_loop().create_future()
            t0 = time.perf_counter()
            await broker.submit(OrderIntent(cid, "b", SYMBOL, side, "LIMIT", QTY, px, d))
            acks.append(time.perf_counter() - t0)
            trips.append(await asyncio.wait_for(fills[cid], 10) - t0)

        t0 = time.perf_counter()
        for i in range(orders):
            await one(i)
        seq_s = time.perf_counter() - t0
        sem = asyncio.Semaphore(concurrency)

        async def limited(seq: int) -> None:
            async with sem:
                await one(seq)

        t0 = time.perf_counter()
        await asyncio.gather(*(limited(orders + i) for i in range(orders)))
        par_s = time.perf_counter() - t0
        reader.cancel()
        await ws.close()
    await rest.close()
    return {"acks": acks[:orders], "trips": trips[:orders], "seq_s": seq_s, "par_s": par_s}


def main() -> None:
    """Run the bench and print the numbers."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    env = {**os.environ, "RRR_VENUE_API_KEY": KEY, "RRR_VENUE_API_SECRET": SECRET}
    venue = subprocess.Popen(
        [sys.executable, "-c", VENUE], stdout=subprocess.PIPE, env=env, text=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        pgdata = Path(tmp) / "pg"
        try:
            port = int(venue.stdout.readline())  # type: ignore[union-attr]
            address = start_embedded(pgdata)
            ensure_databases(address, ["bench"])
            migrate(address.url("bench", "libpq"))
            res = asyncio.run(
                run(
                    f"127.0.0.1:{port}",
                    address.url("bench", "libpq"),
                    args.orders,
                    args.concurrency,
                )
            )
        finally:
            venue.terminate()
            venue.wait()
            stop_embedded(pgdata)
    n = args.orders
    print(
        f"paper venue round trip, {n} marketable limit orders, broker + order store on PostgreSQL"
    )
    print(f"  submit->ack   p50 {pct(res['acks'], 50):7.2f} ms  p99 {pct(res['acks'], 99):7.2f} ms")
    print(
        f"  submit->fill  p50 {pct(res['trips'], 50):7.2f} ms  p99 {pct(res['trips'], 99):7.2f} ms"
    )
    print(f"  sequential    {n / res['seq_s']:7.1f} orders/s")
    print(f"  {args.concurrency} in flight   {n / res['par_s']:7.1f} orders/s")


if __name__ == "__main__":
    main()
