"""Restart mid-run: warm-up rebuilds features equal to an uninterrupted run's; risk state and the
batch sequence survive through the journal (a HALT stays HALTED until resumed)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import numpy as np
import pytest

from rrr_live.features.engine import FeatureEngine
from rrr_live.inference.lifecycle import ModelLifecycle, RunningConfig
from rrr_live.inference.registry_client import RegistryClient
from rrr_live.inference.worker import InferenceWorker
from rrr_live.metrics import Metrics
from rrr_live.models.window import RingWindow
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.risk.state import TradingState
from rrr_live.service.bars import ClosedBar
from rrr_live.service.journal_sink import RunnerJournal
from rrr_live.service.trader import Trader, TraderParts
from rrr_live.service.warmup import WarmupSource, warm_up
from rrr_live.strategy.decision import DecisionStep
from rrr_live.strategy.sizing import Strategy, StrategyConfig
from tests.kit import services
from tests.live.models.conftest import WINDOW
from tests.live.service.runner_kit import SPEC, SYMBOLS, random_bars

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

N, CUT, PUBLISHED_UNTIL = 30, 20, 14


@pytest.fixture
def dsn(pg_server):
    url = services.fresh_database(pg_server, prefix="restart")
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def _trader(tmp_path) -> Trader:
    """A trader with no model served: every batch computes features, none decides."""
    client = RegistryClient("http://127.0.0.1:9")  # never called: nothing is polled
    life = ModelLifecycle(client, RunningConfig(SPEC.fingerprint(), SPEC.names, SYMBOLS, "1s"),
                          tmp_path / "cache", Metrics())  # fmt: skip
    portfolio = Portfolio(list(SYMBOLS), 100_000.0, [0.001] * 3)
    step = DecisionStep(Strategy(StrategyConfig()), RiskEngine(RiskLimits(), portfolio),
                        portfolio, np.zeros(3))  # fmt: skip
    parts = TraderParts(list(SYMBOLS), FeatureEngine(SPEC, list(SYMBOLS)),
                        RingWindow(3, WINDOW, len(SPEC.names)), InferenceWorker(life, 10**18),
                        step, broker=None, prefix="rs", lot_qty=[Decimal("0.001")] * 3,
                        feature_spec=SPEC.fingerprint())  # type: ignore[arg-type]  # fmt: skip
    return Trader(parts)


def _batches() -> list[list[ClosedBar]]:
    groups: dict[int, list[ClosedBar]] = defaultdict(list)
    for b in random_bars(N, seed=9):
        groups[b.ts_ns + b.interval_ns].append(
            ClosedBar(
                b.symbol,
                b.ts_ns,
                b.ts_ns + b.interval_ns,
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume,
                4,
            )
        )
    return [groups[t] for t in sorted(groups)]


def _state(trader: Trader) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(3, dtype=np.int64)
    return (np.asarray(trader.p.engine.features(list(SYMBOLS)), dtype=np.float64),
            np.asarray(trader.p.window.windows(idx), dtype=np.float64))  # fmt: skip


async def _publish(con: asyncpg.Connection, bars: list[ClosedBar]) -> None:
    await con.executemany(
        "INSERT INTO market_bars (source, symbol, interval, ts, open, high, low, close, adj_close,"
        " volume) VALUES ('test', $1, '1s', $2, $3, $4, $5, $6, $6, $7)",
        [(b.symbol, datetime.fromtimestamp(b.start_ns / 1e9, tz=UTC), b.open, b.high, b.low,
          b.close, b.volume) for b in bars],
    )  # fmt: skip


async def test_restart_warm_up_rebuilds_the_uninterrupted_features(dsn, tmp_path):
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as p:
        await _restart(dsn, p, tmp_path)


async def _restart(dsn, p, tmp_path):
    batches = _batches()
    whole = _trader(tmp_path)
    for group in batches[: CUT + 1]:
        await whole.on_bars(group)
    expected = _state(whole)
    assert np.isfinite(expected[0]).all() and np.isfinite(expected[1]).all()

    # the first run: bars up to PUBLISHED_UNTIL are published; the runner journals from 10 on
    # (it started late), and stops after CUT
    async with p.acquire() as con:
        await _publish(con, [b for g in batches[:PUBLISHED_UNTIL] for b in g])
    first = _trader(tmp_path)
    journal = RunnerJournal(p, "rs", "run-1")
    journal.start()
    for k, group in enumerate(batches[:CUT]):
        report = await first.on_bars(group)
        if k >= 10:
            journal.batch(report)
    await journal.close()

    restarted = _trader(tmp_path)
    src = WarmupSource(dsn, "rs", "test", "1s", 1_000_000_000)
    depth = SPEC.warmup_bars() + WINDOW + 1
    report = await warm_up(restarted, p, src, batches[CUT][0].end_ns, depth)
    assert report.journal_bars > 0 and report.published_bars > 0
    assert restarted.last_end_ns == batches[CUT - 1][0].end_ns
    await restarted.on_bars(batches[CUT])  # the next decision
    got = _state(restarted)
    np.testing.assert_allclose(got[0], expected[0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got[1], expected[1], rtol=0, atol=1e-9)

    # without warm-up the same decision would see unfinished features: the test can tell
    cold = _trader(tmp_path)
    await cold.on_bars(batches[CUT])
    assert not np.isfinite(_state(cold)[0]).all()


async def test_halt_survives_a_restart_and_the_batch_sequence_continues(dsn, tmp_path):
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as p:
        await _halt(p, tmp_path)


async def _halt(p, tmp_path):
    batches = _batches()
    first = _trader(tmp_path)
    journal = RunnerJournal(p, "rs", "run-1")
    journal.start()
    for group in batches[:3]:
        journal.batch(await first.on_bars(group))
    risk = first.p.step.risk
    risk.halt(batches[2][0].end_ns, "operator halt")
    journal.risk(batches[2][0].end_ns, risk)
    await journal.close()

    second = _trader(tmp_path)
    journal2 = RunnerJournal(p, "rs", "run-2")
    assert await journal2.restore_risk(second.p.step.risk) == "HALTED"
    assert second.p.step.risk.state is TradingState.HALTED
    assert await journal2.last_seq() == 3
    other = RunnerJournal(p, "another", "run-3")  # another runner's state is its own
    assert await other.restore_risk(_trader(tmp_path).p.step.risk) is None
    second.p.step.risk.resume(batches[3][0].end_ns)
    assert second.p.step.risk.state is not TradingState.HALTED
    assert not math.isnan(second.p.step.portfolio.equity())
