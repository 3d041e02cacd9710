"""One recording, one model, the assembled-runner runs shared by the parity tests.

The runs are expensive (real MLflow, PostgreSQL, websockets), so the package runs them once:
``a`` is the run the backtest is compared with (and ``parity_report`` reads clean), ``b`` the same
recording again (determinism; ``parity_report``'s altered-fill check changes its journal), and
``warm_run`` one that warms up on published bars before the recording (``parity_report`` only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import torch

from rrr_live.config import get_settings
from rrr_live.exchange.tape import Tape
from rrr_live.persistence.urls import ServerAddress
from tests.live.parity.kit import Outcome, S, recording, recording_bars, save_parity_model
from tests.live.parity.runner_live import RunnerEnv, register_champion, run_assembled_runner
from tests.live.parity.runner_live import runner_env as make_env

SYMBOLS = ["AAA", "BBB", "CCC"]


@dataclass
class RunnerRun:
    """One assembled-runner run: its database, configuration file and journaled records."""

    env: RunnerEnv
    toml: Path
    outcome: Outcome


@dataclass
class ParityRuns:
    """The shared recording, model and the two runs."""

    tape: Tape
    model_dir: Path
    registry_uri: str
    a: RunnerRun
    b: RunnerRun


@pytest.fixture(scope="package")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded ensemble, saved once."""
    return save_parity_model(tmp_path_factory.mktemp("parity") / "model", SYMBOLS)


def _run(pg: ServerAddress, uri: str, model_dir: Path, tmp: Path, warmup: str = "") -> RunnerRun:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        env = make_env(pg, tmp, mp)
        if warmup:
            asyncio.run(_publish_history(env.dsn, warmup))
        name = f"parity-{tmp.parent.name[:30]}-{tmp.name}"
        register_champion(uri, model_dir, name)
        try:
            outcome = asyncio.run(
                run_assembled_runner(recording(SYMBOLS), env, uri, name, tmp, warmup)
            )
        finally:
            get_settings.cache_clear()
    return RunnerRun(env, tmp / "runner.toml", outcome)


HISTORY_BARS = 40


async def _publish_history(dsn: str, source: str) -> None:
    """Publish the 1-second bars of the 40 seconds before the recording (``market_bars``)."""
    bars = [replace(b, ts_ns=b.ts_ns - HISTORY_BARS * S)
            for b in recording_bars(SYMBOLS, HISTORY_BARS, seed=9)]  # fmt: skip
    con = await asyncpg.connect(dsn)
    try:
        await con.executemany(
            "INSERT INTO market_bars (source, symbol, interval, ts, open, high, low, close,"
            " adj_close, volume) VALUES ($1, $2, '1s', $3, $4, $5, $6, $7, $7, $8)",
            [(source, b.symbol, datetime.fromtimestamp(b.ts_ns / 1e9, tz=UTC), b.open, b.high,
              b.low, b.close, b.volume) for b in bars],
        )  # fmt: skip
    finally:
        await con.close()


@pytest.fixture(scope="package")
def parity_runs(
    model_dir: Path,
    pg_server: ServerAddress,
    mlflow_tracking_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ParityRuns]:
    """Run the assembled runner twice on the recording (one torch thread, as in production)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tmp = tmp_path_factory.mktemp("runs")
        a = _run(pg_server, mlflow_tracking_uri, model_dir, tmp / "a")
        b = _run(pg_server, mlflow_tracking_uri, model_dir, tmp / "b")
        yield ParityRuns(recording(SYMBOLS), model_dir, mlflow_tracking_uri, a, b)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def warm_run(
    model_dir: Path,
    pg_server: ServerAddress,
    mlflow_tracking_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunnerRun]:
    """The runner on the recording after a warm-up on published bars (source ``history``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield _run(pg_server, mlflow_tracking_uri, model_dir, tmp_path_factory.mktemp("warm"),
                   warmup="history")  # fmt: skip
    finally:
        torch.set_num_threads(threads)
