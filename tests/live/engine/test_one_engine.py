"""One engine: every loop runs the same decision step and rules, so a change to a shared rule
object changes every loop's orders and fills identically."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.data import panel_from_bars
from rrr_live.backtest.engine import BarBacktest, TickBacktest, make_loop, run_backtest
from rrr_live.backtest.ticks import ticks_from_bars
from rrr_live.execution.models import FeeModel, ImpactModel
from rrr_live.risk.limits import RiskLimits
from rrr_live.risk.state import TradingState
from rrr_live.strategy.signals import TimeSeriesMomentum
from rrr_live.strategy.sizing import StrategyConfig
from tests.live.core.bars_util import random_walk

SPREAD_BPS = 2.0
BASE = BacktestConfig(
    strategy=StrategyConfig(max_gross_leverage=2.0, rebalance_threshold=0.02),
    risk=RiskLimits(max_drawdown=0.5),
    fees=FeeModel(taker_rate=0.0005),
    impact=ImpactModel(half_spread_bps=SPREAD_BPS),
)
# a distinct fee model, sizing rule and limit, injected through the shared rule objects
CHANGED = replace(
    BASE,
    fees=FeeModel(taker_rate=0.003),
    strategy=StrategyConfig(
        mode="linear", score_scale=200.0, max_weight=0.6, max_gross_leverage=1.5
    ),
    risk=RiskLimits(max_drawdown=0.5, max_position_notional=350_000.0),
)
ORDER_COLS = ["order_id", "ts", "symbol", "side", "qty", "ref_price", "status", "reason"]
FILL_COLS = ["ts", "order_id", "symbol", "side", "qty", "price", "fee"]


def every_loop(bars: pd.DataFrame, cfg: BacktestConfig) -> dict[str, object]:
    signal = TimeSeriesMomentum(5)
    return {
        "bars": run_backtest(bars, signal, cfg),
        "ticks": run_backtest(bars, signal, cfg, ticks=ticks_from_bars(bars, SPREAD_BPS)),
    }


def test_a_changed_fee_sizing_and_limit_change_every_loop_identically():
    bars = random_walk(4, 160, seed=21)
    before, after = every_loop(bars, BASE), every_loop(bars, CHANGED)
    for runs in (before, after):
        bar_run, tick_run = runs["bars"], runs["ticks"]
        pd.testing.assert_frame_equal(bar_run.orders[ORDER_COLS], tick_run.orders[ORDER_COLS])
        pd.testing.assert_frame_equal(bar_run.fills[FILL_COLS], tick_run.fills[FILL_COLS])
        assert tick_run.equity.equity.to_numpy() == pytest.approx(
            bar_run.equity.equity.to_numpy(), rel=1e-12
        )
    new = after["bars"]
    # each injected rule shows in the result: the fee rate, the linear capped sizing, the limit
    assert np.allclose(new.fills.fee, 0.003 * new.fills.notional)
    assert not before["bars"].orders[ORDER_COLS].equals(new.orders[ORDER_COLS])
    assert set(new.orders.reason) >= {"position limit"}
    assert "position limit" not in set(before["bars"].orders.reason)


def test_loops_are_the_same_driver_with_a_different_venue():
    panel = panel_from_bars(random_walk(2, 20, seed=1))
    bars_loop = make_loop(panel, TimeSeriesMomentum(3), BASE)
    ticks = ticks_from_bars(random_walk(2, 20, seed=1))
    tick_loop = TickBacktest(panel, TimeSeriesMomentum(3), BASE, ticks)
    assert isinstance(bars_loop, BarBacktest) and not isinstance(tick_loop, BarBacktest)
    assert type(bars_loop).run is type(tick_loop).run  # one driver
    assert type(bars_loop.step) is type(tick_loop.step)  # one decision step
    with pytest.raises(ValueError, match="scalar loop was removed"):
        BacktestConfig(loop="scalar")  # type: ignore[arg-type]


def test_a_halt_flattens_in_every_loop_identically():
    bars = random_walk(3, 200, seed=5)
    cfg = replace(BASE, risk=RiskLimits(max_drawdown=0.004))
    runs = every_loop(bars, cfg)
    bar_run, tick_run = runs["bars"], runs["ticks"]
    assert bar_run.state_changes[-1].new is TradingState.HALTED
    assert bar_run.state_changes == tick_run.state_changes
    pd.testing.assert_frame_equal(bar_run.fills[FILL_COLS], tick_run.fills[FILL_COLS])
    signed = np.where(bar_run.fills.side == "buy", 1, -1) * bar_run.fills.qty
    assert bar_run.fills.assign(n=signed).groupby("symbol").n.sum().abs().max() < 1e-9
