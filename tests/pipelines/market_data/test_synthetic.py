"""The synthetic universe has the statistical properties it claims, and is deterministic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rrr_pipelines.lib.quality.suite import failed, run_blocking_gates
from rrr_pipelines.lib.sources.base import BarSource, SourceError
from rrr_pipelines.lib.sources.synthetic import SyntheticModel, SyntheticSource

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _log_returns(frame: pd.DataFrame) -> pd.DataFrame:
    wide = frame.pivot(index="ts", columns="symbol", values="close")
    return np.log(wide).diff().iloc[1:]


@pytest.fixture(scope="module")
def month_of_minutes() -> pd.DataFrame:
    """8 symbols, 30 days of 24/7 one-minute bars (345 600 rows)."""
    return SyntheticSource(n_symbols=8, interval="1m", seed=11).fetch(T0, T0 + timedelta(days=30))


def test_is_a_labelled_bar_source(month_of_minutes: pd.DataFrame) -> None:
    src = SyntheticSource(n_symbols=3, interval="1m", seed=1)
    assert isinstance(src, BarSource)
    assert src.synthetic and src.name == "synthetic"
    assert {i.asset_class for i in src.instruments()} == {"synthetic"}
    assert set(month_of_minutes["source"]) == {"synthetic"}
    assert len(month_of_minutes) == 8 * 30 * 1440


def test_bars_are_consistent_and_pass_every_gate(month_of_minutes: pd.DataFrame) -> None:
    f = month_of_minutes
    assert (f["high"] >= f[["open", "close"]].max(axis=1)).all()
    assert (f["low"] <= f[["open", "close"]].min(axis=1)).all()
    assert (f["volume"] > 0).all() and (f["low"] > 0).all()
    assert failed(run_blocking_gates(f, calendar="24/7")) == []


def test_fat_tails(month_of_minutes: pd.DataFrame) -> None:
    rets = _log_returns(month_of_minutes)
    kurt = stats.kurtosis(rets.to_numpy(), axis=0, fisher=True)
    assert (kurt > 0).all(), kurt


def test_volatility_clustering_ljung_box(month_of_minutes: pd.DataFrame) -> None:
    from statsmodels.stats.diagnostic import acorr_ljungbox

    rets = _log_returns(month_of_minutes)
    for sym in rets.columns[:3]:
        r = rets[sym].to_numpy()[:10_000]  # acorr_ljungbox is O(n^2)-slow on long series
        squared = acorr_ljungbox(r**2, lags=[10], return_df=True)
        assert squared["lb_pvalue"].iloc[0] < 1e-6, sym


def test_factor_correlations_match_configuration(month_of_minutes: pd.DataFrame) -> None:
    model = SyntheticSource(n_symbols=8, interval="1m", seed=11).model
    target = model.implied_correlation()
    assert target[~np.eye(8, dtype=bool)].min() > 0.1  # there is real structure to match
    empirical = np.corrcoef(_log_returns(month_of_minutes).to_numpy(), rowvar=False)
    assert np.abs(empirical - target).max() <= 0.05


def test_explicit_loadings_give_configured_correlation() -> None:
    loadings = ((0.9, 0.0), (0.9, 0.0), (0.0, 0.6), (0.0, -0.6))
    model = SyntheticModel(n_symbols=4, n_factors=2, loadings=loadings, seed=3)
    paths = model.simulate(60_000, np.random.default_rng(5))
    empirical = np.corrcoef(paths.log_returns, rowvar=False)
    expected = np.array(
        [[1, 0.81, 0, 0], [0.81, 1, 0, 0], [0, 0, 1, -0.36], [0, 0, -0.36, 1]], dtype=float
    )
    assert np.abs(empirical - expected).max() <= 0.05


def test_regime_switches_at_configured_frequency() -> None:
    p_up, p_down, n = 0.002, 0.01, 400_000
    model = SyntheticModel(n_symbols=1, p_calm_to_turbulent=p_up, p_turbulent_to_calm=p_down)
    regimes = model.simulate(n, np.random.default_rng(9)).regimes
    switches = np.flatnonzero(np.diff(regimes))
    up = np.sum(np.diff(regimes) == 1)
    calm_bars = np.sum(regimes[:-1] == 0)
    turbulent_bars = np.sum(regimes[:-1] == 1)
    assert up / calm_bars == pytest.approx(p_up, rel=0.15)
    assert (switches.size - up) / turbulent_bars == pytest.approx(p_down, rel=0.15)
    assert regimes.mean() == pytest.approx(p_up / (p_up + p_down), rel=0.2)


def test_turbulent_regime_is_more_volatile() -> None:
    model = SyntheticModel(n_symbols=2, regime_vol=3.0)
    paths = model.simulate(100_000, np.random.default_rng(2))
    calm = paths.log_returns[paths.regimes == 0].std()
    turbulent = paths.log_returns[paths.regimes == 1].std()
    assert turbulent / calm == pytest.approx(3.0, rel=0.15)


def test_same_seed_identical_bytes_other_seed_differs() -> None:
    def parquet(seed: int) -> bytes:
        frame = SyntheticSource(n_symbols=5, interval="1h", seed=seed).fetch(
            T0, T0 + timedelta(days=3)
        )
        return frame.to_parquet(index=False)

    assert parquet(4) == parquet(4)
    assert parquet(4) != parquet(5)


def test_windows_agree_on_shared_timestamps() -> None:
    src = SyntheticSource(n_symbols=4, interval="5m", seed=8)
    whole = src.fetch(T0, T0 + timedelta(days=3))
    part = src.fetch(T0 + timedelta(days=1, hours=5), T0 + timedelta(days=2, hours=1))
    merged = part.merge(whole, on=["symbol", "ts"], suffixes=("", "_whole"))
    assert len(merged) == len(part) == 4 * 20 * 12
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(merged[col], merged[f"{col}_whole"])
    subset = SyntheticSource(n_symbols=4, interval="5m", seed=8, symbols=["SYN0002"])
    pd.testing.assert_frame_equal(
        subset.fetch(T0, T0 + timedelta(days=3)),
        whole[whole["symbol"] == "SYN0002"].reset_index(drop=True),
    )


def test_daily_prices_continue_across_year_chunks() -> None:
    src = SyntheticSource(n_symbols=3, interval="1d", seed=2)
    frame = src.fetch(datetime(2000, 1, 1, tzinfo=UTC), datetime(2004, 1, 1, tzinfo=UTC))
    assert failed(run_blocking_gates(frame, calendar="24/7")) == []
    assert frame.groupby("symbol").size().tolist() == [1461] * 3


def test_equity_calendar_minutes() -> None:
    src = SyntheticSource(n_symbols=2, interval="1m", seed=3, calendar="XNYS")
    frame = src.fetch(datetime(2024, 7, 1, tzinfo=UTC), datetime(2024, 7, 6, tzinfo=UTC))
    per_day = frame[frame["symbol"] == "SYN0000"].groupby(frame["ts"].dt.date).size()
    # 1-2 Jul full sessions, 3 Jul closes 13:00 ET, 4 Jul closed, 5 Jul full
    assert per_day.tolist() == [390, 390, 210, 390]
    assert failed(run_blocking_gates(frame, calendar="XNYS")) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"n_symbols": 0}, {"n_symbols": 5001}, {"df": 2.0}, {"garch_alpha": 0.5, "garch_beta": 0.6}],
)
def test_bad_parameters_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(SourceError):
        SyntheticSource(**kwargs)


def test_naive_or_early_window_raises() -> None:
    src = SyntheticSource(n_symbols=2, interval="1m")
    with pytest.raises(SourceError, match="tz-aware"):
        src.fetch(datetime(2024, 1, 1), datetime(2024, 1, 2))  # noqa: DTZ001
    with pytest.raises(SourceError, match="before origin"):
        src.fetch(datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 1, 2, tzinfo=UTC))


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_symbols=st.integers(1, 6),
    interval=st.sampled_from(["1s", "1m", "15m", "1h", "1d"]),
    hours=st.integers(1, 72),
)
def test_ohlc_invariants_hold_for_any_seed(
    seed: int, n_symbols: int, interval: str, hours: int
) -> None:
    src = SyntheticSource(n_symbols=n_symbols, interval=interval, seed=seed)
    start = datetime(2024, 2, 27, 23, tzinfo=UTC)
    end = start + timedelta(hours=hours) if interval != "1s" else start + timedelta(minutes=hours)
    f = src.fetch(start, end)
    assert (f["high"] >= np.maximum(f["open"], f["close"])).all()
    assert (f["low"] <= np.minimum(f["open"], f["close"])).all()
    assert (f["low"] > 0).all() and (f["volume"] > 0).all()
    assert ((f["ts"] >= start) & (f["ts"] < end)).all()
    assert all(g.is_monotonic_increasing for _, g in f.groupby("symbol")["ts"])
