"""The scalar loop must reproduce the vectorized loop bit for bit (hashes of every frame)."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.data import panel_from_bars
from rrr_live.backtest.engine import BarBacktest, ScalarBarBacktest, make_loop, run_backtest
from rrr_live.backtest.scalar_state import nsum
from rrr_live.execution.models import FeeModel, ImpactModel, LatencyModel
from rrr_live.portfolio.portfolio import average_cost_update, average_cost_update_scalar
from rrr_live.risk.limits import RiskLimits
from rrr_live.strategy.signals import BuyAndHold, TimeSeriesMomentum, momentum_12_1, momentum_20d
from rrr_live.strategy.sizing import StrategyConfig
from tests.live.core.bars_util import random_walk, real_daily


def both(bars: pd.DataFrame, signal, cfg: BacktestConfig):
    scalar = run_backtest(bars, signal, replace(cfg, loop="scalar"))
    vector = run_backtest(bars, signal, replace(cfg, loop="vectorized"))
    return scalar, vector


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return pd.concat([real_daily("sp500"), real_daily("nasdaq", "NASDAQ")], ignore_index=True)


@pytest.mark.parametrize(
    ("cfg", "statuses"),
    [
        (
            BacktestConfig(
                strategy=StrategyConfig(
                    target_vol=0.1, max_gross_leverage=2, rebalance_threshold=0.05
                ),
                risk=RiskLimits(max_drawdown=0.6),
            ),
            {"filled"},
        ),
        (
            BacktestConfig(
                strategy=StrategyConfig(target_vol=0.1, max_gross_leverage=2, max_turnover=0.5),
                risk=RiskLimits(
                    max_drawdown=0.6,
                    max_gross_notional=1.5e6,
                    max_orders_per_window=1,
                    rate_window_ns=10**9,
                ),
                impact=ImpactModel(half_spread_bps=1.0, impact_coef=0.1),
                latency=LatencyModel(base_ns=1_000, jitter_ns=5 * 10**13, seed=3),
            ),
            {"filled", "denied", "canceled"},
        ),
    ],
    ids=["vol-target", "costs-latency-limits"],
)
def test_scalar_and_vectorized_loops_agree_on_bundled_momentum(bundled, cfg, statuses):
    scalar, vector = both(bundled, momentum_20d(), cfg)
    assert scalar.hashes() == vector.hashes()
    assert scalar.stats == pytest.approx(vector.stats, nan_ok=True)
    assert scalar.state_changes == vector.state_changes
    assert scalar.stats["n_fills"] > 500
    assert set(scalar.orders.status) == statuses


def test_auto_picks_scalar_for_small_universes_and_scalar_refuses_large_ones():
    small = panel_from_bars(random_walk(3, 10))
    large = panel_from_bars(random_walk(8, 10))
    assert isinstance(make_loop(small, BuyAndHold(), BacktestConfig()), ScalarBarBacktest)
    assert isinstance(make_loop(large, BuyAndHold(), BacktestConfig()), BarBacktest)
    forced = BacktestConfig(loop="vectorized")
    assert isinstance(make_loop(small, BuyAndHold(), forced), BarBacktest)
    with pytest.raises(ValueError, match="at most 7 symbols"):
        make_loop(large, BuyAndHold(), BacktestConfig(loop="scalar"))
    with pytest.raises(ValueError, match="loop must be"):
        BacktestConfig(loop="fast")  # type: ignore[arg-type]


configs = st.builds(
    BacktestConfig,
    strategy=st.builds(
        StrategyConfig,
        mode=st.sampled_from(["sign", "linear"]),
        score_scale=st.sampled_from([1.0, 50.0]),
        long_only=st.booleans(),
        target_vol=st.sampled_from([None, 0.2]),
        periods_per_year=st.just(98_280.0),
        max_weight=st.sampled_from([0.3, 1.0]),
        max_gross_leverage=st.sampled_from([0.5, 1.0, 3.0]),
        rebalance_threshold=st.sampled_from([0.0, 0.02, math.inf]),
        max_turnover=st.sampled_from([None, 0.1]),
    ),
    risk=st.builds(
        RiskLimits,
        max_position_notional=st.sampled_from([math.inf, 0.4, 300_000.0]),
        max_gross_notional=st.sampled_from([math.inf, 1.2, 900_000.0]),
        max_net_notional=st.sampled_from([math.inf, 0.5]),
        max_order_notional=st.sampled_from([math.inf, 200_000.0]),
        max_orders_per_window=st.sampled_from([0, 2]),
        rate_window_ns=st.just(120 * 10**9),
        max_drawdown=st.sampled_from([0.01, 0.5]),
        basis=st.sampled_from(["absolute", "equity"]),
    ),
    fees=st.builds(FeeModel, taker_rate=st.sampled_from([0.0, 0.001])),
    impact=st.builds(
        ImpactModel,
        half_spread_bps=st.sampled_from([0.0, 3.0]),
        impact_coef=st.sampled_from([0.0, 0.2]),
    ),
    latency=st.builds(
        LatencyModel,
        base_ns=st.sampled_from([0, 10**9]),
        jitter_ns=st.sampled_from([0, 150 * 10**9]),
        seed=st.integers(0, 5),
    ),
    lot_size=st.sampled_from(["0.000001", "1"]),
    min_notional=st.sampled_from(["0", "5000"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg=configs,
    n_symbols=st.integers(1, 7),
    seed=st.integers(0, 1000),
    drop=st.sampled_from([0.0, 0.3]),
    lookback=st.sampled_from([2, 5]),
)
def test_scalar_loop_is_bit_identical_to_the_vectorized_loop(cfg, n_symbols, seed, drop, lookback):
    bars = random_walk(n_symbols, 60, seed=seed, drop=drop)
    scalar, vector = both(bars, TimeSeriesMomentum(lookback), cfg)
    assert scalar.hashes() == vector.hashes()
    assert scalar.state_changes == vector.state_changes


def test_scalar_loop_with_a_per_batch_signal_matches():
    class PerBatch:
        name = "per_batch"

        def scores(self, ts_ns, symbols, history):
            return momentum_12_1().scores(ts_ns, symbols, history)

    bars = random_walk(3, 300, seed=4, drop=0.2)
    cfg = BacktestConfig(strategy=StrategyConfig(max_gross_leverage=2))
    scalar, vector = both(bars, PerBatch(), cfg)
    assert scalar.hashes() == vector.hashes()


floats = st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, -0.0, 1e-300, -5e-324])


@given(st.lists(floats, min_size=0, max_size=7))
def test_nsum_is_numpy_sum_for_short_arrays(values):
    expected = np.asarray(values, dtype=np.float64).sum()
    got = nsum(values)
    assert got == expected and math.copysign(1, got) == math.copysign(1, expected)


@given(
    pos=st.integers(-50, 50).map(float),
    avg=st.floats(1, 200),
    qty=st.integers(-80, 80).map(float),
    price=st.floats(1, 200),
)
def test_scalar_average_cost_matches_the_vectorized_one(pos, avg, qty, price):
    avg = avg if pos else 0.0
    vec = average_cost_update(np.array([pos]), np.array([avg]), np.array([qty]), np.array([price]))
    assert average_cost_update_scalar(pos, avg, qty, price) == tuple(float(v[0]) for v in vec)
