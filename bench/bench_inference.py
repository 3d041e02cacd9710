"""Ensemble inference latency for 1 / 100 / 1000 symbols (p50 / p95 over many calls).

Usage:
    python bench/bench_inference.py [--device cpu|cuda] [--threads 1,2] [--calls 200]
                                    [--repeats 5] [--sizes 1,100,1000] [--model-dir DIR]
                                    [--features 22] [--window 24] [--no-plain]

Without --model-dir it saves and loads (verified) the demo-sized ensemble with random weights:
latency does not depend on the weight values. It reports, per thread count and batch size, the
full ensemble, the ensemble without the transformer (a typical ``live_members`` choice), the MLP
alone, the volatility member and the ring-buffer push + window gather that precedes inference in
the live batcher.

Each case runs ``--calls`` timed calls per repeat; the repeats of the fast (default) and the
plain path (``Ensemble.plain_inference``: every network's own ``forward``) are interleaved, and
the table shows the minimum over repeats of each repeat's p50 and p95 (the machine is shared, so
the minimum is the least disturbed estimate). Run against an older checkout of ``rrr_live``
(``PYTHONPATH=...``) it benchmarks that code with the same harness (no plain column there).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rrr_live.models import Ensemble, Member, RingWindow, build_network, load_model, save_model

DEMO = [
    ("mlp", "mlp", {"hidden": 64, "layers": 2}, "return"),
    ("lstm", "lstm", {"hidden": 32}, "return"),
    ("transformer", "transformer", {"d_model": 32, "heads": 4, "layers": 1, "ff": 64}, "return"),
    ("vol", "har_vol", {"lags": [1, 5, 20]}, "volatility"),
]


def demo_ensemble(n_features: int, window: int) -> Ensemble:
    torch.manual_seed(0)
    members = tuple(
        Member(n, a, hp, build_network(a, hp, n_features, window), r, 0.0, 0.01)
        for n, a, hp, r in DEMO
    )
    return Ensemble(
        tuple(f"f{i}" for i in range(n_features)), window,
        np.zeros(n_features, np.float32), np.ones(n_features, np.float32), members,
        {"mlp": 0.4, "lstm": 0.4, "transformer": 0.2},
    )  # fmt: skip


def timed(fn: Callable[[], Any], calls: int, sync: Callable[[], Any]) -> tuple[float, float]:
    for _ in range(max(5, calls // 20)):
        fn()
    sync()
    samples = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter()
        fn()
        sync()
        samples[i] = time.perf_counter() - t0
    return float(np.percentile(samples, 50) * 1e3), float(np.percentile(samples, 95) * 1e3)


def plain_mode(loaded: Any, plain: bool) -> Any:
    """Context that switches ``loaded`` to the plain path (when this rrr_live has one)."""
    if plain:
        return loaded.ensemble.plain_inference()
    return nullcontext()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="1,100,1000")
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--features", type=int, default=22)
    ap.add_argument("--window", type=int, default=24)
    ap.add_argument("--no-plain", action="store_true", help="skip the plain-path column")
    args = ap.parse_args()
    if args.model_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="rrr-bench-")) / "model"
        save_model(tmp, demo_ensemble(args.features, args.window), feature_spec={"bench": True})
        model_dir = tmp
    else:
        model_dir = args.model_dir
    t0 = time.perf_counter()
    full = load_model(model_dir, device=args.device)
    print(f"load_model (verify sha256 + canary): {(time.perf_counter() - t0) * 1e3:.1f} ms")
    names = [m.name for m in full.ensemble.members]
    fast = load_model(
        model_dir, device=args.device, live_members=[n for n in names if n != "transformer"]
    )
    flat = load_model(model_dir, device=args.device, live_members=["mlp"])
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    has_plain = hasattr(full.ensemble, "plain_inference") and not args.no_plain
    print(
        f"device={full.device} calls={args.calls} repeats={args.repeats} "
        f"features={full.ensemble.n_features} window={full.window_length} members={names}"
    )
    print("min over repeats of (p50, p95) in ms; 'plain' = networks' own forward passes")
    header = f"{'thr':>3} {'symbols':>7} {'case':<24} {'p50':>7} {'p95':>7}"
    print(header + (f" {'plain p50':>9} {'plain p95':>9}" if has_plain else ""))
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for n in (int(s) for s in args.sizes.split(",")):
            bench_batch(n, threads, (full, fast, flat), args, sync, has_plain)


def bench_batch(
    n: int, threads: int, models: tuple[Any, Any, Any], args: Any, sync: Any, has_plain: bool
) -> None:
    full, fast, flat = models
    rng = np.random.default_rng(n)
    n_feat, window = full.ensemble.n_features, full.window_length
    ring = RingWindow(n, window, n_feat)
    for _ in range(window):
        ring.push(rng.normal(size=(n, n_feat)).astype(np.float32))
    rows = np.arange(n)
    vals = rng.normal(size=(n, n_feat)).astype(np.float32)
    wins = ring.windows()
    cases: dict[str, tuple[Any, Callable[[], Any]]] = {
        "ring push + windows": (None, lambda: (ring.push(vals, rows), ring.windows(rows))),
        "ensemble (all members)": (full, lambda: full.predict(None, wins)),
        "live (no transformer)": (fast, lambda: fast.predict(None, wins)),
        "flat only (mlp)": (flat, lambda: flat.predict(wins[:, -1])),
        "volatility member": (full, lambda: full.predict_volatility(None, wins)),
    }
    for name, (model, fn) in cases.items():
        modes = [False, True] if has_plain and model is not None else [False]
        best = {mode: [np.inf, np.inf] for mode in modes}
        for _ in range(args.repeats):
            for mode in modes:
                with plain_mode(model, mode):
                    p50, p95 = timed(fn, args.calls, sync)
                best[mode] = [min(best[mode][0], p50), min(best[mode][1], p95)]
        line = f"{threads:>3} {n:>7} {name:<24} {best[False][0]:>7.3f} {best[False][1]:>7.3f}"
        if True in best:
            line += f" {best[True][0]:>9.3f} {best[True][1]:>9.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
