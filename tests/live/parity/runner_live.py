"""The runner side of the parity test: the assembled runner (``run_live``, what ``rrr live run``
and ``python -m rrr_live`` run).

The replay exchange serves the recording with its paper venue in lockstep; the runner is built
from a TOML file exactly as ``python -m rrr_live --config`` builds it (champion from the MLflow
registry, feed adapter, intake, trader, broker and order store, the runner journal) and runs
until the tape is over. Its canonical records are read back from the journal
by ``parity_report``'s reader (``runner_batches.report``: the decision, its legs and risk codes;
the order store's fills).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from rrr_live.config import get_settings
from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.paper.venue import PaperConfig
from rrr_live.exchange.tape import Tape
from rrr_live.execution.models import FeeModel
from rrr_live.models import verdict as rule
from rrr_live.persistence.journal.replay import read_capture
from rrr_live.persistence.urls import ServerAddress
from rrr_live.service.assemble import run_live
from rrr_live.service.config import load_config
from rrr_live.service.parity import capture_outcome
from rrr_pipelines.lib.model_registry import ModelRegistry
from tests.kit import services
from tests.live.paper.kit import KEYS
from tests.live.parity.kit import (
    INITIAL_CASH,
    LIMITS,
    SPEC,
    STRATEGY,
    TAKER_FEE,
    Outcome,
)

RUNNER = "par"


def register_champion(tracking_uri: str, model_dir: Path, name: str) -> None:
    """Register the saved model in MLflow as a passed version and promote it to champion."""
    registry = ModelRegistry(tracking_uri, model_name=name)
    spec = {**SPEC.to_dict(), "fingerprint": SPEC.fingerprint()}
    run_id = registry.log_training_run({}, {}, spec, {}, "parity", model_dir)
    crit = [
        rule.Criterion("sharpe", 1.0, 0.0),
        rule.Criterion("max_drawdown", 0.1, 0.25),
        rule.Criterion("var_99_1d", 0.01, 0.05),
        rule.Criterion("worst_stress_loss", 0.1, 0.5),
    ]
    v = registry.register(run_id, rule.verdict_tags("b", rule.BASELINE_SET, "e", crit)).version
    registry.promote(v, "parity test", "alice")


def paper_config(symbols: list[str]) -> PaperConfig:
    """The backtest side's taker fee, zero latency; plenty of every asset."""
    balances = {"USDT": Decimal(10**9), **{s: Decimal(10**6) for s in symbols}}
    return PaperConfig(KEYS, balances, fees=FeeModel(maker_rate=0.0, taker_rate=TAKER_FEE))


@dataclass
class RunnerEnv:
    """The runner's database and home (set in the environment by :func:`runner_env`)."""

    dsn: str
    home: Path


def runner_env(pg: ServerAddress, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> RunnerEnv:
    """A fresh migrated database, ``RRR_HOME`` and the venue keys in the environment."""
    tmp.mkdir(parents=True, exist_ok=True)
    url = services.fresh_database(pg, prefix="parity_run")
    db_name = url.rsplit("/", 1)[1].split("?", 1)[0]
    monkeypatch.setenv("RRR_HOME", str(tmp / "home"))
    monkeypatch.setenv("RRR_DATABASE_URL", pg.url("postgres", "libpq"))
    monkeypatch.setenv("RRR_RRR_DB", db_name)
    monkeypatch.setenv("RRR_VENUE_API_KEY", KEYS.api_key)
    monkeypatch.setenv("RRR_VENUE_API_SECRET", KEYS.secret)
    get_settings.cache_clear()
    return RunnerEnv(pg.url(db_name, "libpq"), tmp / "home")


def runner_toml(
    path: Path, exchange_url: str, registry_url: str, model_name: str, warmup_source: str = ""
) -> Path:
    """The runner's configuration: the backtest side's cash, strategy and limits."""
    ws = exchange_url.replace("http://", "ws://")
    strategy = {k: getattr(STRATEGY, k) for k in
                ("mode", "score_scale", "max_weight", "max_gross_leverage")}  # fmt: skip
    lines = [
        "[runner]", f'name = "{RUNNER}"', "bar_interval_s = 1", "watermark_s = 2",
        f'cache_dir = "{path.parent / "cache"}"', f'warmup_source = "{warmup_source}"',
        "[feed]", f'url = "{ws}"', "lockstep = true",
        "[venue]", f'url = "{exchange_url}"', f"initial_cash = {INITIAL_CASH}",
        "[model]", f'registry_url = "{registry_url}"', f'name = "{model_name}"',
        "poll_interval_s = 3600", 'device = "cpu"',
        "[strategy]", *(f"{k} = {json.dumps(v)}" for k, v in strategy.items()),
        "[risk]", f"max_position_notional = {LIMITS.max_position_notional}",
        f"max_drawdown = {LIMITS.max_drawdown}",
        "[journal]", "book = true",
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


async def run_assembled_runner(
    tape: Tape,
    env: RunnerEnv,
    registry_url: str,
    model_name: str,
    tmp: Path,
    warmup_source: str = "",
) -> Outcome:
    """Serve ``tape`` in lockstep, run the assembled runner over it, read its journal."""
    symbols = sorted(tape.symbols)
    async with ExchangeServer(tape, lockstep=True, send_time=True,
                              paper=paper_config(symbols)) as ex:  # fmt: skip
        toml = runner_toml(tmp / "runner.toml", ex.http_url, registry_url, model_name,
                           warmup_source)  # fmt: skip
        cfg = load_config(toml)
        stopper = asyncio.create_task(_stop_when_finished(ex))
        assert await asyncio.wait_for(run_live(cfg), 120) == 0
        await stopper
    return await journal_outcome(env.dsn, symbols)


async def _stop_when_finished(ex: ExchangeServer) -> None:
    await ex.finished()  # every bar acknowledged: the last batch was decided
    os.kill(os.getpid(), signal.SIGTERM)  # the runner's phased shutdown


async def journal_outcome(dsn: str, universe: list[str]) -> Outcome:
    """Canonical records of the runner's journaled batches and fills (``parity_report``'s)."""
    conn = await asyncpg.connect(dsn)
    try:
        cap = await read_capture(conn, RUNNER)
    finally:
        await conn.close()
    assert cap.config["universe"] == universe
    return capture_outcome(cap)
