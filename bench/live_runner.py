"""The assembled runner under ``bench_live.py``: ``run_live`` from a TOML file, free clock.

The runner is exactly what ``rrr live run`` runs: the champion from a real MLflow server, the
Binance feed adapter (depth sync, books), the intake's batching, the trader, the broker and order
store, the market-data journal and the runner journal, all on a throw-away embedded PostgreSQL.
Warm-up reads the history bars published into ``market_bars`` (source ``bench``). Its per-batch
``closing_send_ns`` / ``decided_ns`` / acks are read back from ``runner_batches``.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.live_rig import SPEC
from rrr_live.config import get_settings
from rrr_live.exchange.bars import Bar
from rrr_live.models import verdict as rule
from rrr_live.persistence.urls import ServerAddress
from rrr_live.service.assemble import run_live
from rrr_live.service.config import load_config
from rrr_pipelines.lib.model_registry import ModelRegistry

SOURCE = "bench"


def register(uri: str, model_dir: Path, name: str) -> None:
    """Register the saved model as a passed version and make it the champion."""
    registry = ModelRegistry(uri, model_name=name)
    spec = {**SPEC.to_dict(), "fingerprint": SPEC.fingerprint()}
    run_id = registry.log_training_run({}, {}, spec, {}, "bench", model_dir)
    crit = [
        rule.Criterion("sharpe", 1.0, 0.0),
        rule.Criterion("max_drawdown", 0.1, 0.25),
        rule.Criterion("var_99_1d", 0.01, 0.05),
        rule.Criterion("worst_stress_loss", 0.1, 0.5),
    ]
    v = registry.register(run_id, rule.verdict_tags("b", rule.BASELINE_SET, "e", crit)).version
    registry.promote(v, "bench", "bench")


async def publish(dsn: str, bars: list[Bar]) -> None:
    """Write the history bars into ``market_bars`` (what the warm-up reads)."""
    rows = [(SOURCE, b.symbol, "1s", datetime.fromtimestamp(b.ts_ns / 1e9, UTC), b.open, b.high,
             b.low, b.close, b.close, b.volume) for b in bars]  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM market_bars WHERE source = $1", SOURCE)
        await conn.copy_records_to_table(
            "market_bars", records=rows,
            columns=["source", "symbol", "interval", "ts", "open", "high", "low", "close",
                     "adj_close", "volume"],
        )  # fmt: skip
    finally:
        await conn.close()


def environment(address: ServerAddress, home: Path, keys: Any) -> None:
    """Point the runner at the bench database, home and venue keys (process environment)."""
    os.environ.update({
        "RRR_HOME": str(home), "RRR_DATABASE_URL": address.url("postgres", "libpq"),
        "RRR_RRR_DB": "bench", "RRR_VENUE_API_KEY": keys.api_key,
        "RRR_VENUE_API_SECRET": keys.secret, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    })  # fmt: skip
    get_settings.cache_clear()


def toml(path: Path, runner: str, url: str, uri: str, name: str, seconds: float, device: str,
         weight: float, rebalance: float, idle_s: float = 10.0) -> Path:  # fmt: skip
    """The runner's configuration for one bench pair (``idle_s``: past the tape's silent lead)."""
    lines = [
        "[runner]", f'name = "{runner}"',
        f'summary_json = "{path.parent / "summary.json"}"', "bar_interval_s = 1", "watermark_s = 2",
        f"max_seconds = {seconds}", f'cache_dir = "{path.parent / "cache"}"',
        f'warmup_source = "{SOURCE}"',
        "[feed]", f'url = "{url.replace("http://", "ws://")}"', "lockstep = false",
        f"idle_timeout_s = {idle_s}",
        "[venue]", f'url = "{url}"', "initial_cash = 10000000.0",
        "[model]", f'registry_url = "{uri}"', f'name = "{name}"', "poll_interval_s = 3600",
        f'device = "{device}"',
        "[strategy]", 'mode = "linear"', "score_scale = 2.0", f"max_weight = {weight}",
        "max_gross_leverage = 0.5", f"rebalance_threshold = {rebalance * weight}",
        "[risk]", "max_position_notional = 10000000.0", "max_drawdown = 0.5",
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


async def run_runner(cfg_path: Path, dsn: str) -> list[dict[str, Any]]:
    """Run the assembled runner to ``max_seconds``; its journaled batches, oldest first."""
    cfg = load_config(cfg_path)
    code = await run_live(cfg)
    if code != 0:
        raise RuntimeError(f"the runner exited {code}")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT closing_send_ns, decided_ns, n_orders, report->'ack_ns' AS acks"
            " FROM runner_batches WHERE runner = $1 ORDER BY seq", cfg.runner.name,
        )  # fmt: skip
    finally:
        await conn.close()
    return [{"send": r["closing_send_ns"], "decided": r["decided_ns"], "orders": r["n_orders"],
             "acks": json.loads(r["acks"] or "[]")} for r in rows]  # fmt: skip


def runner_batches(cfg_path: Path, dsn: str) -> list[dict[str, Any]]:
    """Synchronous :func:`run_runner`."""
    return asyncio.run(run_runner(cfg_path, dsn))
