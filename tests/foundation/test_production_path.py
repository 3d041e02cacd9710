"""The production path end to end, on 1-minute bars of one Coinbase product.

Exchange history comes from a local stand-in of the Coinbase REST candles API (a real HTTP server
on 127.0.0.1 speaking ``GET /products/{id}/candles``, :class:`FakeCoinbase`) → ``market_bars``
(a real Dagster run, the Coinbase REST source pointed at the stand-in) → features → training →
the gate → MLflow registration (real server) → promotion by the demo's rule → the live runner
(``rrr live run``) trading that product from the replay exchange (``rrr exchange serve --bars
coinbase/1m``, lockstep, paper venue) on the held-out minutes → the journal, the order store and
the venue's own account agree. See ``docs/production-path.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import click
import dagster as dg
import httpx
import pandas as pd
import pytest

from rrr_live.config import Settings
from rrr_live.exchange.paper.auth import ApiKeys
from rrr_live.models import verdict as rule
from rrr_live.persistence.urls import ServerAddress
from rrr_pipelines.defs.market_data.assets import market_bars, market_bars_staging
from rrr_pipelines.defs.ml.assets import ensemble_model, features, training_set, walk_forward
from rrr_pipelines.defs.ml.evaluation import (
    model_evaluation,
    promotion_gate,
    registered_baseline,
    registered_model,
)
from rrr_pipelines.defs.ml.resources import MlflowResource, PromotionGateResource
from rrr_pipelines.defs.resources import DatabaseResource, ParquetIOManager
from rrr_pipelines.demo import holdout_of, model_story, read_run, shadow_failed_ensemble
from rrr_pipelines.demo_live import (
    CONTROL_TOKEN_ENV,
    VENUE_KEY_ENV,
    VENUE_SECRET_ENV,
    LiveOptions,
    LivePlan,
    exchange_argv,
    run_live,
)
from rrr_pipelines.lib.model_registry import ModelRegistry
from rrr_pipelines.lib.sources.fakes import FakeCoinbase
from rrr_pipelines.lib.sources.synthetic import SyntheticSource
from tests.live.paper.kit import Client
from tests.live.parity.runner_live import runner_env

# Two products: the feature spec ranks symbols against each other (a universe of one has no
# cross-section); the synthetic universe's two factor-linked paths, named as Coinbase spells them.
PRODUCTS = {"SYN0000": "BTC-USD", "SYN0001": "ETH-USD"}
SEED = 20250303
# Three UTC days of minutes in a closed year (the 2025 partition), ending at a midnight.
HISTORY = (datetime(2025, 3, 3, tzinfo=UTC), datetime(2025, 3, 6, tzinfo=UTC))
DATA = {"source": "coinbase", "interval": "1m"}
INGEST_CONFIG = {
    "source": "coinbase", "interval": "1m", "symbols": sorted(PRODUCTS.values()),
    "window_start": HISTORY[0].isoformat(), "window_end": HISTORY[1].isoformat(),
}  # fmt: skip
# Small and fast: one epoch per member, two walk-forward folds of a day each, one process.
TRAIN = {"max_epochs": 1, "accelerator": "cpu"}
ML_CONFIG = {
    "ops": {
        "features": {"config": DATA},
        "training_set": {"config": DATA},
        "ensemble_model": {"config": TRAIN},
        "walk_forward": {"config": {**TRAIN, "period": "6h", "min_train_periods": 4,
                                    "retrain_every": 4, "workers": 1}},
        "model_evaluation": {"config": {**DATA, "live_batch_symbols": 8}},
    }
}  # fmt: skip
ML_CHAIN = [features, training_set, ensemble_model, walk_forward, model_evaluation,
            promotion_gate, registered_model, registered_baseline]  # fmt: skip
REPLAY_MINUTES = 120  # of the held-out minutes, the first two hours trade (time budget)


def exchange_history() -> pd.DataFrame:
    """The stand-in's candles: the project's seeded synthetic 1-minute paths, named as products."""
    bars = SyntheticSource(n_symbols=2, interval="1m", seed=SEED).fetch(*HISTORY)
    return bars.assign(symbol=bars["symbol"].map(PRODUCTS).astype(str), source="coinbase")


def _instance(tmp_path: Path) -> dg.DagsterInstance:
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.from_config(str(home))


def _pipeline(
    instance: dg.DagsterInstance, resources: dict[str, Any], url: str
) -> list[dg.ExecuteInProcessResult]:
    """Ingest from the stand-in, then train, judge and register (two real Dagster runs)."""
    ingest_config = {"ops": {"market_bars_staging": {"config": {**INGEST_CONFIG,
                                                                 "base_url": url}}}}  # fmt: skip
    ingest = dg.materialize([market_bars_staging, market_bars], partition_key="2025",
                            resources=resources, instance=instance,
                            run_config=ingest_config)  # fmt: skip
    ml = dg.materialize(ML_CHAIN, resources=resources, instance=instance, run_config=ML_CONFIG)
    return [ingest, ml]


@pytest.mark.timeout(240)
def test_coinbase_history_to_live_trading_on_one_minute_bars(
    pg_server: ServerAddress, mlflow_tracking_uri: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    env = runner_env(pg_server, tmp_path, monkeypatch)
    storage = tmp_path / "storage"
    monkeypatch.setenv("RRR_STORAGE_DIR", str(storage))
    resources = {
        "database": DatabaseResource(url=env.dsn),
        "io_manager": ParquetIOManager(root=str(storage)),
        "mlflow": MlflowResource(tracking_uri=mlflow_tracking_uri),
        "gate": PromotionGateResource(),  # the documented thresholds, never lowered
    }
    venue = FakeCoinbase(exchange_history())
    with _instance(tmp_path) as instance, venue.serve() as url:
        runs = _pipeline(instance, resources, url)
        outcomes = [read_run(instance, r.run_id) for r in runs]
    assert all(o.ok for o in outcomes), [(o.status, o.failed_steps, o.failed_checks)
                                         for o in outcomes]  # fmt: skip
    # every candle the stand-in served, paged 300 at a time like the venue
    assert {p for p, _ in venue.requests} == {f"/products/{p}/candles" for p in PRODUCTS.values()}
    assert all(q["granularity"] == "60" for _, q in venue.requests)
    published = outcomes[0].materialized["market_bars"]
    assert published["rows"] == 2 * 3 * 24 * 60 and published["interval"] == "1m"
    settings = Settings(home=tmp_path / "home", mlflow_tracking_uri=mlflow_tracking_uri)
    story = model_story(outcomes, settings)
    print(json.dumps(story, default=str, indent=1))
