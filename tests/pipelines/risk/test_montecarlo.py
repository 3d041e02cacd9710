import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from rrr_live.risk.ewma import RiskInputError
from rrr_pipelines.lib.risk.montecarlo import monte_carlo_var_es
from rrr_pipelines.lib.risk.scenarios import (
    MultivariateNormal,
    MultivariateT,
    TCopulaEmpirical,
    psd_factor,
)

MU = np.array([0.0005, 0.0002, -0.0001])
COV = np.array([[4.0, 1.2, -0.6], [1.2, 2.25, 0.3], [-0.6, 0.3, 1.0]]) * 1e-4
POS = np.array([1_000_000.0, -400_000.0, 700_000.0])
N = 200_000


def _standard_errors(var, es, q_density, tail_var, alpha, n):
    """Asymptotic standard errors of the Monte Carlo VaR (quantile) and ES estimators."""
    se_var = math.sqrt(alpha * (1 - alpha) / n) / q_density
    se_es = math.sqrt((tail_var + (1 - alpha) * (es - var) ** 2) / (n * alpha))
    return se_var, se_es


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_normal_model_matches_closed_form(alpha):
    res = monte_carlo_var_es(MultivariateNormal(MU, COV), POS, alphas=(alpha,), n_paths=N, seed=11)
    m, s = POS @ MU, math.sqrt(POS @ COV @ POS)
    z = stats.norm.ppf(alpha)
    var, es = -(m + s * z), -(m - s * stats.norm.pdf(z) / alpha)
    lam = stats.norm.pdf(z) / alpha
    tail_var = s**2 * (1 - z * lam - lam**2)  # Var(loss | loss > VaR) of a normal
    mc = res[alpha]
    se_var, se_es = _standard_errors(var, es, stats.norm.pdf(z) / s, tail_var, alpha, N)
    assert abs(mc.var - var) < 3 * se_var, (mc.var, var, se_var)
    assert abs(mc.es - es) < 3 * se_es, (mc.es, es, se_es)
    assert mc.component_es.sum() == pytest.approx(mc.es, rel=1e-10)
    # Euler components of a normal: w_i * (-mu_i + (Cov w)_i / s * phi(z) / alpha)
    euler = POS * (-MU + (COV @ POS) / s * lam)
    np.testing.assert_allclose(res[alpha].component_es, euler, rtol=0.1, atol=0.02 * es)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_t_model_matches_closed_form(alpha):
    nu = 4.0
    res = monte_carlo_var_es(MultivariateT(MU, COV, nu), POS, alphas=(alpha,), n_paths=N, seed=5)
    m, s = POS @ MU, math.sqrt(POS @ COV @ POS)  # P&L = m + s * T_nu
    q = stats.t.ppf(alpha, nu)
    var = -(m + s * q)
    tail_mean = -(nu + q * q) / (nu - 1) * stats.t.pdf(q, nu) / alpha  # E[T | T < q]
    es = -(m + s * tail_mean)
    second = integrate.quad(lambda x: x * x * stats.t.pdf(x, nu), -np.inf, q)[0] / alpha
    tail_var = s**2 * (second - tail_mean**2)
    mc = res[alpha]
    se_var, se_es = _standard_errors(var, es, stats.t.pdf(q, nu) / s, tail_var, alpha, N)
    assert abs(mc.var - var) < 3 * se_var, (mc.var, var, se_var)
    assert abs(mc.es - es) < 3 * se_es, (mc.es, es, se_es)
    assert mc.component_es.sum() == pytest.approx(mc.es, rel=1e-10)


def test_t_copula_keeps_empirical_marginals():
    rng = np.random.default_rng(0)
    hist = np.column_stack([rng.standard_t(3, 400) * 0.01, rng.exponential(0.01, 400) - 0.01])
    model = TCopulaEmpirical(hist, df=4.0)
    sims = model.sample(np.random.default_rng(1), 200_000).astype(np.float64)
    for j in range(2):
        for p in (0.05, 0.25, 0.5, 0.75, 0.95):
            assert np.quantile(sims[:, j], p) == pytest.approx(np.quantile(hist[:, j], p), abs=5e-4)
        assert sims[:, j].min() >= hist[:, j].min() - 1e-6
        assert sims[:, j].max() <= hist[:, j].max() + 1e-6


def test_t_cdf_grid_accuracy():
    from rrr_pipelines.lib.risk.scenarios import _TCdfGrid

    x = np.linspace(-30, 30, 100_001)
    for dtype in (np.float32, np.float64):
        grid = _TCdfGrid(4.0, scale=1.0, dtype=dtype)
        assert np.max(np.abs(grid(x.astype(dtype)) - special.stdtr(4.0, x))) < 5e-6


def test_zero_positions_give_zero_risk():
    res = monte_carlo_var_es(MultivariateNormal(MU, COV), np.zeros(3), n_paths=1000)
    assert res[0.01].var == 0.0 and res[0.01].es == 0.0
    assert not res[0.01].component_es.any()


def test_singular_covariance_is_factored_and_non_psd_rejected():
    cov = np.array([[1.0, 1.0], [1.0, 1.0]]) * 1e-4  # two identical assets: PSD, singular
    a = psd_factor(cov)
    np.testing.assert_allclose(a @ a.T, cov, atol=1e-15)
    res = monte_carlo_var_es(MultivariateNormal([0, 0], cov), [1.0, 1.0], n_paths=50_000)
    assert res[0.01].var == pytest.approx(-2 * 0.01 * stats.norm.ppf(0.01), rel=0.05)
    with pytest.raises(RiskInputError, match="positive semi-definite"):
        psd_factor(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(RiskInputError, match="symmetric"):
        psd_factor(np.array([[1.0, 0.5], [0.2, 1.0]]))


def test_bad_inputs():
    model = MultivariateNormal(MU, COV)
    with pytest.raises(RiskInputError, match="positions"):
        monte_carlo_var_es(model, [1.0, 2.0])
    with pytest.raises(RiskInputError, match="finite"):
        monte_carlo_var_es(model, [1.0, np.nan, 2.0])
    with pytest.raises(RiskInputError, match="no tail"):
        monte_carlo_var_es(model, POS, alphas=(0.01,), n_paths=50)
    with pytest.raises(RiskInputError, match="NaN"):
        TCopulaEmpirical(np.array([[0.01, np.nan], [0.0, 0.01], [0.02, 0.0]]))


def test_chunking_is_invisible_to_the_tail():
    model = MultivariateNormal(MU, COV)
    one = monte_carlo_var_es(model, POS, n_paths=20_000, chunk_size=20_000, seed=3)
    # different chunking draws different numbers, so compare the kept tail with a full sort
    rows = model.sample(np.random.default_rng(3), 20_000).astype(np.float64) * POS
    pnl = np.sort(rows.sum(axis=1))
    assert one[0.01].var == pytest.approx(-np.quantile(pnl, 0.01), rel=1e-12)
    assert one[0.01].es == pytest.approx(-pnl[:200].mean(), rel=1e-12)
    many = monte_carlo_var_es(model, POS, n_paths=20_000, chunk_size=999, seed=3)
    assert many[0.01].component_es.sum() == pytest.approx(many[0.01].es, rel=1e-10)


pos_strategy = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=3, max_size=3)


@settings(max_examples=15, deadline=None)
@given(pos_strategy, pos_strategy, st.floats(0.1, 10))
def test_crn_properties(a, b, c):
    model = MultivariateT(MU, COV, 5.0)
    a, b = np.array(a), np.array(b)

    def run(p):
        return monte_carlo_var_es(model, p, alphas=(0.05, 0.01), n_paths=5_000, seed=42)

    ra, rb, rab, rc = run(a), run(b), run(a + b), run(c * a)
    tol = 1e-7 * (1 + np.abs(a).sum() + np.abs(b).sum())
    for r in (ra, rb, rab):
        assert r[0.01].es >= r[0.01].var - tol and r[0.05].es >= r[0.05].var - tol
        assert r[0.01].var >= r[0.05].var - tol and r[0.01].es >= r[0.05].es - tol
    for alpha in (0.05, 0.01):
        assert rab[alpha].es <= ra[alpha].es + rb[alpha].es + tol
        assert rc[alpha].var == pytest.approx(c * ra[alpha].var, rel=1e-6, abs=tol * c)
        assert rc[alpha].es == pytest.approx(c * ra[alpha].es, rel=1e-6, abs=tol * c)
