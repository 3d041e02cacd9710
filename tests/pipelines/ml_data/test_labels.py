"""Forward-return labels: exact values, no look-back into the past, vol scaling known at t."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rrr_pipelines.lib.ml.labels import LabelConfig, LabelError, forward_returns, make_labels
from tests.live.features.data import arch_bars, random_panel


def test_log_and_simple_labels_match_direct_computation() -> None:
    bars = arch_bars()
    spx = bars[bars["symbol"] == "SPX"].sort_values("ts")
    p = spx["adj_close"].to_numpy()
    for h in (1, 5):
        log = make_labels(bars, LabelConfig(horizon=h)).xs("SPX", level="symbol")
        np.testing.assert_allclose(
            log["label"].to_numpy()[:-h], np.log(p[h:] / p[:-h]), rtol=1e-12, atol=1e-14
        )
        assert log["label"].iloc[-h:].isna().all()
        assert (log["label_end"].iloc[:-h].to_numpy() == spx["ts"].to_numpy()[h:]).all()
        assert log["label_end"].iloc[-h:].isna().all()
        simple = forward_returns(bars, LabelConfig(horizon=h, kind="simple")).xs("SPX", level=1)
        np.testing.assert_allclose(
            simple.to_numpy()[:-h], p[h:] / p[:-h] - 1, rtol=1e-10, atol=1e-14
        )


def test_vol_scaled_label_divides_by_trailing_vol_known_at_t() -> None:
    bars = arch_bars()
    cfg = LabelConfig(horizon=3, vol_scale=True, vol_window=10)
    scaled = make_labels(bars, cfg).xs("NDX", level="symbol")["label"].to_numpy()
    p = bars[bars["symbol"] == "NDX"].sort_values("ts")["adj_close"].to_numpy()
    lp = np.log(p)
    r = np.diff(lp)
    for t in (10, 11, 500, 4000):
        sigma = math.sqrt(np.mean(r[t - 10 : t] ** 2))  # returns ending at bar t
        assert scaled[t] == pytest.approx((lp[t + 3] - lp[t]) / (sigma * math.sqrt(3)), rel=1e-10)
    assert np.isnan(scaled[:10]).all()


def test_label_at_t_uses_only_bars_in_t_to_t_plus_h() -> None:
    bars = random_panel(n_symbols=5, n_bars=80, seed=2)
    cfg = LabelConfig(horizon=4)
    base = make_labels(bars, cfg)["label"]
    order = bars.sort_values(["symbol", "ts"]).index
    for sym in ("S00", "S03"):
        rows = [i for i in order if bars.at[i, "symbol"] == sym]
        for k in (0, 10, 30):
            t_row, inside, outside = rows[k], rows[k + 1 : k + 5], rows[:k] + rows[k + 5 :]
            key = (bars.at[t_row, "ts"], sym)
            changed = bars.copy()
            changed.loc[outside, "adj_close"] *= 1.7
            assert make_labels(changed, cfg)["label"][key] == base[key]
            changed.loc[inside[-1], "adj_close"] *= 1.7
            assert make_labels(changed, cfg)["label"][key] != base[key]


def test_invalid_inputs() -> None:
    with pytest.raises(LabelError, match="horizon"):
        LabelConfig(horizon=0)
    with pytest.raises(LabelError, match="kind"):
        LabelConfig(kind="pct")  # type: ignore[arg-type]
    bars = arch_bars()
    with pytest.raises(LabelError, match="tz-aware"):
        make_labels(bars.assign(ts=bars["ts"].dt.tz_localize(None)), LabelConfig())
    with pytest.raises(LabelError, match="duplicate"):
        make_labels(pd.concat([bars, bars.iloc[:1]]), LabelConfig())
    with pytest.raises(LabelError, match="non-positive"):
        make_labels(bars.assign(close=-bars["close"]), LabelConfig())
