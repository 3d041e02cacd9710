"""Backtest throughput: events (bars) per second through the full trading core.

Runs the bar backtest (same strategy, risk limits, cost model and portfolio code as live) on
1. the bundled real daily data (S&P 500 + NASDAQ, 1999-2018, 10 062 bars), and
2. a synthetic random-walk universe of 1000 symbols x 5 days x 390 one-minute bars (1.95 M bars).

Every run goes through the one engine (the shared loop driver and decision step; the scalar
mirror loop was removed). CPU time (process_time) is reported next to wall time because the
machine is shared and noisy; compare numbers only from back-to-back runs.

Usage: python bench/bench_backtest.py [--symbols 1000] [--days 5] [--repeat 3] [--skip-synthetic]
Floor: >= 40k events/s; stretch: >= 500k events/s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.data import panel_from_bars
from rrr_live.backtest.engine import make_loop, run_backtest
from rrr_live.backtest.ticks import ticks_from_bars
from rrr_live.execution.models import ImpactModel
from rrr_live.risk.limits import RiskLimits
from rrr_live.strategy.signals import BuyAndHold, TimeSeriesMomentum, momentum_20d
from rrr_live.strategy.sizing import StrategyConfig


def bundled() -> pd.DataFrame:
    import arch.data.nasdaq
    import arch.data.sp500

    parts = []
    for name, mod in (("SP500", arch.data.sp500), ("NASDAQ", arch.data.nasdaq)):
        raw = mod.load()
        parts.append(
            pd.DataFrame(
                {
                    "source": "bundled",
                    "symbol": name,
                    "interval": "1d",
                    "ts": pd.to_datetime(raw.index).tz_localize("UTC"),
                    "open": raw["Open"].to_numpy(float),
                    "high": raw["High"].to_numpy(float),
                    "low": raw["Low"].to_numpy(float),
                    "close": raw["Close"].to_numpy(float),
                    "adj_close": raw["Adj Close"].to_numpy(float),
                    "volume": raw["Volume"].to_numpy(float),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def synthetic(n_symbols: int, days: int, seed: int = 0) -> pd.DataFrame:
    """Random-walk 1-minute bars, 390 per day on consecutive days (not the real generator)."""
    rng = np.random.default_rng(seed)
    day0 = pd.Timestamp("2024-01-02 14:30", tz="UTC")
    minutes = np.arange(390)
    ts = np.concatenate(
        [(day0 + pd.Timedelta(days=d)).value + minutes * 60_000_000_000 for d in range(days)]
    )
    n = len(ts)
    logp = np.cumsum(rng.normal(0, 0.001, (n_symbols, n)), axis=1) + np.log(
        50 + 100 * rng.random((n_symbols, 1))
    )
    close = np.exp(logp)
    open_ = np.exp(logp - rng.normal(0, 0.0005, logp.shape))
    frame = pd.DataFrame(
        {
            "source": "synthetic",
            "symbol": np.repeat([f"SYM{i:04d}" for i in range(n_symbols)], n),
            "interval": "1m",
            "ts": pd.to_datetime(np.tile(ts, n_symbols), unit="ns", utc=True),
            "open": open_.ravel(),
            "high": np.maximum(open_, close).ravel() * 1.0005,
            "low": np.minimum(open_, close).ravel() * 0.9995,
            "close": close.ravel(),
            "adj_close": close.ravel(),
            "volume": rng.integers(1_000, 100_000, close.size).astype(float),
        }
    )
    return frame


def measure(label: str, bars: pd.DataFrame, signal, cfg: BacktestConfig, repeat: int):
    best_total, best_loop, best_cpu = np.inf, np.inf, np.inf
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        panel = panel_from_bars(bars)
        bt = make_loop(panel, signal, cfg)
        t1 = time.perf_counter()
        result = bt.run()
        t2, c2 = time.perf_counter(), time.process_time()
        best_total, best_loop = min(best_total, t2 - t0), min(best_loop, t2 - t1)
        best_cpu = min(best_cpu, c2 - c0)
    n = len(bars)
    print(
        f"{label}\n  bars={n:,} batches={panel.n_batches:,} fills={int(result.stats['n_fills']):,}"
        f"\n  end-to-end wall {best_total:.3f}s = {n / best_total:,.0f} ev/s"
        f" | end-to-end CPU {best_cpu:.3f}s = {n / best_cpu:,.0f} ev/s"
        f" | loop only (wall) {best_loop:.3f}s = {n / best_loop:,.0f} ev/s"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    daily = BacktestConfig(
        strategy=StrategyConfig(target_vol=0.10, max_gross_leverage=2, rebalance_threshold=0.05),
        risk=RiskLimits(max_drawdown=0.6),
    )
    hold = BacktestConfig(
        strategy=StrategyConfig(rebalance_threshold=float("inf")), risk=RiskLimits(max_drawdown=1.0)
    )
    bars = bundled()
    for label, signal, cfg in (
        ("buy-and-hold", BuyAndHold(), hold),
        ("20d momentum vol-target", momentum_20d(), daily),
    ):
        measure(f"bundled daily, {label}", bars, signal, cfg, args.repeat)
    ticks = ticks_from_bars(bars, half_spread_bps=1.0)
    best = np.inf
    for _ in range(args.repeat):
        c0 = time.process_time()
        result = run_backtest(bars, momentum_20d(), daily, ticks=ticks)
        best = min(best, time.process_time() - c0)
    print(
        f"bundled daily + {len(ticks):,} book rows (one-level book per bar), 20d momentum:"
        f"\n  fills={len(result.fills):,} CPU {best:.3f}s = {(len(bars) + len(ticks)) / best:,.0f}"
        " events/s (bars + tick rows)"
    )
    if args.skip_synthetic:
        return
    t0 = time.perf_counter()
    syn = synthetic(args.symbols, args.days)
    print(f"(synthetic frame generated in {time.perf_counter() - t0:.1f}s)")
    minute = BacktestConfig(
        strategy=StrategyConfig(
            target_vol=0.10,
            periods_per_year=98_280,
            max_weight=0.01,
            max_gross_leverage=1.0,
            rebalance_threshold=0.002,
        ),
        risk=RiskLimits(max_drawdown=0.5, max_position_notional=0.02, basis="equity"),
        impact=ImpactModel(half_spread_bps=1.0, impact_coef=0.1),
    )
    label = f"synthetic {args.symbols}x{args.days}d 1m, 30-bar momentum"
    measure(label, syn, TimeSeriesMomentum(30), minute, max(1, args.repeat - 2))


if __name__ == "__main__":
    main()
