"""Helpers of the journal tests: generated events, reading the journal back, a fake clock."""

from __future__ import annotations

import random
from collections import Counter

import asyncpg

from rrr_live.domain.events import TradeTick
from rrr_live.domain.market import BookUpdate, BookUpdateKind, Received, TopOfBook
from rrr_live.domain.orders import Side
from rrr_live.persistence.journal.rows import TABLES, from_row

DAY_NS = 86_400 * 1_000_000_000
T0_NS = 20_000 * DAY_NS + 3_600 * 1_000_000_000  # 2024-10-04 01:00 UTC


class StepClock:
    """A clock that moves forward by ``step_ns`` on every read (lag and retention use it)."""

    def __init__(self, start_ns: int = T0_NS, step_ns: int = 1_000) -> None:
        self.now = start_ns
        self.step_ns = step_ns

    def now_ns(self) -> int:
        """Return the current time, then move on."""
        self.now += self.step_ns
        return self.now


def _levels(rng: random.Random, n: int, base: int, sign: int) -> tuple[tuple[int, int], ...]:
    return tuple((base + sign * i * rng.randint(1, 3), rng.randint(0, 10**9)) for i in range(n))


def make_event(rng: random.Random, symbol: str, ts_ns: int) -> BookUpdate | TradeTick | TopOfBook:
    """One random market event of every kind the journal stores."""
    pick = rng.random()
    mid = rng.randint(10_000, 10**12)
    if pick < 0.6:
        kind = BookUpdateKind.SNAPSHOT if rng.random() < 0.05 else BookUpdateKind.DIFF
        n = rng.randint(20, 50) if kind is BookUpdateKind.SNAPSHOT else rng.randint(0, 4)
        first = rng.randint(0, 2**62)
        return BookUpdate(
            kind, symbol, ts_ns, _levels(rng, n, mid, -1), _levels(rng, rng.randint(0, n), mid, 1),
            first, first + rng.randint(0, 100),
        )  # fmt: skip
    if pick < 0.85:
        side = rng.choice((Side.BUY, Side.SELL))
        return TradeTick(ts_ns, symbol, mid, rng.randint(1, 10**6), side, rng.randint(0, 2**62))
    return TopOfBook(symbol, ts_ns, mid - 1, rng.randint(1, 99), mid + 1, rng.randint(1, 99),
                     rng.randint(0, 2**40))  # fmt: skip


def make_records(
    n: int, *, seed: int = 1, session: str = "binance-s1", start_ns: int = T0_NS,
    step_ns: int = 1_000_000, symbols: int = 20,
) -> list[Received]:  # fmt: skip
    """``n`` received events of one session with gap-free sequence numbers."""
    rng = random.Random(seed)
    venue = session.split("-", 1)[0]
    out = []
    for i in range(n):
        recv = start_ns + i * step_ns
        ev = make_event(rng, f"SYM{rng.randrange(symbols)}", recv - rng.randint(0, 10**6))
        out.append(Received(session, i + 1, recv, venue, ev))
    return out


async def read_journal(dsn: str) -> list[Received]:
    """Every record stored in the journal tables."""
    con = await asyncpg.connect(dsn)
    try:
        out: list[Received] = []
        for table in TABLES:
            rows = await con.fetch(f"SELECT * FROM {table}")
            out.extend(from_row(table, tuple(r)) for r in rows)
        return out
    finally:
        await con.close()


def multiset(records: list[Received]) -> Counter[Received]:
    """The records as a multiset (equal lists up to order compare equal)."""
    return Counter(records)
