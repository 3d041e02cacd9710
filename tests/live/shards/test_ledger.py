"""The risk ledger on real PostgreSQL: shards of one account, halts, resume, fail closed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import asyncpg
import numpy as np
import pytest
from asyncpg.transaction import Transaction

from rrr_live.risk.limits import RiskLimits
from rrr_live.risk.quality import JournalHealth
from rrr_live.risk.reasons import DenyReason
from rrr_live.risk.state import TradingState
from rrr_live.service.control import risk_handlers
from rrr_live.service.journal_sink import JournaledFill, replay_fills
from rrr_live.shards.control import RESUME_REQUESTED, LedgerCommands
from rrr_live.shards.ledger import UNREACHABLE, LedgerUnavailable, ledger_status
from rrr_live.strategy.decision import DecisionBatch, OpenOrders
from tests.live.shards.conftest import CASH, SYMBOLS, Shard, make_shard, orders

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

R = DenyReason
S = 1_000_000_000
_accounts = itertools.count()


def _account(tag: str) -> str:
    return f"{tag}-{next(_accounts)}"


@asynccontextmanager
async def _account_locked(
    dsn: str, account: str
) -> AsyncIterator[tuple[asyncpg.Connection, Transaction]]:
    """Another connection holding the account row's lock (a stuck shard) until it rolls back."""
    holder = await asyncpg.connect(dsn)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM risk_account WHERE account = $1 FOR UPDATE", account)
        yield holder, tx
    finally:
        await holder.close()


async def _shards(pool: asyncpg.Pool, n: int, limits: RiskLimits, **kw: object) -> list[Shard]:
    account = _account("acct")
    shards = [make_shard(pool, account, f"s{i}", limits, **kw) for i in range(n)]
    for s in shards:
        await s.ledger.open(s.portfolio.equity())
    return shards


async def test_reservations_keep_the_sum_of_shards_inside_portfolio_limits(
    ledger_dsn: str,
) -> None:
    limits = RiskLimits(max_gross_notional=6_000.0, max_net_notional=4_000.0)
    async with asyncpg.create_pool(ledger_dsn, min_size=1, max_size=3) as pool:
        a, b = await _shards(pool, 2, limits)
        da = orders(1, a, {0: 30})  # 3000 each: alone inside every limit
        db = orders(1, b, {1: -20, 2: 20})
        await a.ledger.reserve(1, da, a.step)
        await b.ledger.reserve(1, db, b.step)
        assert da.codes.tolist() == [0]
        # b: the short takes gross to 5000 (net 1000); the long would take gross to 7000
        assert db.codes.tolist() == [0, R.PORTFOLIO_GROSS]
        a.fill(da)
        b.fill(db)
        # orders are checked in batch order: a sell makes room for a later buy
        dr = orders(2, a, {0: -10, 3: 15})
        await a.ledger.reserve(2, dr, a.step)
        assert dr.codes.tolist() == [0, 0]  # the sell made room for the buy (5500, not 6500)
        status = await a.ledger.status()
        assert sum(s["gross"] for s in status["shards"]) == pytest.approx(5_500.0)
        assert a.risk.denied_counts[R.PORTFOLIO_GROSS] == 0
        assert b.risk.denied_counts[R.PORTFOLIO_GROSS] == 1


async def test_account_drawdown_seen_by_one_shard_halts_and_flattens_the_other(
    ledger_dsn: str,
) -> None:
    limits = RiskLimits(max_drawdown=0.05, on_halt="flatten")
    async with asyncpg.create_pool(ledger_dsn, min_size=1, max_size=2) as pool:
        a, b = await _shards(pool, 2, limits)
        for s, sym in ((a, 0), (b, 2)):
            d = orders(1, s, {sym: 40})
            await s.ledger.reserve(1, d, s.step)
            s.fill(d)
            await s.ledger.sync(1, s.risk)
        a.portfolio.mark_symbol("AAA", 85.0)  # a loses 600 = 6 % of the account's 10 000
        await a.ledger.sync(2 * S, a.risk)
        assert a.risk.state is TradingState.HALTED
        status = await ledger_status(pool, a.ledger.account)
        assert status["account"]["state"] == "HALTED"
        assert status["account"]["halted_by"] == "s0"
        assert b.risk.state is TradingState.ACTIVE  # b's own books are fine...
        await b.ledger.sync(3 * S, b.risk)
        assert b.risk.state is TradingState.HALTED  # ...but the account halted
        assert b.risk.flatten_pending
        assert "portfolio halted by s0" in b.risk.machine.history[-1].reason
        # and b's next step closes its position with a reduce-only order
        idx = np.array([2], dtype=np.int64)
        batch = DecisionBatch(3 * S, idx, np.array([100.0]), np.array([1.0]))
        d = b.step.run(batch, OpenOrders.empty(len(SYMBOLS)))
        assert d.reduce_only and d.sym.tolist() == [2] and d.lots.tolist() == [-40]
        assert d.codes.tolist() == [0]


async def test_operator_resume_on_one_shard_resumes_every_shard(ledger_dsn: str) -> None:
    limits = RiskLimits(max_drawdown=0.05)
    async with asyncpg.create_pool(ledger_dsn, min_size=1, max_size=2) as pool:
        a, b = await _shards(pool, 2, limits)
        await b.ledger.halt(1, "operator kill switch")
        for s in (a, b):
            await s.ledger.sync(2, s.risk)
            assert s.risk.state is TradingState.HALTED
        await a.ledger.resume(3, "operator resume")
        status = await a.ledger.status()
        assert status["account"]["state"] == "ACTIVE" and status["account"]["epoch"] == 1
        for s in (a, b):
            await s.ledger.sync(4, s.risk)
            assert s.risk.state is TradingState.ACTIVE
        assert [r["epoch_seen"] for r in (await a.ledger.status())["shards"]] == [1, 1]
        # a restarted shard keeps the epoch it applied: no second resume
        again = make_shard(pool, a.ledger.account, "s0", limits)
        await again.ledger.open(again.portfolio.equity())
        assert again.ledger.epoch == 1


async def test_unreachable_ledger_fails_closed_and_recovers(ledger_dsn: str) -> None:
    waits: list[float] = []
    async with asyncpg.create_pool(ledger_dsn, min_size=1, max_size=2) as pool:
        (a,) = await _shards(pool, 1, RiskLimits(), timeout_s=0.2, on_lock_wait=waits.append)
        d = orders(1, a, {0: 10})
        await a.ledger.reserve(1, d, a.step)
        a.fill(d)
        async with _account_locked(ledger_dsn, a.ledger.account) as (_, tx):
            await a.ledger.sync(2, a.risk)
            assert a.risk.state is TradingState.REDUCING
            assert a.risk.machine.history[-1].reason == UNREACHABLE
            d = orders(3, a, {0: -5, 1: 5})
            await a.ledger.reserve(3, d, a.step)
            assert d.codes.tolist() == [0, R.REDUCING_ONLY]  # the reduction still goes out
            assert a.ledger.last_error.startswith("LockNotAvailableError")
            await tx.rollback()
        await a.ledger.sync(4, a.risk)
        assert a.risk.state is TradingState.ACTIVE and a.ledger.reachable
        assert len(waits) == 2 and all(0 <= w < 0.2 for w in waits)
        row = (await a.ledger.status())["shards"][0]
        assert row["last_error"].startswith("LockNotAvailableError")


async def test_lock_wait_measures_the_time_another_shard_held_the_lock(
    ledger_dsn: str,
) -> None:
    async with asyncpg.create_pool(ledger_dsn, min_size=1, max_size=2) as pool:
        (a,) = await _shards(pool, 1, RiskLimits(), timeout_s=5.0)
        async with _account_locked(ledger_dsn, a.ledger.account) as (holder, tx):
            loop = asyncio.get_running_loop()
            held_from = loop.time()
            sync = asyncio.create_task(a.ledger.sync(1, a.risk))
            # the event (the sync's backend queued behind our lock) lives in PostgreSQL: poll it
            while not await holder.fetchval(  # noqa: ASYNC110
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ):
                await asyncio.sleep(0.005)
            await tx.rollback()
            held = loop.time() - held_from
            await sync
        assert 0 < a.ledger.lock_wait_s <= held + 0.05
        assert a.risk.state is TradingState.ACTIVE


async def test_open_without_a_database_raises_ledger_unavailable(ledger_dsn: str) -> None:
    pool = await asyncpg.create_pool(ledger_dsn, min_size=1, max_size=1)
    shard = make_shard(pool, _account("closed"), "s0", RiskLimits(), timeout_s=0.5)
    await pool.close()
    with pytest.raises(LedgerUnavailable, match="risk ledger of account"):
        await shard.ledger.open(1.0)
    await shard.ledger.sync(1, shard.risk)  # never raises into the trader
    assert shard.risk.state is TradingState.REDUCING


async def test_a_valuation_that_is_not_finite_fails_closed(ledger_dsn: str) -> None:
    async with asyncpg.create_pool(ledger_dsn, min_size=1, max_size=1) as pool:
        (a,) = await _shards(pool, 1, RiskLimits(max_gross_notional=1e6))
        d = orders(1, a, {0: 10})
        await a.ledger.reserve(1, d, a.step)
        a.fill(d)
        a.portfolio.mark_symbol("AAA", float("nan"))
        await a.ledger.sync(2, a.risk)  # NaN would pass every limit: refuse to publish it
        assert a.risk.state is TradingState.REDUCING and not a.ledger.reachable
        d = orders(3, a, {1: 5})
        await a.ledger.reserve(3, d, a.step)
        assert d.codes.tolist() == [R.REDUCING_ONLY]
        row = (await a.ledger.status())["shards"][0]
        assert row["gross"] == pytest.approx(1_000.0)  # the last finite exposure stays


async def test_control_halt_and_resume_of_a_shard_act_on_the_account(ledger_dsn: str) -> None:
    async with asyncpg.create_pool(ledger_dsn, min_size=1, max_size=2) as pool:
        a, b = await _shards(pool, 2, RiskLimits())
        commands = LedgerCommands(a.ledger, lambda: 7)
        h = commands.wrap(risk_handlers(a.risk, lambda: 7, lambda: {"runner": "a"}))
        assert h.halt("operator halt via control API") == "halted"  # this shard at once
        await commands.drain()
        await b.ledger.sync(8, b.risk)
        assert b.risk.state is TradingState.HALTED  # the others at their next sync
        assert h.status() == {"runner": "a", "ledger": a.ledger.view()}
        assert h.status()["ledger"]["shard"] == "s0"
        assert h.resume("operator resume via control API") == RESUME_REQUESTED
        await commands.drain()
        for s in (a, b):
            await s.ledger.sync(9, s.risk)
            assert s.risk.state is TradingState.ACTIVE


async def test_a_restarted_shard_keeps_the_account_equity_and_the_cash_reconciles(
    ledger_dsn: str,
) -> None:
    """A restart re-reads the venue's (already spent) cash and replays the journaled fills: its
    PnL, hence the account's equity and high-water mark, must not jump by what it holds."""
    async with asyncpg.create_pool(ledger_dsn, min_size=1, max_size=2) as pool:
        a, b = await _shards(pool, 2, RiskLimits(max_drawdown=0.5))
        fill = JournaledFill("AAA", Decimal(30), Decimal(100), Decimal(3))
        replay_fills(a.portfolio, [Decimal(1)] * len(SYMBOLS), [fill])
        a.portfolio.cash -= 30 * 100 + 3  # what the venue debited
        a.portfolio.mark(np.array([0]), np.array([110.0]))
        await a.ledger.sync(1, a.risk)
        await b.ledger.sync(1, b.risk)
        before = (await a.ledger.status())["account"]
        assert before["equity"] == pytest.approx(CASH + 300 - 3)
        # restart: the venue's quote balance, then the journal's fills (cash kept)
        again = make_shard(pool, a.ledger.account, "s0", RiskLimits(max_drawdown=0.5))
        again.portfolio.cash = again.portfolio.initial_cash = CASH - 3_003
        replay_fills(again.portfolio, [Decimal(1)] * len(SYMBOLS), [fill])
        again.portfolio.mark(np.array([0]), np.array([110.0]))
        await again.ledger.open(again.portfolio.cash)
        await again.ledger.sync(2, again.risk)
        after = (await a.ledger.status())["account"]
        assert after["equity"] == pytest.approx(before["equity"])
        assert after["high_water_mark"] == pytest.approx(before["high_water_mark"])
        # the ledger's cash (base + every shard's cash flow) against the venue's balance
        assert await again.ledger.check_cash(CASH - 3_003, tolerance=1e-6) == pytest.approx(0)
        assert await again.ledger.check_cash(CASH - 3_053, tolerance=1e-6) == pytest.approx(-50)
        row = (await a.ledger.status())["account"]
        assert row["cash_diff"] == pytest.approx(-50) and row["cash_checked_by"] == "s0"


async def test_a_shards_own_halt_halts_the_account_and_one_resume_clears_both(
    ledger_dsn: str,
) -> None:
    async with asyncpg.create_pool(ledger_dsn, min_size=1, max_size=2) as pool:
        a, b = await _shards(pool, 2, RiskLimits())
        a.risk.on_journal(1, JournalHealth.LOST)  # a's own reason, decided in a's engine
        await a.ledger.sync(2, a.risk)
        account = (await a.ledger.status())["account"]
        assert account["state"] == "HALTED" and account["halted_by"] == "s0"
        assert "journal lost data" in account["halt_reason"]
        await b.ledger.sync(3, b.risk)
        assert b.risk.state is TradingState.HALTED and b.risk.flatten_pending
        await b.ledger.resume(4, "operator resume")
        a.risk.on_journal(5, JournalHealth.OK)
        for s in (a, b):  # a still HALTED in its engine when it syncs: the resume wins
            await s.ledger.sync(6, s.risk)
        assert [s.risk.state for s in (a, b)] == [TradingState.ACTIVE] * 2
        assert (await a.ledger.status())["account"]["state"] == "ACTIVE"
