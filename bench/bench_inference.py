"""Ensemble inference latency for 1 / 100 / 1000 symbols (p50 / p95 over many calls).

Usage:
    python bench/bench_inference.py [--device cpu|cuda] [--threads 2] [--calls 300]
                                    [--model-dir DIR] [--features 16] [--window 24]

Without --model-dir it saves and loads (verified) the demo-sized ensemble with random weights:
latency does not depend on the weight values. It reports, per batch size, the full ensemble,
the ensemble without the transformer (a typical ``live_members`` choice) and the ring-buffer
push + window gather that precedes inference in the live batcher.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

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


def timed(fn, calls: int, sync) -> tuple[float, float]:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--window", type=int, default=24)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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
    n_feat, window = full.ensemble.n_features, full.window_length
    print(
        f"device={full.device} threads={torch.get_num_threads()} calls={args.calls} "
        f"features={n_feat} window={window} members={names}"
    )
    print(f"{'symbols':>8} {'case':<28} {'p50 ms':>8} {'p95 ms':>8}")
    for n in (1, 100, 1000):
        bench_batch(n, full, fast, flat, args.calls, sync)


def bench_batch(n: int, full, fast, flat, calls: int, sync) -> None:
    rng = np.random.default_rng(n)
    n_feat, window = full.ensemble.n_features, full.window_length
    ring = RingWindow(n, window, n_feat)
    for _ in range(window):
        ring.push(rng.normal(size=(n, n_feat)).astype(np.float32))
    rows = np.arange(n)
    vals = rng.normal(size=(n, n_feat)).astype(np.float32)
    wins = ring.windows()
    cases = {
        "ring push + windows": lambda: (ring.push(vals, rows), ring.windows(rows)),
        "ensemble (all members)": lambda: full.predict(None, wins),
        "live (no transformer)": lambda: fast.predict(None, wins),
        "flat only (mlp)": lambda: flat.predict(wins[:, -1]),
        "volatility member": lambda: full.predict_volatility(None, wins),
    }
    for name, fn in cases.items():
        p50, p95 = timed(fn, calls, sync)
        print(f"{n:>8} {name:<28} {p50:>8.3f} {p95:>8.3f}")


if __name__ == "__main__":
    main()
