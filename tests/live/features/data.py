"""Bar frames for feature, label and metric tests: real (arch) and seeded random panels."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from rrr_pipelines.lib.sources.bundled import bundled_series


@cache
def _arch_bars() -> pd.DataFrame:
    frames = [
        bundled_series(series).assign(symbol=symbol)
        for series, symbol in (("SP500", "SPX"), ("NASDAQ", "NDX"))
    ]
    bars = pd.concat(frames, ignore_index=True)
    bars["ts"] = bars["ts"].dt.as_unit("ns")
    return bars


def arch_bars() -> pd.DataFrame:
    """S&P 500 (SPX) and NASDAQ (NDX) daily bars 1999-2018 as a canonical frame (a copy)."""
    return _arch_bars().copy()


def random_panel(
    n_symbols: int = 20, n_bars: int = 400, seed: int = 7, ragged: bool = True
) -> pd.DataFrame:
    """A seeded random-walk panel; with ``ragged`` symbols start late and miss some bars.

    Symbol ``S01`` is an exact copy of ``S00`` so cross-sectional ties occur.
    """
    rng = np.random.default_rng(seed)
    grid = pd.date_range("2020-01-01", periods=n_bars, freq="1h", tz="UTC").as_unit("ns")
    frames = []
    for k in range(n_symbols):
        r = rng.standard_t(4, n_bars) * 0.01
        close = 50.0 * (1 + k) * np.exp(np.cumsum(r))
        open_ = close * np.exp(rng.normal(0, 0.003, n_bars))
        hi = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n_bars)))
        lo = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n_bars)))
        vol = np.floor(rng.lognormal(10, 1, n_bars))
        vol[rng.random(n_bars) < 0.02] = 0.0
        keep = np.ones(n_bars, dtype=bool)
        if ragged and k > 1:
            keep[: rng.integers(0, n_bars // 4)] = False
            keep &= rng.random(n_bars) > 0.05
        frame = pd.DataFrame(
            {
                "source": "synthetic",
                "symbol": f"S{k:02d}",
                "interval": "1h",
                "ts": grid,
                "open": open_,
                "high": hi,
                "low": lo,
                "close": close,
                "adj_close": close * 0.5,
                "volume": vol,
            }
        )[keep]
        frames.append(frame)
    panel = pd.concat(frames, ignore_index=True)
    twin = panel[panel["symbol"] == "S00"].assign(symbol="S01")
    panel = pd.concat([panel[panel["symbol"] != "S01"], twin], ignore_index=True)
    return panel.sample(frac=1.0, random_state=seed).reset_index(drop=True)
