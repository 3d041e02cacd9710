"""The trader on the real paper venue: bars → features → the registry's model → step → orders."""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rrr_live.features.engine import FeatureEngine
from rrr_live.features.spec import FeatureDef, FeatureSpec
from rrr_live.inference.lifecycle import ModelLifecycle, RunningConfig
from rrr_live.inference.registry_client import RegistryClient
from rrr_live.inference.worker import InferenceWorker
from rrr_live.metrics import Metrics
from rrr_live.models import save_model
from rrr_live.models import verdict as rule
from rrr_live.models.window import RingWindow
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.service.bars import BarBuilder
from rrr_live.service.trader import Trader, TraderParts
from rrr_live.strategy.decision import DecisionStep
from rrr_live.strategy.sizing import Strategy, StrategyConfig
from rrr_live.venue.reconcile import reconcile
from rrr_pipelines.lib.model_registry import ModelRegistry
from tests.live.models.conftest import FEATURE_NAMES, WINDOW, make_ensemble
from tests.live.paper.kit import SYMBOL
from tests.live.venue.kit import BASELINE, broker_on, paper_venue

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

S = 1_000_000_000
SPEC = FeatureSpec("fs-t", tuple(FeatureDef.of(n, "log_return", window=i + 1)
                                 for i, n in enumerate(FEATURE_NAMES)))  # fmt: skip
LOT = Decimal("0.01")
POSITION_LIMIT = 600.0  # quote notional per symbol


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


async def _champion(mlflow_tracking_uri, tmp_path, monkeypatch) -> ModelLifecycle:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    registry = ModelRegistry(mlflow_tracking_uri, model_name=f"trader-{tmp_path.name[:40]}")
    d = tmp_path / "model"
    spec = {**SPEC.to_dict(), "fingerprint": SPEC.fingerprint()}
    save_model(d, make_ensemble(seed=4), feature_spec=spec,
               metadata={"universe": [SYMBOL], "bar_interval": "1s"})  # fmt: skip
    run_id = registry.log_training_run({}, {}, spec, {}, "abc", d)
    crit = [
        rule.Criterion("sharpe", 1.0, 0.0),
        rule.Criterion("max_drawdown", 0.1, 0.25),
        rule.Criterion("var_99_1d", 0.01, 0.05),
        rule.Criterion("worst_stress_loss", 0.1, 0.5),
    ]
    v = registry.register(run_id, rule.verdict_tags("b", rule.BASELINE_SET, "e", crit)).version
    registry.promote(v, "test", "alice")
    config = RunningConfig(SPEC.fingerprint(), SPEC.names, (SYMBOL,), "1s")
    client = RegistryClient(mlflow_tracking_uri, attempts=2, backoff_s=0.0)
    life = ModelLifecycle(
        client, config, tmp_path / "cache", Metrics(), model_name=registry.model_name
    )
    await life.poll(["champion"])
    return life


@asynccontextmanager
async def trader_rig(mlflow_tracking_uri, orders_dsn, tmp_path, monkeypatch):
    """The registry's champion, the paper venue, a broker and a trader over them."""
    life = await _champion(mlflow_tracking_uri, tmp_path, monkeypatch)
    worker = InferenceWorker(life, max_staleness_ns=5 * S)
    try:
        async with paper_venue() as venue, broker_on(venue, orders_dsn) as rig:
            bid, ask = rig.best()
            portfolio = Portfolio([SYMBOL], 100_000.0, [float(LOT)])
            risk = RiskEngine(RiskLimits(max_position_notional=POSITION_LIMIT, max_drawdown=0.5),
                              portfolio)  # fmt: skip
            strategy = Strategy(StrategyConfig(max_weight=0.005))  # ~500 of 100k equity
            step = DecisionStep(strategy, risk, portfolio, np.zeros(1))
            trader = Trader(TraderParts(
                [SYMBOL], FeatureEngine(SPEC, [SYMBOL]), RingWindow(1, WINDOW, len(SPEC.names)),
                worker, step, rig.broker, "r1", [LOT], SPEC.fingerprint(),
            ))  # fmt: skip
            yield SimpleNamespace(rig=rig, trader=trader, portfolio=portfolio, life=life,
                                  mid=float((bid + ask) / 2), venue=venue)  # fmt: skip
    finally:
        worker.close()
        await life.client.aclose()


def trades(mid: float, seconds: int, seed: int = 11):
    """A few trades per second around ``mid``: ``(symbol, ts_ns, price, qty)``."""
    rng = np.random.default_rng(seed)
    for k in range(seconds):
        for j in range(3):
            yield SYMBOL, k * S + j * 300_000_000, mid * math.exp(0.002 * rng.normal()), 1.0


async def test_trader_orders_on_the_paper_venue_within_limits(
    mlflow_tracking_uri, orders_dsn, tmp_path, monkeypatch
):
    async with trader_rig(mlflow_tracking_uri, orders_dsn, tmp_path, monkeypatch) as t:
        rig, trader, portfolio, venue = t.rig, t.trader, t.portfolio, t.venue
        bars = BarBuilder(S)
        reports = []
        for trade in trades(t.mid, 40):
            closed = bars.on_trade(*trade)
            if closed is not None:
                reports.append(await trader.on_bars([closed]))
                notional = abs(portfolio.position_notional()[0])
                assert notional <= POSITION_LIMIT + 1e-9
        if last := bars.watermark(41 * S):
            reports.append(await trader.on_bars(last))

        orders = [o for r in reports for o in r.orders]
        assert orders and all(o.state == "FILLED" for o in orders)
        assert not any(r.rejected for r in reports)
        # warm-up: no decision before the features and the model window are full
        first = next(r.seq for r in reports if r.orders)
        assert first > SPEC.warmup_bars() + WINDOW - 2
        assert {r.scores.champion_version for r in reports if r.scores} == {"1"}
        for o in orders:  # every order was journaled before it left, then its answer
            assert await rig.broker.store.events(o.client_id) == ["persisted", "FILLED"]
        report = await reconcile(rig.broker, BASELINE)
        assert report.problems == []
        held = await rig.broker.store.positions()
        assert Decimal(str(portfolio.position(SYMBOL))) == held.get("SYN0000", 0)
        assert len(venue.paper.account.orders) == len(orders)
