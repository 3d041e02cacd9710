"""Feature engine throughput and latency.

    python bench/bench_features.py [--symbols 1000] [--bars 2000] [--steps 300]

Prints: batch ``compute_features`` rows/s on a random-walk panel (symbols x bars rows), and the
incremental engine's cost per decision batch of all symbols (update_batch + features), per
symbol per bar, and for a single-symbol ``update`` call.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from rrr_live.features import FeatureBar, FeatureEngine, compute_features, default_spec

DAY_NS = 86_400_000_000_000


def random_walk_panel(n_symbols: int, n_bars: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_bars, n_symbols)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.002, close.shape))
    high = np.maximum(open_, close) * 1.003
    low = np.minimum(open_, close) * 0.997
    ts = pd.date_range("2015-01-01", periods=n_bars, freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "symbol": np.tile(np.array([f"S{k:04d}" for k in range(n_symbols)]), n_bars),
            "ts": np.repeat(ts, n_symbols),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "adj_close": close.ravel(),
            "volume": rng.lognormal(12, 1, close.size),
        }
    )


def bench_batch(n_symbols: int, n_bars: int) -> None:
    bars = random_walk_panel(n_symbols, n_bars)
    spec = default_spec()
    t0 = time.perf_counter()
    out = compute_features(bars, spec)
    dt = time.perf_counter() - t0
    print(
        f"batch  compute_features: {len(bars):,} rows x {len(spec.names)} features in {dt:.2f} s"
        f" -> {len(bars) / dt:,.0f} rows/s ({out.shape})"
    )


def bench_incremental(n_symbols: int, warm: int, steps: int) -> None:
    spec = default_spec()
    rng = np.random.default_rng(1)
    eng = FeatureEngine(spec)
    ids = eng.symbol_ids([f"S{k:04d}" for k in range(n_symbols)])
    price = np.full(n_symbols, 100.0)
    upd, feat = [], []
    for t in range(warm + steps):
        price = price * np.exp(rng.normal(0, 0.01, n_symbols))
        vol = rng.lognormal(12, 1, n_symbols)
        t0 = time.perf_counter()
        eng.update_batch(ids, ts_ns=np.full(n_symbols, t * DAY_NS), open_=price,
                         high=price * 1.003, low=price * 0.997, close=price, volume=vol)  # fmt: skip
        t1 = time.perf_counter()
        matrix = eng.features(ids)
        t2 = time.perf_counter()
        if t >= warm:
            upd.append(t1 - t0)
            feat.append(t2 - t1)
    assert not np.isnan(matrix).any()
    u, f = statistics.median(upd) * 1e6, statistics.median(feat) * 1e6
    p99 = float(np.percentile(np.add(upd, feat), 99)) * 1e6
    print(
        f"incr   decision batch of {n_symbols} symbols: update_batch {u:,.0f} us + features "
        f"{f:,.0f} us = {u + f:,.0f} us (p99 {p99:,.0f} us) -> {(u + f) / n_symbols:.2f} us "
        "per symbol per bar"
    )
    single = []
    for t in range(warm + steps, warm + steps + 2000):
        p = float(price[0]) * (1 + 0.001 * (t % 5))
        bar = FeatureBar(t * DAY_NS, p, p * 1.003, p * 0.997, p, 1e5)
        t0 = time.perf_counter()
        eng.update("S0000", bar)
        single.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(2000):
        eng.features(ids[:1])
    one_feat = (time.perf_counter() - t0) / 2000 * 1e6
    print(
        f"incr   single-symbol update(): {statistics.median(single) * 1e6:,.0f} us median; "
        f"features([one]) {one_feat:,.0f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--bars", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    bench_batch(args.symbols, args.bars)
    bench_incremental(args.symbols, warm=default_spec().warmup_bars(), steps=args.steps)


if __name__ == "__main__":
    main()
