import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from rrr_live.risk.var import (
    ReturnWindow,
    RiskInputError,
    cornish_fisher_var_es,
    ewma_var_es,
    historical_var_es,
    norm_ppf,
    normal_var_es,
    parametric_normal_var_es,
    tail_weights,
)


@pytest.mark.parametrize(
    "p", [1e-12, 1e-6, 0.001, 0.01, 0.024, 0.025, 0.05, 0.3, 0.5, 0.9, 1 - 1e-9]
)
def test_norm_ppf_matches_scipy(p):
    assert norm_ppf(p) == pytest.approx(stats.norm.ppf(p), rel=1e-13, abs=1e-13)


def test_historical_exact_on_arithmetic_sample():
    x = np.arange(100.0) - 50.0  # -50 .. 49
    r = historical_var_es(np.random.default_rng(0).permutation(x), 0.05)
    # linear quantile at h = 99 * 0.05 = 4.95 -> -50 + 4.95; tail mass 5 -> mean(-50..-46)
    assert r.var == pytest.approx(45.05)
    assert r.es == pytest.approx(48.0)


def test_historical_fractional_tail_and_horizon():
    x = np.arange(10.0)  # 0..9, alpha 0.25 -> mass 2.5 -> (0 + 1 + 0.5 * 2) / 2.5
    r = historical_var_es(x, 0.25, horizon=4)
    assert r.es == pytest.approx(-(0 + 1 + 0.5 * 2) / 2.5 * 2)
    assert r.var == pytest.approx(-np.quantile(x, 0.25) * 2)
    assert tail_weights(10, 0.25).sum() == pytest.approx(1.0)


def test_normal_closed_form():
    r = normal_var_es(0.1, 2.0, 0.01, horizon=10)
    z = stats.norm.ppf(0.01)
    assert r.var == pytest.approx(-(1.0 + math.sqrt(10) * 2.0 * z), rel=1e-12)
    assert r.es == pytest.approx(-(1.0 - math.sqrt(10) * 2.0 * stats.norm.pdf(z) / 0.01), rel=1e-12)


def test_parametric_normal_uses_sample_moments():
    x = np.random.default_rng(3).normal(0.05, 1.3, 500)
    r = parametric_normal_var_es(x, 0.05)
    assert r.var == pytest.approx(-stats.norm.ppf(0.05, x.mean(), x.std(ddof=1)), rel=1e-12)


def test_cornish_fisher_against_formula_and_integral():
    x = np.random.default_rng(5).standard_t(5, 2000) * 1.1 - 0.2
    r = cornish_fisher_var_es(x, 0.01)
    s, k = stats.skew(x), stats.kurtosis(x)
    mu, sd = x.mean(), x.std(ddof=1)

    def zcf(p):
        z = stats.norm.ppf(p)
        return z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36

    assert r.var == pytest.approx(-(mu + sd * zcf(0.01)), rel=1e-10)
    tail = integrate.quad(zcf, 0, 0.01, limit=200)[0] / 0.01
    assert r.es == pytest.approx(-(mu + sd * tail), rel=1e-7)


def test_ewma_var_matches_pandas():
    x = np.random.default_rng(2).normal(0, 1, 300)
    s2 = pd.Series(x**2).ewm(alpha=0.06, adjust=False).mean().iloc[-1]
    r = ewma_var_es(x, 0.01)
    assert r.var == pytest.approx(-stats.norm.ppf(0.01) * math.sqrt(s2), rel=1e-12)


@pytest.mark.parametrize(
    ("bad", "match"),
    [([1.0, float("nan"), 2.0], "NaN"), ([1.0], "at least 2"), ([[1.0, 2.0]], "1-D")],
)
def test_bad_returns_raise(bad, match):
    with pytest.raises(RiskInputError, match=match):
        historical_var_es(bad, 0.05)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, -0.1])
def test_bad_alpha_raises(alpha):
    with pytest.raises(RiskInputError, match="alpha"):
        normal_var_es(0.0, 1.0, alpha)


def test_return_window():
    w = ReturnWindow(4)
    for v in [1.0, -2.0, 3.0]:
        w.push(v)
    with pytest.raises(RiskInputError, match="not ready"):
        w.historical(0.25)
    w.push(-4.0)
    w.push(5.0)  # drops 1.0
    assert w.values().tolist() == [-2.0, 3.0, -4.0, 5.0]
    assert w.historical(0.25).var == pytest.approx(-np.quantile([-2, 3, -4, 5], 0.25))
    assert w.normal(0.05).var == pytest.approx(parametric_normal_var_es([-2, 3, -4, 5], 0.05).var)
    with pytest.raises(RiskInputError):
        w.push(float("inf"))


# -- properties --------------------------------------------------------------------------------

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False, width=64)
alphas = st.sampled_from([0.01, 0.025, 0.05, 0.1, 0.2])


@st.composite
def paired_samples(draw):
    n = draw(st.integers(5, 60))
    x = np.array(draw(st.lists(finite, min_size=n, max_size=n)))
    y = np.array(draw(st.lists(finite, min_size=n, max_size=n)))
    return x, y


def _tol(*vals):
    return 1e-9 * (1.0 + max(abs(v) for v in vals))


METHODS = [historical_var_es, parametric_normal_var_es]


@settings(max_examples=60, deadline=None)
@given(paired_samples(), alphas, alphas)
def test_properties_es_ge_var_and_monotone(xy, a1, a2):
    x, _ = xy
    lo, hi = sorted((a1, a2))
    for f in METHODS:
        r_lo, r_hi = f(x, lo), f(x, hi)
        assert r_lo.es >= r_lo.var - _tol(r_lo.es)
        # smaller alpha = higher confidence: both non-decreasing in confidence
        assert r_lo.var >= r_hi.var - _tol(r_lo.var, r_hi.var)
        assert r_lo.es >= r_hi.es - _tol(r_lo.es, r_hi.es)


@settings(max_examples=60, deadline=None)
@given(paired_samples(), alphas, st.floats(0.01, 100))
def test_properties_subadditive_and_homogeneous(xy, alpha, c):
    x, y = xy
    for f in METHODS:
        rx, ry, rxy = f(x, alpha), f(y, alpha), f(x + y, alpha)
        assert rxy.es <= rx.es + ry.es + _tol(rx.es, ry.es, rxy.es)
        rc = f(c * x, alpha)
        assert rc.var == pytest.approx(c * rx.var, rel=1e-9, abs=1e-9 * c)
        assert rc.es == pytest.approx(c * rx.es, rel=1e-9, abs=1e-9 * c)
