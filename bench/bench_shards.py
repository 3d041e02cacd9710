"""Scale-out: tick -> decision latency of 1, 2, 4 runner shards splitting one universe.

For each shard count ``k`` the replay exchange (with its paper venue) serves the whole universe
in its own process, free clock, paced at ``--bar-rate`` bars/s (8 frames per symbol and bar), and
``k`` runner processes run ``python -m rrr_live --config runner.toml --shard i/k`` (exactly what
``rrr-live@i`` runs: champion from a real MLflow server, feed adapter, intake, trader, broker,
order store, journals on a throw-away embedded PostgreSQL). Each shard subscribes to and trades
only the symbols it owns. Per batch, ``closing_send_ns`` (the exchange's send time of the frame
that releases it) and ``decided_ns`` are read back from ``runner_batches``; the first 3 batches of
each shard are not measured. The tape starts after a silent lead-in long enough for every
process to start (``--lead``; default ``4 + 2 k + symbols / 100`` seconds).

Printed per shard count: p50 / p95 / p99 of all shards' batches together, the worst shard's p99,
batches and orders. When a runner exposes ``rrr_ledger_lock_wait_seconds`` (the portfolio-wide
risk ledger's lock wait) on its ``/metrics``, its count and mean per shard count are printed
too; otherwise "-". On a machine with fewer cores than processes the shards share the cores and
the latency stops improving (or grows): the numbers say where.

    python bench/bench_shards.py [--symbols 1000] [--shards 1,2,4] [--seconds 20] [--bar-rate 1]
        [--out bench_shards.json]

Defaults (``make bench``): 40 symbols, shards 1 and 2, 2 bars/s for 2 seconds (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import live_runner
from bench.bench_live import FRAMES_PER_SYMBOL_BAR, WARM_BATCHES, exchange_process, hardware
from bench.live_rig import SPEC, T0, WINDOW, S, bars_for, save_bench_model, symbols_of
from rrr_live.exchange.paper.auth import ApiKeys
from rrr_live.persistence.migrate import migrate
from rrr_live.persistence.server import ensure_databases, start_embedded, stop_embedded
from tests.kit import services
from tests.kit.services import free_port

LOCK_WAIT = "rrr_ledger_lock_wait_seconds"


def note(what: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def pct(values: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 (ms) and n."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "p99": round(float(np.percentile(a, 99)), 2), "n": len(values)}  # fmt: skip


def lock_wait(text: str) -> tuple[float, float] | None:
    """``(count, sum)`` of the ledger's lock-wait histogram in a /metrics scrape (None: absent)."""
    found = {}
    for suffix in ("count", "sum"):
        m = re.search(rf"^{LOCK_WAIT}_{suffix}(?:{{[^}}]*}})? (\S+)$", text, re.M)
        if m:
            found[suffix] = float(m.group(1))
    return (found["count"], found["sum"]) if len(found) == 2 else None


def scrape(port: int) -> str:
    """One /metrics scrape ("" when the runner does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
            return str(r.read().decode())
    except OSError:
        return ""


async def shard_batches(dsn: str, names: list[str]) -> dict[str, list[dict[str, int]]]:
    """Every shard's journaled batches, oldest first."""
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for name in names:
            rows = await conn.fetch(
                "SELECT closing_send_ns, decided_ns, n_orders FROM runner_batches"
                " WHERE runner = $1 ORDER BY seq", name,
            )  # fmt: skip
            out[name] = [dict(r) for r in rows]
        return out
    finally:
        await conn.close()


async def decided_until(dsn: str, names: list[str]) -> int:
    """The bar close every shard has decided (the least of their last batches; 0: none yet)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT runner, max(ts_ns) AS ts FROM runner_batches WHERE runner = ANY($1)"
            " GROUP BY runner", names,
        )  # fmt: skip
    finally:
        await conn.close()
    return min(r["ts"] for r in rows) if len(rows) == len(names) else 0


def run_shards(k: int, args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    """The exchange process and ``k`` runner processes for one shard count."""
    n = args.symbols
    warm = SPEC.warmup_bars() + WINDOW + 2
    bars_per_s = args.bar_rate
    lead = args.lead if args.lead >= 0 else 4.0 + 2.0 * k + n / 100
    n_bars = int(args.seconds * bars_per_s) + WARM_BATCHES + 2
    max_s = lead + (n_bars + 2) / bars_per_s
    keys = ApiKeys(secrets.token_hex(8), secrets.token_hex(24))
    live_runner.environment(ctx["address"], ctx["tmp"] / "home", keys)
    base = f"b{k}"
    folder = ctx["tmp"] / base
    folder.mkdir()
    metrics = free_port()
    names = [base] if k == 1 else [f"{base}-s{i}of{k}" for i in range(k)]
    note(f"{k} shard(s), {n} symbols: {n_bars} bars at {bars_per_s:.2f}/s after {lead:.0f} s")
    with exchange_process(n, warm, n_bars, bars_per_s, keys, lead) as url:
        cfg = live_runner.toml(folder / "runner.toml", base, url, ctx["uri"], ctx["model"],
                               max_s, "cpu", 0.5 / n, 0.6, lead + 10.0)  # fmt: skip
        cfg.write_text(cfg.read_text() + f"[control]\nmetrics_port = {metrics}\n")
        procs = [subprocess.Popen([sys.executable, "-m", "rrr_live", "--config", str(cfg),
                                   "--shard", f"{i}/{k}"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                                  stdout=subprocess.DEVNULL, stderr=(folder / f"s{i}.log").open("w"))
                 for i in range(k)]  # fmt: skip
        scraped = [""] * k
        # every shard decided the tape's last bars (or its max_seconds passed): SIGTERM
        last_end = T0 + (warm + n_bars - 2) * S
        deadline = time.monotonic() + max_s + 30
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            for i in range(k):  # the last scrape before each runner ends
                scraped[i] = scrape(metrics + i if k > 1 else metrics) or scraped[i]
            if asyncio.run(decided_until(ctx["dsn"], names)) >= last_end:
                break
            time.sleep(0.5)
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
            p.wait(30)
    codes = [p.returncode for p in procs]
    batches = asyncio.run(shard_batches(ctx["dsn"], names))
    every: list[float] = []
    per_shard = {}
    for name, rows in batches.items():
        lat = [(r["decided_ns"] - r["closing_send_ns"]) / 1e6
               for r in rows[WARM_BATCHES:] if r["closing_send_ns"]]  # fmt: skip
        every += lat
        per_shard[name] = {**pct(lat), "orders": sum(r["n_orders"] for r in rows[WARM_BATCHES:])}
    waits = [w for w in map(lock_wait, scraped) if w is not None]
    return {
        "shards": k, "symbols": n, "bars_per_s": bars_per_s, "lead_s": lead,
        "frames_per_s": bars_per_s * FRAMES_PER_SYMBOL_BAR * n,
        "exit_codes": codes, "tick_to_decision_ms": pct(every), "per_shard": per_shard,
        "worst_shard_p99_ms": max((s["p99"] for s in per_shard.values() if s["n"]), default=None),
        "orders": sum(s["orders"] for s in per_shard.values()),
        "ledger_lock_wait": None if not waits else {
            "count": sum(c for c, _ in waits),
            "mean_ms": round(1e3 * sum(t for _, t in waits) / max(1.0, sum(c for c, _ in waits)), 3)},
    }  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    """The printed table."""
    lines = [f"{'shards':>6} {'symbols':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
             f"{'worst p99':>9} {'batches':>7} {'orders':>6} {'lock wait':>14} exits"]  # fmt: skip
    for r in rows:
        t, lw = r["tick_to_decision_ms"], r["ledger_lock_wait"]
        wait = "-" if lw is None else f"{lw['count']:.0f}x {lw['mean_ms']:.2f}ms"
        lines.append(
            f"{r['shards']:>6} {r['symbols']:>7} {t['p50']:>8.2f} {t['p95']:>8.2f} {t['p99']:>8.2f}"
            f" {r['worst_shard_p99_ms'] or float('nan'):>9.2f} {t['n']:>7} {r['orders']:>6}"
            f" {wait:>14} {r['exit_codes']}"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse the options, run every shard count, print the table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=40)
    ap.add_argument("--shards", default="1,2")
    ap.add_argument("--seconds", type=float, default=2.0, help="paced tape seconds per count")
    ap.add_argument("--bar-rate", type=float, default=2.0, help="bars/s (1: real-time 1 s bars)")
    ap.add_argument("--lead", type=float, default=-1.0, help="start-up lead-in s (-1: auto)")
    ap.add_argument("--out", type=Path, default=Path("bench_shards.json"))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally: stop PostgreSQL
    start = hardware()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        pgdata = Path(tmp) / "pg"
        address = start_embedded(pgdata)
        try:
            ensure_databases(address, ["bench", "mlflow"])
            migrate(address.url("bench"))
            (Path(tmp) / "mlflow").mkdir()
            with services.mlflow_server(address.url("mlflow", "psycopg2"),
                                        Path(tmp) / "mlflow") as uri:  # fmt: skip
                syms = symbols_of(args.symbols)
                model_dir = save_bench_model(Path(tmp) / "model" / "m", syms)
                live_runner.register(uri, model_dir, "bench-shards")
                warm = SPEC.warmup_bars() + WINDOW + 2
                asyncio.run(live_runner.publish(address.url("bench"), bars_for(syms, 0, warm)))
                ctx = {"address": address, "dsn": address.url("bench"), "uri": uri,
                       "tmp": Path(tmp), "model": "bench-shards"}  # fmt: skip
                for k in (int(x) for x in args.shards.split(",")):
                    rows.append(run_shards(k, args, ctx))
                    print(table(rows[-1:]).splitlines()[-1], flush=True)
        finally:
            stop_embedded(pgdata)
    result = {"hardware_start": start, "load_avg_end": hardware()["load_avg"],
              "args": {k: str(v) for k, v in vars(args).items()}, "results": rows}  # fmt: skip
    print(
        f"hardware: {start['cpu']} x{start['cores']}; load {start['load_avg']} ->"
        f" {result['load_avg_end']}"
    )
    print(table(rows))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
