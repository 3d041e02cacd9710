"""Metrics against independent computations (scipy, statsmodels, hand formulas)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from rrr_pipelines.lib.ml import metrics as m


def _panel(n_ts: int = 60, n_sym: int = 12, seed: int = 0) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2022-01-03", periods=n_ts, freq="D", tz="UTC")
    idx = pd.MultiIndex.from_product([ts, [f"S{k}" for k in range(n_sym)]], names=["ts", "symbol"])
    score = rng.normal(size=len(idx))
    target = 0.3 * score + rng.normal(size=len(idx))
    target[::7] = np.round(target[::7])  # some ties for the rank IC
    s, y = pd.Series(score, index=idx), pd.Series(target, index=idx)
    s.iloc[5] = np.nan
    return s, y


def test_cross_sectional_ic_matches_scipy_per_timestamp() -> None:
    s, y = _panel()
    ic = m.cross_sectional_ic(s, y, "pearson")
    ric = m.cross_sectional_ic(s, y, "spearman")
    assert len(ic) == len(ric) == 60
    for t in ic.index[:10]:
        a, b = s.xs(t, level="ts"), y.xs(t, level="ts")
        ok = a.notna() & b.notna()
        assert ic[t] == pytest.approx(stats.pearsonr(a[ok], b[ok]).statistic, abs=1e-12)
        assert ric[t] == pytest.approx(stats.spearmanr(a[ok], b[ok]).statistic, abs=1e-12)


def test_pooled_ic_and_block_series_match_scipy() -> None:
    s, y = _panel(n_ts=100, n_sym=2, seed=1)
    ok = s.notna() & y.notna()
    assert m.pooled_ic(s, y) == pytest.approx(stats.pearsonr(s[ok], y[ok]).statistic, abs=1e-12)
    expected = stats.spearmanr(s[ok], y[ok]).statistic
    assert m.pooled_ic(s, y, "spearman") == pytest.approx(expected, abs=1e-12)
    series = m.pooled_ic_series(s, y, "spearman", block=21)
    assert len(series) == 5  # 100 timestamps in blocks of 21
    ts = s.index.get_level_values("ts")
    grid = ts.unique()
    second = (ts >= grid[21]) & (ts < grid[42]) & ok.to_numpy()
    assert series.iloc[1] == pytest.approx(
        stats.spearmanr(s[second], y[second]).statistic, abs=1e-12
    )
    assert series.index[1] == grid[21]


def test_newey_west_matches_hand_formula_and_statsmodels() -> None:
    rng = np.random.default_rng(3)
    e = rng.normal(size=400)
    x = 0.05 + np.convolve(e, [1.0, 0.6, 0.3], mode="same")
    lags = m.newey_west_lags(len(x))
    assert lags == math.floor(4 * (400 / 100) ** (2 / 9)) == 5
    u = x - x.mean()
    n = len(x)
    s = sum(
        (1.0 if j == 0 else 2.0 * (1 - j / (lags + 1))) * np.sum(u[j:] * u[: n - j]) / n
        for j in range(lags + 1)
    )
    assert m.newey_west_se(x) == pytest.approx(math.sqrt(s / n), rel=1e-12)
    fit = sm.OLS(x, np.ones(n)).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False}
    )
    assert m.newey_west_se(x, lags) == pytest.approx(fit.bse[0], rel=1e-10)
    assert m.t_stat_newey_west(x, lags) == pytest.approx(fit.tvalues[0], rel=1e-10)


def test_block_bootstrap_ci_is_seeded_and_covers_the_mean() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0.1, 1.0, 500)
    lo, hi = m.block_bootstrap_ci(x, n_boot=1000, seed=42)
    assert (lo, hi) == m.block_bootstrap_ci(x, n_boot=1000, seed=42)
    assert (lo, hi) != m.block_bootstrap_ci(x, n_boot=1000, seed=43)
    assert lo < x.mean() < hi
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))  # iid data: close to the normal interval
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.25)
    const = np.full(50, 0.2)
    assert m.block_bootstrap_ci(const, seed=0) == pytest.approx((0.2, 0.2))


def test_hit_rate_and_quantile_spread_by_hand() -> None:
    idx = pd.MultiIndex.from_product(
        [pd.date_range("2022-01-03", periods=2, tz="UTC"), list("abcd")], names=["ts", "symbol"]
    )
    score = pd.Series([1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 5.0, 2.0], index=idx)
    target = pd.Series([-0.1, 0.2, 0.3, 0.4, -0.2, 0.5, -0.3, 0.1], index=idx)
    # non-zero pairs: 7; same sign: b, c, d, (t2) a, d -> 5
    assert m.hit_rate(score, target) == pytest.approx(5 / 7)
    qs = m.quantile_spread(score, target, n_quantiles=2)
    # t1: low {a,b} -> 0.05, high {c,d} -> 0.35; t2: low {a,b} -> 0.15, high {d,c} -> -0.1
    assert qs.by_quantile.tolist() == pytest.approx([0.1, 0.125])
    assert qs.spread == pytest.approx(((0.35 - 0.05) + (-0.1 - 0.15)) / 2)
    pooled = m.quantile_spread(score, target, n_quantiles=2, cross_sectional=False)
    # low half: -1, 0, 1, 2 (b, first of the tie) -> mean(-0.2, 0.5, -0.1, 0.2) = 0.1
    # high half: 2 (d), 3, 4, 5 -> mean(0.1, 0.3, 0.4, -0.3) = 0.125
    assert pooled.by_quantile.tolist() == pytest.approx([0.1, 0.125])
    assert pooled.spread == pytest.approx(0.025)


def test_evaluate_scores_picks_the_mode() -> None:
    s, y = _panel()
    out = m.evaluate_scores(s, y)
    assert out["mode_cross_sectional"] == 1.0
    ic = m.cross_sectional_ic(s, y)
    assert out["ic_mean"] == pytest.approx(ic.mean())
    assert out["ic_icir"] == pytest.approx(ic.mean() / ic.std(ddof=1))
    assert out["ic_ci_low"] < out["ic_mean"] < out["ic_ci_high"]
    assert out["ic_t_nw"] > 3  # the score carries real signal
    s2, y2 = _panel(n_ts=200, n_sym=2, seed=9)
    out2 = m.evaluate_scores(s2, y2, n_quantiles=5)
    assert out2["mode_cross_sectional"] == 0.0
    assert out2["ic_n"] == 10.0
    assert out2["pooled_ic"] == pytest.approx(m.pooled_ic(s2, y2))
    with pytest.raises(m.MetricError, match="'ts' level"):
        m.hit_rate(pd.Series([1.0]), pd.Series([1.0]))
