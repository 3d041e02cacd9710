import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.covariance import ledoit_wolf as sk_ledoit_wolf

from rrr_live.risk.ewma import RiskInputError
from rrr_pipelines.lib.risk.correlation import (
    effective_number_of_bets,
    effective_rank,
    ledoit_wolf,
    regime_comparison,
    rolling_correlation,
)
from rrr_pipelines.lib.risk.stress import (
    NamedScenario,
    equity_shock,
    historical_scenarios,
    reverse_stress,
    reverse_stress_table,
    stressed_normal_var,
    worst_windows,
)


@pytest.fixture
def returns():
    idx = pd.date_range("2008-09-01", periods=300, freq="B", tz="UTC", name="ts")
    rng = np.random.default_rng(4)
    common = rng.normal(0, 1.0, 300)
    return pd.DataFrame(
        {"A": common + rng.normal(0, 0.5, 300), "B": 0.5 * common + rng.normal(0, 1.0, 300)},
        index=idx,
    )


def test_named_scenario_pnl_and_coverage(returns):
    pos = {"A": 1000.0, "B": -500.0}
    scen = (
        NamedScenario("inside", "2008-09-10", "2008-09-19"),
        NamedScenario("before data", "1987-10-13", "1987-10-19"),
    )
    table = historical_scenarios(returns, pos, scen)
    win = returns.loc["2008-09-11":"2008-09-19"]
    expected = 1000 * (np.prod(1 + win["A"] / 100) - 1) - 500 * (np.prod(1 + win["B"] / 100) - 1)
    assert table.loc[0, "covered"] and table.loc[0, "pnl"] == pytest.approx(expected)
    assert not table.loc[1, "covered"] and math.isnan(table.loc[1, "pnl"])


def test_worst_windows_are_worst_and_disjoint(returns):
    pos = {"A": 1.0, "B": 1.0}
    got = worst_windows(returns, pos, days=5, count=3)
    comp = np.expm1(np.log1p(returns / 100).rolling(5).sum()).sum(axis=1).dropna()
    assert got["pnl"].iloc[0] == pytest.approx(comp.min())
    ends = pd.to_datetime(got["end"]).tolist()
    positions = [comp.index.get_loc(pd.Timestamp(e, tz="UTC")) for e in ends]
    assert all(abs(a - b) >= 5 for i, a in enumerate(positions) for b in positions[i + 1 :])
    assert got["pnl"].is_monotonic_increasing


def test_hypothetical_shocks(returns):
    pos = {"A": 600.0, "B": 400.0}
    assert equity_shock(pos, -0.2) == pytest.approx(-200.0)
    assert equity_shock(pos, -0.2, equities={"A"}) == pytest.approx(-120.0)
    base_var, _ = stressed_normal_var(returns, pos, 0.01)
    cov = (returns / 100).cov().to_numpy()
    w = np.array([600.0, 400.0])
    assert base_var == pytest.approx(-stats.norm.ppf(0.01) * math.sqrt(w @ cov @ w))
    assert stressed_normal_var(returns, pos, 0.01, vol_mult=2.0)[0] == pytest.approx(2 * base_var)
    sd = np.sqrt(np.diag(cov))
    one = stressed_normal_var(returns, pos, 0.01, corr_to_one=True)[0]
    assert one == pytest.approx(-stats.norm.ppf(0.01) * abs(w @ sd))


def test_reverse_stress(returns):
    pos = {"A": 600.0, "B": 400.0}
    assert reverse_stress(lambda k: 10 * k, 25.0) == pytest.approx(2.5)
    assert reverse_stress(lambda k: 10 * k, 25.0, upper=1.0) is None
    table = reverse_stress_table(returns, pos, limit=150.0)
    assert table.loc[0, "shock_to_breach"] == pytest.approx(-0.15)
    base_var, _ = stressed_normal_var(returns, pos, 0.01)
    assert table.loc[1, "shock_to_breach"] == pytest.approx(150.0 / base_var)
    with pytest.raises(RiskInputError, match="limit"):
        reverse_stress_table(returns, pos, limit=0.0)


def test_stress_bad_positions(returns):
    with pytest.raises(RiskInputError, match="no returns"):
        historical_scenarios(returns, {"ZZZ": 1.0})
    with pytest.raises(RiskInputError, match="finite"):
        worst_windows(returns, {"A": float("nan")}, 5)
    zero = historical_scenarios(returns, {"A": 0.0, "B": 0.0})
    assert zero["pnl"].dropna().eq(0.0).all()  # documented: a flat book loses nothing


def test_rolling_correlation_matches_pandas(returns):
    rc = rolling_correlation(returns, window=30, step=10)
    ref = returns["A"].rolling(30).corr(returns["B"]).dropna().iloc[::10]
    np.testing.assert_allclose(rc.matrices[:, 0, 1], ref.to_numpy(), rtol=1e-10)
    assert rc.index.equals(ref.index)
    np.testing.assert_allclose(rc.average_pairwise().to_numpy(), ref.to_numpy(), rtol=1e-10)


def test_ledoit_wolf_matches_sklearn(returns):
    shrunk = ledoit_wolf(returns)
    cov, s = sk_ledoit_wolf(returns.to_numpy())
    np.testing.assert_allclose(shrunk.cov.to_numpy(), cov)
    assert shrunk.shrinkage == pytest.approx(s)
    assert np.allclose(np.diag(shrunk.corr), 1.0)


def test_effective_number_of_bets():
    assert effective_number_of_bets(np.eye(4), np.ones(4)) == pytest.approx(4.0)
    assert effective_number_of_bets(
        np.ones((3, 3)) + 1e-12 * np.eye(3), np.ones(3)
    ) == pytest.approx(1.0, abs=1e-6)
    assert effective_number_of_bets(np.eye(4), [1, 0, 0, 0]) == pytest.approx(1.0)
    assert effective_rank(np.eye(5)) == pytest.approx(5.0)
    with pytest.raises(RiskInputError, match="zero"):
        effective_number_of_bets(np.eye(2), [0.0, 0.0])


def test_regime_comparison_sees_higher_stress_correlation():
    rng = np.random.default_rng(9)
    n = 1000
    calm_c = rng.normal(0, 1, n)
    stress = np.zeros(n, dtype=bool)
    stress[600:700] = True
    vol = np.where(stress, 3.0, 1.0)
    rho = np.where(stress, 0.9, 0.1)
    b = rho * calm_c + np.sqrt(1 - rho**2) * rng.normal(0, 1, n)
    idx = pd.date_range("2001-01-01", periods=n, freq="B", tz="UTC")
    r = pd.DataFrame({"A": calm_c * vol, "B": b * vol}, index=idx)
    cmp_ = regime_comparison(r, np.array([0.5, 0.5]), vol_window=20, quantile=0.9)
    s = cmp_.summary.set_index("regime")
    assert s.loc["stress", "avg_corr"] > s.loc["calm", "avg_corr"] + 0.3
    assert s.loc["stress", "enb"] < s.loc["calm", "enb"]


def test_correlation_rejects_nan(returns):
    bad = returns.copy()
    bad.iloc[3, 0] = np.nan
    with pytest.raises(RiskInputError, match="NaN"):
        rolling_correlation(bad)
