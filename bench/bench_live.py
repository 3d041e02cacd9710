"""Live runner latency: tick -> decision over the replay exchange and its paper venue.

For each (symbols, frames/s) pair the replay exchange runs in its own process (bars of 1 second
expanded into depth diffs and trades, free clock: paced at the frame rate, never waiting for
decisions, ``send_time`` on) with its paper venue, on a throw-away embedded PostgreSQL.

``--path runner`` (default): ``run_live`` from a TOML file, exactly what ``rrr live run`` runs
(MLflow champion, feed adapter, intake, trader, broker and order store, both journals, warm-up
from ``market_bars``); per-batch times from ``runner_batches``. The tape starts after a silent
lead-in (6 s + 10 ms per symbol) so start-up is not measured. ``--path slice``: the same pieces
wired here (parser, books, ``BarBuilder``, ``Trader``, broker, store), no adapter or journals.

* **tick -> decision** (ARCHITECTURE's definition): from the server send time
  (``rrr_send_ns``, monotonic, same host) of the frame that releases the batch to the moment
  the batch's first order leaves the risk engine, or, for a batch without an order, the
  decision is made; the first 3 batches are not measured. p50 / p95 / p99 / p99.9 and
  decisions/s. A runner slower than the bar rate builds a backlog: the latency then grows with
  the run (free clock), which is what it would do live.
* **venue ack**: an order handed to the venue (WebSocket API) to its answer, per order.
* **floor**: in this process, no network: parse + book of the frames that release one batch,
  bar close, features, forward and decision step, per batch (and each stage's p50).

Model: a seeded MLP + LSTM + transformer ensemble (the saver). Sizing rebalances past
``--rebalance`` of the weight cap: 10-30 % of the symbols order per bar (printed). The paper
venue's order-rate limits are lifted (Binance's would throttle, not measure). CPU by default
(``--device auto``: CUDA when present); ``--seconds`` per pair.

    python bench/bench_live.py [--seconds 8] [--symbols 10,100,1000] [--rates 1000,10000]
        [--path runner|slice] [--device cpu|cuda|auto] [--out bench_live.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import live_runner
from bench.live_rig import (
    LOT,
    SPEC,
    TICK,
    WINDOW,
    Intake,
    LocalRegistry,
    S,
    TimedBroker,
    bars_for,
    closed_bars,
    save_bench_model,
    symbols_of,
    tape_for,
    update_features,
)
from rrr_live.clock import SimulatedClock
from rrr_live.domain.instrument import Instrument
from rrr_live.exchange.bars import Bar
from rrr_live.exchange.paper.auth import ApiKeys
from rrr_live.exchange.paper.limits import RateLimits
from rrr_live.exchange.paper.venue import PaperConfig
from rrr_live.exchange.server import ExchangeServer
from rrr_live.exchange.tape import BOOK_ONLY, TapeEvent
from rrr_live.features.engine import FeatureEngine
from rrr_live.feeds.binance_wire import BinanceParser
from rrr_live.inference.lifecycle import ModelLifecycle, RunningConfig
from rrr_live.inference.worker import InferenceWorker
from rrr_live.metrics import Metrics
from rrr_live.models import RingWindow, load_model
from rrr_live.models import verdict as rule
from rrr_live.persistence.migrate import migrate
from rrr_live.persistence.server import ensure_databases, start_embedded, stop_embedded
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.service.trader import Trader, TraderParts
from rrr_live.strategy.decision import DecisionBatch, DecisionStep, OpenOrders
from rrr_live.strategy.sizing import Strategy, StrategyConfig
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.rest import Credentials, RestConfig, SignedRest
from rrr_live.venue.store import OrderStore
from tests.kit import services

WARM_BATCHES = 3  # not measured: the process's first forward passes and connections
PCTS = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))


def note(what: str) -> None:
    """Progress on stderr (long runs show progress)."""
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def serve_main(n: int, first: int, n_bars: int, speed: float, lead_s: float) -> None:
    """The exchange process: serve the tape with the paper venue; print the port; run.

    The first books are stamped ``lead_s`` (wall, at ``speed``) before the first frame, so the
    runner's start (depth snapshots, warm-up) is over before the paced frames begin.
    """
    keys = ApiKeys(os.environ["BENCH_KEY"], os.environ["BENCH_SECRET"])
    syms = symbols_of(n)
    balances = {"USDT": Decimal(10**12), **{s: Decimal(10**9) for s in syms}}

    async def run() -> None:
        # Binance's default 100 orders per 10 s would throttle the bench, not measure it
        limits = RateLimits(weight_per_minute=10**9, orders_per_10s=10**9, orders_per_day=10**9)
        tape = tape_for(n, first, n_bars)
        events = list(tape.events)
        k = next(i for i, e in enumerate(events) if e.channel != BOOK_ONLY)
        lead_ts = events[k].ts_ns - int(lead_s * speed * S)
        for e in events[:k]:  # the first books, then a frame nobody subscribes to, then paced
            e.ts_ns = lead_ts
        tape.events = [*events[:k], TapeEvent(lead_ts, syms[0], "rrr_lead", b"{}"), *events[k:]]
        server = ExchangeServer(tape, speed=speed, send_time=True,
                                paper=PaperConfig(keys, balances, limits=limits))  # fmt: skip
        async with server as ex:
            print(ex.http_url, flush=True)
            await ex.finished()
            await asyncio.sleep(3600)  # keep answering REST until the parent ends us

    asyncio.run(run())


@contextlib.contextmanager
def exchange_process(
    n: int, first: int, n_bars: int, speed: float, keys: ApiKeys, lead_s: float = 0.0
) -> Any:
    """Start the exchange process; yield its base URL; stop it."""
    env = {**os.environ, "BENCH_KEY": keys.api_key, "BENCH_SECRET": keys.secret}
    argv = [sys.executable, __file__, "--serve", str(n), str(first), str(n_bars), str(speed),
            str(lead_s)]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"exchange process did not start (said {url!r})")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------------------ the runner side
def make_trader(syms: list[str], worker: InferenceWorker, broker: Any, rebalance: float) -> Trader:
    """The runner's trader: linear sizing, 0.5 gross; rebalances past ``rebalance`` of the cap."""
    n = len(syms)
    portfolio = Portfolio(syms, 1e7, [float(LOT)] * n)
    strategy = Strategy(StrategyConfig(mode="linear", score_scale=2.0, max_weight=0.5 / n,
                                       max_gross_leverage=0.5,
                                       rebalance_threshold=rebalance * 0.5 / n))  # fmt: skip
    risk = RiskEngine(RiskLimits(max_position_notional=1e7, max_drawdown=0.5), portfolio)
    step = DecisionStep(strategy, risk, portfolio, np.zeros(n))
    return Trader(TraderParts(syms, FeatureEngine(SPEC, syms), RingWindow(n, WINDOW, len(SPEC.names)),
                              worker, step, broker, "bench", [LOT] * n, SPEC.fingerprint()))  # fmt: skip


@dataclass
class Run:
    """What one (symbols, rate) run measured."""

    latency_ms: list[float] = field(default_factory=list)
    orders_per_batch: list[int] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)
    acks_ms: list[float] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)  # the trader's time per batch
    frames: int = 0
    wall_s: float = 0.0
    seconds: float = 0.0
    started: float = 0.0
    until: float = float("inf")
    intake_frames: Any = None


async def warm_runner(trader: Trader, history: list[Bar]) -> None:
    """The runner's warm-up: features and windows from history bars (no decisions)."""
    for batch in closed_bars(history):
        idx = np.array([trader.index[b.symbol] for b in batch], dtype=np.int64)
        trader._features(batch, idx)  # the trader's own feature path


async def consume(ws: Any, intake: Intake, queue: asyncio.Queue[Any], run: Run) -> None:
    """Intake task: read frames until ``run.until`` (monotonic s); queue complete batches."""
    while time.monotonic() < run.until:
        try:
            wait = max(0.01, min(run.until - time.monotonic(), 30))
            raw = await asyncio.wait_for(ws.recv(), wait)
        except TimeoutError:
            break
        batch = intake.on_frame(raw)
        if batch is not None:
            send_ns = int(json.loads(raw)["rrr_send_ns"])
            await queue.put((send_ns, batch))
    await queue.put(None)


async def decide(trader: Trader, broker: TimedBroker, queue: asyncio.Queue[Any], run: Run) -> None:
    """Trader task: one batch at a time; tick -> decision per batch (after the warm batches)."""
    seen = 0
    while (item := await queue.get()) is not None:
        send_ns, batch = item
        broker.first_ns, acks = 0, len(broker.acks_ms)
        begun = time.monotonic_ns()
        report = await trader.on_bars(batch)
        decided = broker.first_ns or time.monotonic_ns()
        run.batch_ms.append((time.monotonic_ns() - begun) / 1e6)
        seen += 1
        if seen <= WARM_BATCHES:  # first forward passes, first connections
            del broker.acks_ms[acks:]
            del run.batch_ms[-1:]
            if seen == WARM_BATCHES:  # the measured window starts now
                run.started = time.monotonic()
                run.until = run.started + run.seconds
                run.frames = -run.intake_frames()
            continue
        run.latency_ms.append((decided - send_ns) / 1e6)
        run.orders_per_batch.append(len(report.orders))


async def runner_side(url: str, keys: ApiKeys, dsn: str, model_dir: Path, n: int, warm: int,
                      seconds: float, device: str, rebalance: float) -> Run:  # fmt: skip
    """Connect the runner's path to the exchange process; measure ``seconds`` of trading."""
    import asyncpg
    from websockets.asyncio.client import connect

    syms = symbols_of(n)
    insts = {s: Instrument.create(s, str(TICK), str(LOT), "0") for s in syms}
    config = RunningConfig(SPEC.fingerprint(), SPEC.names, tuple(syms), "1s")
    life = ModelLifecycle(LocalRegistry(model_dir), config, model_dir.parent / "cache",  # type: ignore[arg-type]
                          Metrics(), device=device)  # fmt: skip
    await life.poll([rule.CHAMPION])
    worker = InferenceWorker(life, max_staleness_ns=5 * S)
    clock = SimulatedClock(0)
    creds = Credentials(keys.api_key, keys.secret)
    rest = SignedRest(RestConfig(url, timeout_s=10.0), creds, clock)
    run = Run(seconds=seconds)
    try:
        async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:
            await rest.sync_time()
            store = OrderStore(pool, "bench", "paper", clock)
            broker = TimedBroker(BinanceBroker(rest, store, {s: (s, "USDT") for s in syms}))
            trader = make_trader(syms, worker, broker, rebalance)
            await warm_runner(trader, bars_for(syms, 0, warm))
            note(f"{n} symbols: features warmed from {warm} history bars; trading")
            intake = Intake(syms, insts, BinanceParser(insts))
            ws_url = url.replace("http://", "ws://") + "/stream"
            async with connect(ws_url, max_size=2**24, max_queue=None) as ws:
                streams = [f"{s.lower()}@{k}" for s in syms for k in ("depth", "trade")]
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}))
                queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
                run.intake_frames = lambda: intake.frames
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(consume(ws, intake, queue, run), name="intake")
                    tg.create_task(decide(trader, broker, queue, run), name="trader")
                run.wall_s = time.monotonic() - run.started if run.started else 0.0
            run.frames += intake.frames
            run.acks_ms = broker.acks_ms
    finally:
        worker.close()
        await rest.close()
    return run


def floor(
    model_dir: Path, n: int, warm: int, n_batches: int, device: str
) -> dict[str, list[float]]:
    """In-process, per batch: parse + book of the closing frames, bars, features, forward, step.

    Returns:
        Milliseconds per batch: ``total`` and each stage.
    """
    syms = symbols_of(n)
    insts = {s: Instrument.create(s, str(TICK), str(LOT), "0") for s in syms}
    model = load_model(model_dir, device=device)
    engine, window = FeatureEngine(SPEC, syms), RingWindow(n, WINDOW, len(SPEC.names))
    for batch in closed_bars(bars_for(syms, 0, warm)):
        feats = update_features(engine, batch)
        finite = np.isfinite(feats).all(axis=1)
        window.push(feats[finite], np.flatnonzero(finite))
    portfolio = Portfolio(syms, 1e7, [float(LOT)] * n)
    step = DecisionStep(Strategy(StrategyConfig(mode="linear", max_weight=0.5 / n)),
                        RiskEngine(RiskLimits(max_drawdown=0.5), portfolio), portfolio,
                        np.zeros(n))  # fmt: skip
    intake = Intake(syms, insts, BinanceParser(insts))
    out: dict[str, list[float]] = {}
    events = [e for e in tape_for(n, warm, n_batches + 2).events if e.channel != BOOK_ONLY]
    for _, group in itertools.groupby(events, key=lambda e: e.ts_ns):
        # the frames of one event time; the batch is released by the first trades past the close
        frames = [b'{"stream":"%s@%s","data":%s}' % (e.symbol.lower().encode(),
                  e.channel.encode(), e.payload) for e in group]  # fmt: skip
        t0 = time.perf_counter_ns()
        done = [b for b in map(intake.on_frame, frames) if b]
        if not done:
            continue
        batch = sorted(done[0], key=lambda b: b.symbol)
        t1 = time.perf_counter_ns()
        window.push(update_features(engine, batch), np.arange(n))
        wins = window.windows(np.arange(n))
        t2 = time.perf_counter_ns()
        with torch.inference_mode():
            forecast = model.predict(None, wins)
        t3 = time.perf_counter_ns()
        w = step.strategy.base_weights(np.asarray(forecast, dtype=np.float64), None)
        prices = np.array([b.close for b in batch])
        step.run(DecisionBatch(batch[0].end_ns, np.arange(n), prices, w), OpenOrders.empty(n))
        t4 = time.perf_counter_ns()
        for key, a, b in (("total", t0, t4), ("parse_book_bars", t0, t1), ("features", t1, t2),
                          ("forward", t2, t3), ("step", t3, t4)):  # fmt: skip
            out.setdefault(key, []).append((b - a) / 1e6)
    return out


# ------------------------------------------------------------------------------------ reporting
def pct(values: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 / p99.9 and n."""
    if not values:
        return {**{k: float("nan") for k, _ in PCTS}, "n": 0}
    arr = np.asarray(values)
    return {**{k: round(float(np.percentile(arr, q)), 3) for k, q in PCTS}, "n": len(values)}


def hardware() -> dict[str, Any]:
    """CPU model, cores, load average, torch device."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return {"cpu": model, "cores": os.cpu_count(), "cuda": cuda, "torch": torch.__version__,
            "load_avg": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip


FRAMES_PER_SYMBOL_BAR = 8  # four book diffs and four trades per bar


def one_config(n: int, rate: float, args: argparse.Namespace, ctx: Ctx) -> dict[str, Any]:
    """Run the exchange process and the runner for one (symbols, frames/s) pair."""
    warm = SPEC.warmup_bars() + WINDOW + 2
    bars_per_s = rate / (FRAMES_PER_SYMBOL_BAR * n)
    seconds = max(args.seconds, args.min_batches / bars_per_s)  # slow bar rates: a few batches
    startup = 0.0 if args.path == "slice" else 6.0 + n / 100  # depth snapshots, warm-up
    n_bars = int(seconds * bars_per_s) + WARM_BATCHES + 2
    model_dir = save_bench_model(ctx.tmp / f"model-{n}-{int(rate)}" / "m", symbols_of(n))
    keys = ApiKeys(secrets.token_hex(8), secrets.token_hex(24))
    note(f"{n} symbols at {rate:.0f} frames/s: {n_bars} bars; starting the exchange")
    with exchange_process(n, warm, n_bars, bars_per_s, keys, startup) as url:
        if args.path == "slice":
            run = asyncio.run(runner_side(url, keys, ctx.dsn, model_dir, n, warm, seconds,
                                          ctx.device, args.rebalance))  # fmt: skip
        else:
            max_s = startup + (n_bars + 2) / bars_per_s  # the lead, the tape, a margin
            run = assembled(url, keys, ctx, model_dir, n, rate, warm, max_s, startup, args)
    note(f"{n} symbols at {rate:.0f} frames/s: {len(run.latency_ms)} batches; the floor")
    floor_ms = floor(model_dir, n, warm, min(args.floor_batches, n_bars), ctx.device)
    ordering = [k / n for k in run.orders_per_batch]
    return {
        "symbols": n, "target_frames_per_s": rate, "device": ctx.device, "path": args.path,
        "seconds": round(seconds, 1),
        "frames_per_s": round(run.frames / run.wall_s, 1) if run.wall_s else 0.0,
        "decisions_per_s": round(len(run.latency_ms) / run.wall_s, 2) if run.wall_s else 0.0,
        "tick_to_decision_ms": pct(run.latency_ms), "venue_ack_ms": pct(run.acks_ms),
        "floor_ms": pct(floor_ms.get("total", [])),
        "floor_stages_p50_ms": {k: pct(v)["p50"] for k, v in floor_ms.items() if k != "total"},
        "batch_ms": pct(run.batch_ms),
        "tick_to_decision_series_ms": [round(x, 1) for x in run.latency_ms],  # in batch order
        "ordering_share": round(float(np.mean(ordering)), 3) if ordering else 0.0,
        "min_ordering_share": round(float(np.min(ordering)), 3) if ordering else 0.0,
    }  # fmt: skip


@dataclass
class Ctx:
    """What every pair shares: the database, MLflow, a scratch folder, the device."""

    address: Any
    dsn: str
    uri: str
    tmp: Path
    device: str


def assembled(url: str, keys: ApiKeys, ctx: Ctx, model_dir: Path, n: int, rate: float,
              warm: int, max_s: float, lead_s: float, args: argparse.Namespace) -> Run:  # fmt: skip
    """The assembled runner (``run_live``) for ``max_s``; its journaled batches as a Run."""
    name = f"b{n}-{int(rate)}"
    live_runner.register(ctx.uri, model_dir, f"bench-{name}")
    asyncio.run(live_runner.publish(ctx.dsn, bars_for(symbols_of(n), 0, warm)))
    live_runner.environment(ctx.address, ctx.tmp / "home", keys)
    folder = ctx.tmp / name
    folder.mkdir()
    cfg = live_runner.toml(folder / "runner.toml", name, url, ctx.uri, f"bench-{name}", max_s,
                           ctx.device, 0.5 / n, args.rebalance, lead_s + 10.0)  # fmt: skip
    rows = [r for r in live_runner.runner_batches(cfg, ctx.dsn)[WARM_BATCHES:] if r["send"]]
    summary = json.loads((folder / "summary.json").read_text())
    run = Run(frames=int(summary["frames"]))
    for r in rows:
        run.latency_ms.append((r["decided"] - r["send"]) / 1e6)
        run.orders_per_batch.append(r["orders"])
        run.acks_ms.extend((b - a) / 1e6 for a, b in r["acks"])
    if len(rows) > 1:
        run.wall_s = (rows[-1]["decided"] - rows[0]["decided"]) / 1e9
        # frames/s over the paced part (after the lead): frames / that time, as a wall rate
        run.frames = int(run.frames * run.wall_s / max(max_s - lead_s, 1e-9))
    return run


def table(rows: list[dict[str, Any]]) -> str:
    """The printed table."""
    head = (f"{'sym':>5} {'fr/s tgt':>9} {'fr/s':>8} {'dec/s':>6} {'t->d p50':>9} {'p95':>8} "
            f"{'p99':>8} {'p99.9':>8} {'n':>4} {'ack p50':>8} {'ack p95':>8} {'floor p50':>9} "
            f"{'p95':>7} {'order%':>6}")  # fmt: skip
    lines = [head]
    for r in rows:
        t, a, f = r["tick_to_decision_ms"], r["venue_ack_ms"], r["floor_ms"]
        lines.append(
            f"{r['symbols']:>5} {r['target_frames_per_s']:>9.0f} {r['frames_per_s']:>8.0f} "
            f"{r['decisions_per_s']:>6.2f} {t['p50']:>9.2f} {t['p95']:>8.2f} {t['p99']:>8.2f} "
            f"{t['p999']:>8.2f} {t['n']:>4} {a['p50']:>8.2f} {a['p95']:>8.2f} {f['p50']:>9.2f} "
            f"{f['p95']:>7.2f} {100 * r['ordering_share']:>6.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse the options, run every pair, print the table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="trading seconds per pair")
    ap.add_argument("--symbols", default="10,100,1000")
    ap.add_argument("--rates", default="1000,10000", help="frames/s (50000: the stretch)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    ap.add_argument("--rebalance", type=float, default=0.6, help="threshold / weight cap")
    ap.add_argument(
        "--path",
        default="runner",
        choices=("runner", "slice"),
        help="runner: run_live from TOML; slice: the trader wired in this file",
    )
    ap.add_argument("--min-batches", type=int, default=3, help="measured batches at least")
    ap.add_argument("--floor-batches", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", type=Path, default=Path("bench_live.json"))
    ap.add_argument("--serve", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        n, first, n_bars, speed, lead = args.serve
        serve_main(int(n), int(first), int(n_bars), float(speed), float(lead))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally: stop PostgreSQL
    torch.set_num_threads(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    start = hardware()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        pgdata = Path(tmp) / "pg"
        address = start_embedded(pgdata)
        try:
            ensure_databases(address, ["bench", "mlflow"])
            migrate(address.url("bench"))
            with contextlib.ExitStack() as stack:
                uri = ""
                if args.path == "runner":
                    (Path(tmp) / "mlflow").mkdir()
                    uri = stack.enter_context(services.mlflow_server(
                        address.url("mlflow", "psycopg2"), Path(tmp) / "mlflow"))  # fmt: skip
                ctx = Ctx(address, address.url("bench"), uri, Path(tmp), device)
                for n in (int(x) for x in args.symbols.split(",")):
                    for rate in (float(x) for x in args.rates.split(",")):
                        rows.append(one_config(n, rate, args, ctx))
                        print(table(rows[-1:]).splitlines()[-1], flush=True)
        finally:
            stop_embedded(pgdata)
    result = {"hardware_start": start, "load_avg_end": hardware()["load_avg"],
              "seconds": args.seconds, "path": args.path, "results": rows}  # fmt: skip
    hw = f"{start['cpu']} x{start['cores']} {start['cuda'] or 'no CUDA'}"
    print(f"hardware: {hw}; load {start['load_avg']} -> {result['load_avg_end']}")
    print(table(rows))
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
