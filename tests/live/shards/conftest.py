"""Fixtures of the shard tests: a fresh migrated database (asyncpg DSN) and shard builders."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import numpy as np
import pytest

from rrr_live.persistence.urls import ServerAddress
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.service.app import LiveService
from rrr_live.shards.ledger import RiskLedger
from rrr_live.strategy.decision import Decision, DecisionStep
from rrr_live.strategy.sizing import Strategy, StrategyConfig
from tests.kit import services

SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
CASH = 10_000.0


@pytest.fixture(scope="module")
def ledger_dsn(pg_server: ServerAddress) -> str:
    """One fresh, migrated database per test module (tests use their own account names)."""
    url = services.fresh_database(pg_server, prefix="ledger")
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


@pytest.fixture
def live_services(monkeypatch: pytest.MonkeyPatch) -> list[LiveService]:
    """Every in-process runner service started in the test, in start order."""
    started: list[LiveService] = []
    run = LiveService.run

    async def tracked(self: LiveService) -> int:
        started.append(self)
        return await run(self)

    monkeypatch.setattr(LiveService, "run", tracked)
    return started


@dataclass
class Shard:
    """One shard's rule objects and its ledger handle."""

    ledger: RiskLedger
    step: DecisionStep

    @property
    def risk(self) -> RiskEngine:
        """The shard's risk engine."""
        return self.step.risk

    @property
    def portfolio(self) -> Portfolio:
        """The shard's portfolio."""
        return self.step.portfolio

    def fill(self, d: Decision) -> None:
        """Fill every approved order of ``d`` at its reference price (no fee)."""
        ok = d.codes == 0
        if np.count_nonzero(ok):
            self.portfolio.apply_fills(d.sym[ok], d.lots[ok], d.ref[ok], np.zeros(int(ok.sum())))


def make_shard(
    pool: asyncpg.Pool, account: str, name: str, limits: RiskLimits, **kw: object
) -> Shard:
    """A shard over ``SYMBOLS`` with ``CASH``, every symbol marked at 100."""
    port = Portfolio(SYMBOLS, CASH)
    port.mark(np.arange(len(SYMBOLS)), np.full(len(SYMBOLS), 100.0))
    port.update_high_water_mark()
    risk = RiskEngine(limits, port)
    step = DecisionStep(Strategy(StrategyConfig()), risk, port, np.zeros(len(SYMBOLS)))
    return Shard(RiskLedger(pool, account, name, limits, **kw), step)  # type: ignore[arg-type]


def orders(ts_ns: int, shard: Shard, lots: dict[int, int]) -> Decision:
    """A decision of approved market orders ``{symbol index: signed lots}`` at the marks."""
    port = shard.portfolio
    d = Decision(ts_ns, shard.risk.state, *port.valuation())
    sym = np.array(sorted(lots), dtype=np.int64)
    d.sym, d.lots = sym, np.array([lots[s] for s in sym.tolist()], dtype=np.int64)
    d.ref = port.marks()[sym]
    d.codes = np.zeros(len(sym), dtype=np.int8)
    d.batch_pos = np.arange(len(sym), dtype=np.int64)
    return d
