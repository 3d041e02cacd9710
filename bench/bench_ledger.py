"""Risk-ledger cost per decision batch: sync + reserve of N shards on one account, concurrently.

Each shard is an asyncio task with its own pool connection that runs ``rounds`` decision batches:
``RiskLedger.sync`` then ``RiskLedger.reserve`` of a 4-order decision (the trader's two ledger
calls), as fast as the database answers. All shards lock the same account row, so they
serialize: the lock wait grows with the shard count. Prints, per shard count, the batches/s
over all shards, the p50/p99 of one batch's two ledger calls and of the lock wait.

Runs on a throw-away embedded PostgreSQL (no network):

    python bench/bench_ledger.py [--shards 1 2 4 8] [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncpg
import numpy as np

from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.shards.ledger import RiskLedger
from rrr_live.strategy.decision import Decision, DecisionStep
from rrr_live.strategy.sizing import Strategy, StrategyConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg import bench_database

SYMBOLS = tuple(f"S{i:02d}" for i in range(8))
LIMITS = RiskLimits(max_gross_notional=1e12, max_net_notional=1e12)


def _shard(pool: asyncpg.Pool, name: str) -> tuple[RiskLedger, DecisionStep]:
    port = Portfolio(SYMBOLS, 1e6)
    port.mark(np.arange(len(SYMBOLS)), np.full(len(SYMBOLS), 100.0))
    port.update_high_water_mark()
    step = DecisionStep(Strategy(StrategyConfig()), RiskEngine(LIMITS, port), port,
                        np.zeros(len(SYMBOLS)))  # fmt: skip
    return RiskLedger(pool, "bench", name, LIMITS, timeout_s=10.0), step


def _decision(ts: int, step: DecisionStep, rng: np.random.Generator) -> Decision:
    d = Decision(ts, step.risk.state, *step.portfolio.valuation())
    d.sym = np.sort(rng.choice(len(SYMBOLS), 4, replace=False)).astype(np.int64)
    d.lots = rng.integers(-5, 6, 4).astype(np.int64)
    d.ref = np.full(4, 100.0)
    d.codes = np.zeros(4, dtype=np.int8)
    return d


async def _one(dsn: str, n_shards: int, rounds: int) -> dict[str, float]:
    async with asyncpg.create_pool(dsn, min_size=n_shards, max_size=n_shards) as pool:
        await pool.execute("TRUNCATE risk_shard, risk_account")
        waits: list[float] = []
        calls: list[float] = []
        shards = [_shard(pool, f"s{i}") for i in range(n_shards)]
        for ledger, step in shards:
            ledger.on_lock_wait = waits.append
            await ledger.open(step.portfolio.equity())

        async def run(ledger: RiskLedger, step: DecisionStep, seed: int) -> None:
            rng = np.random.default_rng(seed)
            for t in range(rounds):
                d = _decision(t, step, rng)
                start = time.perf_counter()
                await ledger.sync(t, step.risk)
                await ledger.reserve(t, d, step)
                calls.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(run(lg, st, i) for i, (lg, st) in enumerate(shards)))
        wall = time.perf_counter() - start
    c, w = np.array(calls) * 1e3, np.array(waits) * 1e3
    return {"shards": n_shards, "batches_per_s": len(calls) / wall,
            "batch_p50_ms": float(np.percentile(c, 50)), "batch_p99_ms": float(np.percentile(c, 99)),
            "lock_wait_p50_ms": float(np.percentile(w, 50)),
            "lock_wait_p99_ms": float(np.percentile(w, 99))}  # fmt: skip


def main() -> None:
    """Run the benchmark and print one line per shard count."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with bench_database() as address:
        dsn = address.url("bench", "libpq")
        for n in args.shards:
            r = asyncio.run(_one(dsn, n, args.rounds))
            print(
                f"{r['shards']} shards: {r['batches_per_s']:8.0f} batches/s  "
                f"sync+reserve p50 {r['batch_p50_ms']:.2f} ms p99 {r['batch_p99_ms']:.2f} ms  "
                f"lock wait p50 {r['lock_wait_p50_ms']:.2f} ms p99 {r['lock_wait_p99_ms']:.2f} ms"
            )


if __name__ == "__main__":
    main()
