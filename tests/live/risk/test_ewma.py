import numpy as np
import pandas as pd
import pytest

from rrr_live.risk.ewma import (
    EwmaCovariance,
    RiskInputError,
    ewma_variance_path,
    rolling_ewma_variance,
)


def test_path_matches_pandas_adjust_false():
    x = np.random.default_rng(0).normal(0, 1.5, 400)
    expected = pd.Series(x**2).ewm(alpha=1 - 0.94, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(ewma_variance_path(x), expected, rtol=1e-12)
    assert ewma_variance_path(x)[0] == x[0] ** 2


def test_rolling_windows_restart_from_their_first_return():
    x = np.random.default_rng(1).normal(0, 1, 60)
    got = rolling_ewma_variance(x, 20, 0.9)
    expected = [ewma_variance_path(x[i : i + 20], 0.9)[-1] for i in range(41)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_covariance_matches_pairwise_recursion():
    r = np.random.default_rng(2).normal(0, 1, (50, 3))
    cov = EwmaCovariance(3, lam=0.94)
    for row in r:
        cov.update(row)
    c = cov.covariance()
    for i in range(3):
        for j in range(3):
            s = pd.Series(r[:, i] * r[:, j]).ewm(alpha=0.06, adjust=False).mean().iloc[-1]
            assert c[i, j] == pytest.approx(s, rel=1e-12)
    w = np.array([1.0, -2.0, 0.5])
    assert cov.portfolio_variance(w) == pytest.approx(w @ c @ w)
    corr = cov.correlation()
    assert np.allclose(np.diag(corr), 1.0)
    assert cov.n_updates == 50


def test_covariance_rejects_bad_input_and_keeps_state():
    cov = EwmaCovariance(2)
    with pytest.raises(RiskInputError, match="no data"):
        cov.covariance()
    cov.update([1.0, 2.0])
    before = cov.covariance()
    with pytest.raises(RiskInputError, match="NaN"):
        cov.update([np.nan, 1.0])
    with pytest.raises(RiskInputError, match="expected 2"):
        cov.update([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(cov.covariance(), before)
    with pytest.raises(RiskInputError, match="lambda"):
        EwmaCovariance(2, lam=1.0)


def test_zero_variance_asset_has_zero_correlation():
    cov = EwmaCovariance(2)
    cov.update([0.0, 1.0])
    cov.update([0.0, -1.0])
    np.testing.assert_array_equal(cov.correlation(), np.eye(2))
