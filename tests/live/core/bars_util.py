"""Canonical bar frames for the trading-core tests (real bundled data and tiny synthetic)."""

import numpy as np
import pandas as pd

from rrr_pipelines.lib.sources.bundled import bundled_series


def real_daily(name: str = "sp500", symbol: str = "SP500") -> pd.DataFrame:
    series = {"sp500": "SP500", "nasdaq": "NASDAQ"}[name]
    return bundled_series(series).assign(symbol=symbol)


def random_walk(
    n_symbols: int, n_bars: int, seed: int = 0, interval: str = "1m", drop: float = 0.0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(interval.replace("m", "min"))
    ts = pd.Timestamp("2024-01-02 14:30", tz="UTC") + step * np.arange(n_bars)
    frames = []
    for s in range(n_symbols):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n_bars)))
        open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0, 0.0005, n_bars))
        keep = rng.random(n_bars) >= drop
        frames.append(
            pd.DataFrame(
                {
                    "source": "synthetic",
                    "symbol": f"S{s:03d}",
                    "interval": interval,
                    "ts": ts,
                    "open": open_,
                    "high": np.maximum(open_, close) * 1.001,
                    "low": np.minimum(open_, close) * 0.999,
                    "close": close,
                    "adj_close": close,
                    "volume": rng.integers(1_000, 10_000, n_bars).astype("float64"),
                }
            ).loc[keep]
        )
    return pd.concat(frames, ignore_index=True)
