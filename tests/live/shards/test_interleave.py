"""Hypothesis: however the shards' reservations interleave, the account stays inside its limits."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrr_live.risk.limits import RiskLimits
from rrr_live.risk.reasons import DenyReason
from rrr_live.risk.rules import exposure_deltas
from tests.live.shards.conftest import SYMBOLS, Shard, make_shard, orders

pytestmark = [pytest.mark.pg]

R = DenyReason
LIMITS = RiskLimits(max_gross_notional=5_000.0, max_net_notional=3_000.0)
_accounts = itertools.count()

# per shard, rounds of {symbol: signed lots} (one order per symbol, as a decision batch has),
# each preceded by a number of event-loop yields that picks the interleaving
ROUND = st.tuples(
    st.integers(0, 3),
    st.dictionaries(st.integers(0, len(SYMBOLS) - 1),
                    st.integers(-25, 25).filter(bool), min_size=1, max_size=3),
)  # fmt: skip
PLAN = st.lists(st.lists(ROUND, min_size=1, max_size=4), min_size=3, max_size=3)


def _check_orders(shard: Shard, lots: dict[int, int], codes: list[int]) -> None:
    """Only orders that grow the portfolio's gross or |net| past a limit were denied."""
    gross, net = shard.ledger.last_portfolio
    port = shard.portfolio
    sym = np.array(sorted(lots), dtype=np.int64)
    qty = np.array([lots[s] for s in sym.tolist()], dtype=np.float64)
    d_gross, d_net = exposure_deltas(port.positions()[sym], qty, port.marks()[sym])
    for dg, dn, code in zip(d_gross.tolist(), d_net.tolist(), codes, strict=True):
        if code == R.PORTFOLIO_GROSS:
            assert dg > 0 and gross + dg > LIMITS.max_gross_notional
        elif code == R.PORTFOLIO_NET:
            assert abs(net + dn) > max(abs(net), LIMITS.max_net_notional)
        else:
            assert code == R.OK
            gross, net = gross + dg, net + dn


async def _run_plan(dsn: str, plan: list[list[tuple[int, dict[int, int]]]]) -> None:
    account = f"hyp-{next(_accounts)}"
    async with asyncpg.create_pool(dsn, min_size=1, max_size=len(plan) + 1) as pool:
        shards = [make_shard(pool, account, f"s{i}", LIMITS) for i in range(len(plan))]
        for s in shards:
            await s.ledger.open(s.portfolio.equity())

        async def totals() -> tuple[float, float]:
            row = await pool.fetchrow(
                "SELECT sum(gross) AS g, sum(net) AS n FROM risk_shard WHERE account = $1",
                account,
            )
            return row["g"], row["n"]

        async def trade(shard: Shard, rounds: list[tuple[int, dict[int, int]]]) -> None:
            for t, (yields, lots) in enumerate(rounds, start=1):
                for _ in range(yields):
                    await asyncio.sleep(0)
                d = orders(t, shard, lots)
                await shard.ledger.reserve(t, d, shard.step)
                _check_orders(shard, lots, d.codes.tolist())
                gross, net = await totals()  # a committed state, whoever committed last
                assert gross <= LIMITS.max_gross_notional + 1e-6
                assert abs(net) <= LIMITS.max_net_notional + 1e-6
                shard.fill(d)
                await shard.ledger.sync(t, shard.risk)

        await asyncio.gather(*(trade(s, r) for s, r in zip(shards, plan, strict=True)))
        assert all(s.ledger.reachable for s in shards)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=PLAN)
def test_interleaved_reservations_never_break_portfolio_limits(
    ledger_dsn: str, plan: list[list[tuple[int, dict[int, int]]]]
) -> None:
    asyncio.run(_run_plan(ledger_dsn, plan))
