"""Batch and incremental executions agree on real and random data, feature by feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rrr_live.features import (
    FeatureDef,
    FeatureEngine,
    FeatureSpec,
    compute_features,
    default_spec,
    replay_features,
)
from tests.live.features.data import arch_bars, random_panel

TOL = 1e-9


def extended_spec() -> FeatureSpec:
    """Every kind and every parameter choice not in the default spec."""
    f = FeatureDef.of
    extra = (
        f("macd_signal", "macd", fast=5, slow=10, signal=4, output="signal"),
        f("vol_z_raw", "volume_z", window=7, transform="none"),
        f("hour_sin", "calendar", field="hour_of_day", component="sin"),
        f("hour_cos", "calendar", field="hour_of_day", component="cos"),
        f("rsi_3", "rsi", window=3),
        f("mom_10_2", "momentum", long=10, skip=2),
        f("cs_rank_rsi_3", "cs_rank", base="rsi_3", min_count=3),
        f("cs_z_vol_raw", "cs_zscore", base="vol_z_raw"),
    )
    return FeatureSpec("test-ext", default_spec().features + extra)


def assert_same(batch: pd.DataFrame, inc: pd.DataFrame) -> None:
    assert list(batch.columns) == list(inc.columns)
    assert batch.index.equals(inc.index)
    for name in batch.columns:
        b, i = batch[name].to_numpy(), inc[name].to_numpy()
        np.testing.assert_array_equal(np.isnan(b), np.isnan(i), err_msg=f"NaN pattern of {name}")
        ok = ~np.isnan(b)
        err = np.abs(b[ok] - i[ok]) / np.maximum(1.0, np.abs(b[ok]))
        assert err.size == 0 or err.max() <= TOL, f"{name}: max error {err.max():.3g}"


@pytest.fixture(scope="module")
def real_pair() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = arch_bars()
    spec = extended_spec()
    return compute_features(bars, spec), replay_features(FeatureEngine(spec), bars)


def test_real_two_symbol_panel_agrees(real_pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    batch, inc = real_pair
    assert len(batch) == 2 * 5031
    assert_same(batch, inc)


def test_every_feature_is_defined_after_warmup(
    real_pair: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    batch, _ = real_pair
    spec = extended_spec()
    spx = batch.xs("SPX", level="symbol")
    for fdef in spec.features:
        col = spx[fdef.name].to_numpy()
        if fdef.cross_sectional and fdef.int_param("min_count") > 2:
            assert np.isnan(col).all(), "two symbols never reach min_count=3"
            continue
        warm = (
            spec.features[spec.index(fdef.str_param("base"))].warmup_bars()
            if (fdef.cross_sectional)
            else fdef.warmup_bars()
        )
        assert np.isnan(col[: warm - 1]).all(), fdef.name
        assert not np.isnan(col[warm - 1 :]).any(), fdef.name


@pytest.mark.parametrize("ragged", [False, True])
def test_random_panel_of_20_symbols_agrees(ragged: bool) -> None:
    bars = random_panel(n_symbols=20, n_bars=300, seed=11, ragged=ragged)
    spec = extended_spec()
    batch = compute_features(bars, spec)
    inc = replay_features(FeatureEngine(spec), bars)
    assert len(batch) == len(bars)
    assert_same(batch, inc)
    twins = batch.xs("S00", level="symbol")["cs_rank_ret_5"].dropna()
    assert twins.equals(batch.xs("S01", level="symbol")["cs_rank_ret_5"].dropna())


def test_features_without_adj_close_use_close() -> None:
    bars = arch_bars()
    bars = bars[bars["ts"] < "2003-01-01"]
    spec = default_spec()
    no_adj = bars.drop(columns=["adj_close"])
    as_close = bars.assign(adj_close=bars["close"])
    pd.testing.assert_frame_equal(compute_features(no_adj, spec), compute_features(as_close, spec))
    assert_same(compute_features(no_adj, spec), replay_features(FeatureEngine(spec), no_adj))
