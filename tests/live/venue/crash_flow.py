"""The order flow run as a subprocess by the crash tests; killed with SIGKILL at a boundary.

Usage: ``python -m tests.live.venue.crash_flow DSN HTTP_URL PREFIX BASELINE_JSON [KILL]`` where
KILL is ``NAME:N`` (the N-th hit of boundary NAME) or ``any:N`` (the N-th boundary hit). The
flow: reconcile (settles what a killed predecessor left), submit decisions 0..2 (a marketable
buy, a resting buy, a marketable sell; a replayed decision resolves its stored order), reconcile.
Prints one JSON line with what it did.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from decimal import Decimal

import asyncpg

from rrr_live.clock import SimulatedClock
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.model import Decision, OrderIntent, client_order_id
from rrr_live.venue.reconcile import reconcile
from rrr_live.venue.rest import Credentials, RestConfig, SignedRest
from rrr_live.venue.store import OrderStore

SYMBOL, ASSETS = "SYN0000USDT", {"SYN0000USDT": ("SYN0000", "USDT")}
CREDS = Credentials("test-key", "test-secret-which-is-long-enough")


class Killer:
    """Counts boundary hits; SIGKILLs this process at the chosen one."""

    def __init__(self, spec: str) -> None:
        name, _, n = spec.partition(":")
        self.name, self.at, self.hits = name, int(n or 0), 0

    def __call__(self, boundary: str) -> None:
        """Called at every persistence boundary."""
        if self.name in ("any", boundary):
            self.hits += 1
            if self.hits == self.at:
                os.kill(os.getpid(), signal.SIGKILL)


async def _best(rest: SignedRest) -> tuple[Decimal, Decimal]:
    book = await rest.public("GET", "/api/v3/depth", {"symbol": SYMBOL, "limit": 5})
    return Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])


def _intents(prefix: str, bid: Decimal, ask: Decimal) -> list[OrderIntent]:
    # Marketable legs cross a point deep: the held book is not refilled between runs.
    legs = [("BUY", ask + 1), ("BUY", bid - Decimal("0.05")), ("SELL", bid - 1)]
    out = []
    for seq, (side, px) in enumerate(legs):
        d = Decision("m-crash", "fs-crash", seq)
        out.append(OrderIntent(client_order_id(prefix, d), prefix, SYMBOL, side, "LIMIT",
                               Decimal("0.05"), px, d))  # fmt: skip
    return out


async def main(dsn: str, url: str, prefix: str, baseline_json: str, kill: str) -> None:
    """Run the flow once (see the module docstring)."""
    baseline = {k: Decimal(v) for k, v in json.loads(baseline_json).items()}
    crash = Killer(kill)
    clock = SimulatedClock(0)
    rest = SignedRest(RestConfig(url), CREDS, clock)
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:
        await rest.sync_time()
        broker = BinanceBroker(rest, OrderStore(pool, prefix, "paper", clock, crash), ASSETS, crash)
        first = await reconcile(broker, baseline)
        bid, ask = await _best(rest)
        states = [(await broker.submit(i)).state for i in _intents(prefix, bid, ask)]
        last = await reconcile(broker, baseline)
    await rest.close()
    print(json.dumps({"settled": first.settled, "missed": first.missed_fills + last.missed_fills,
                      "states": states, "sends": broker.sends}))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5], sys.argv[5] if len(sys.argv) > 5 else "none:0"))
