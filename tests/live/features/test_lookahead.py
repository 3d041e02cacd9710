"""Features at t use only bars closing by t's close: perturbing the future changes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrr_live.features import FeatureEngine, compute_features, default_spec, replay_features
from tests.live.features.data import arch_bars, random_panel

SPEC = default_spec()
PRICE_COLS = ["open", "high", "low", "close", "adj_close"]


def _perturb_after(bars: pd.DataFrame, cut: pd.Timestamp, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = bars.copy()
    later = (out["ts"] > cut).to_numpy()
    factor = np.exp(rng.normal(0.0, 0.2, int(later.sum())))
    for col in PRICE_COLS:
        out.loc[later, col] = out.loc[later, col].to_numpy() * factor
    out.loc[later, "volume"] = out.loc[later, "volume"].to_numpy()[::-1] * 3.0
    return out


def _assert_prefix_equal(a: pd.DataFrame, b: pd.DataFrame, cut: pd.Timestamp) -> None:
    ts = a.index.get_level_values("ts")
    np.testing.assert_array_equal(a[ts <= cut].to_numpy(), b[ts <= cut].to_numpy())
    assert not np.array_equal(a[ts > cut].to_numpy(), b[ts > cut].to_numpy(), equal_nan=True)


PANEL = random_panel(n_symbols=8, n_bars=320, seed=3)
PANEL_TS = np.sort(PANEL["ts"].unique())
PANEL_BASE = compute_features(PANEL, SPEC)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut_pos=st.integers(min_value=0, max_value=len(PANEL_TS) - 2), seed=st.integers(0, 2**16))
def test_batch_features_ignore_future_bars(cut_pos: int, seed: int) -> None:
    cut = pd.Timestamp(PANEL_TS[cut_pos])
    perturbed = compute_features(_perturb_after(PANEL, cut, seed), SPEC)
    _assert_prefix_equal(PANEL_BASE, perturbed, cut)


def test_batch_features_ignore_future_bars_on_real_data() -> None:
    bars = arch_bars()
    base = compute_features(bars, SPEC)
    stamps = np.sort(bars["ts"].unique())
    for pos in (0, 25, 251, 252, 1000, 4000, len(stamps) - 2):
        cut = pd.Timestamp(stamps[pos])
        _assert_prefix_equal(base, compute_features(_perturb_after(bars, cut, pos), SPEC), cut)


def test_incremental_features_ignore_future_bars() -> None:
    bars = random_panel(n_symbols=6, n_bars=120, seed=5)
    stamps = np.sort(bars["ts"].unique())
    base = replay_features(FeatureEngine(SPEC), bars)
    for pos in (3, 40, 90):
        cut = pd.Timestamp(stamps[pos])
        perturbed = replay_features(FeatureEngine(SPEC), _perturb_after(bars, cut, pos))
        _assert_prefix_equal(base, perturbed, cut)
