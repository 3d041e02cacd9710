from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rrr_pipelines.lib.ml.training import TrainingData

FEATURES = ("ret_1", "ret_5", "ret_20", "vol_20", "range_1", "volume_z")


def _symbol_frame(prices: pd.DataFrame, symbol: str) -> pd.DataFrame:
    close = np.log(prices["Adj Close"].astype(float))
    r1 = close.diff()
    lv = np.log1p(prices["Volume"].astype(float))
    lv_std = lv.rolling(20).std().where(lambda s: s > 0)
    out = pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(prices.index).tz_localize("UTC"),
            "symbol": symbol,
            "ret_1": r1,
            "ret_5": close.diff(5),
            "ret_20": close.diff(20),
            "vol_20": r1.rolling(20).std(),
            "range_1": np.log(prices["High"] / prices["Low"]),
            "volume_z": (lv - lv.rolling(20).mean()) / lv_std,
            "label": r1.shift(-1),
        }
    )
    return out.dropna(subset=list(FEATURES)).reset_index(drop=True)


def real_daily_data(n_days: int | None = None) -> TrainingData:
    """S&P 500 and NASDAQ daily bars (bundled with arch) as a training matrix."""
    import arch.data.nasdaq
    import arch.data.sp500

    frames = [
        _symbol_frame(arch.data.sp500.load(), "SPX"),
        _symbol_frame(arch.data.nasdaq.load(), "NDX"),
    ]
    if n_days is not None:
        frames = [f.iloc[:n_days] for f in frames]
    df = pd.concat(frames).sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
    ts = df["ts"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").view("i8")
    dates = np.unique(ts)
    cuts = [dates[int(len(dates) * q)] for q in (0.6, 0.75, 0.85)]
    masks = {
        "train": ts < cuts[0],
        "validation": (ts >= cuts[0]) & (ts < cuts[1]),
        "stacking": (ts >= cuts[1]) & (ts < cuts[2]),
        "holdout": ts >= cuts[2],
    }
    dates = np.unique(ts)
    cuts = [dates[int(len(dates) * q)] for q in (0.6, 0.75, 0.85)]
    masks = {k: np.asarray(v, dtype=bool) for k, v in masks.items()}
    return TrainingData(
        X=df[list(FEATURES)].to_numpy(np.float64),
        y=df["label"].to_numpy(np.float64),
        masks=masks,
        feature_names=FEATURES,
        ts=ts,
        symbols=df["symbol"].to_numpy(str),
    )


@pytest.fixture(scope="session")
def small_data() -> TrainingData:
    return real_daily_data(n_days=700)
