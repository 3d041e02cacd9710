import math

import numpy as np
import pandas as pd
import pytest

from rrr_live.backtest.data import panel_from_bars
from rrr_live.domain.errors import BacktestInputError
from rrr_live.strategy.history import PanelHistory, rolling_mean_volume, rolling_volatility
from rrr_live.strategy.signals import (
    BuyAndHold,
    PrecomputedScores,
    TimeSeriesMomentum,
    momentum_12_1,
    momentum_20d,
)
from rrr_live.strategy.sizing import Strategy, StrategyConfig
from tests.live.core.bars_util import random_walk


def test_sign_and_linear_raw_weights():
    scores = np.array([0.5, -0.02, 0.0, np.nan, -3.0])
    sign = Strategy(StrategyConfig(entry_threshold=0.05)).raw_weights(scores)
    assert np.array_equal(sign, [1.0, 0.0, 0.0, np.nan, -1.0], equal_nan=True)
    lin = Strategy(StrategyConfig(mode="linear", score_scale=2.0, long_only=True)).raw_weights(
        scores
    )
    assert np.array_equal(lin, [1.0, 0.0, 0.0, np.nan, 0.0], equal_nan=True)


def test_volatility_targeting_and_caps():
    cfg = StrategyConfig(
        target_vol=0.10, periods_per_year=256, max_weight=0.8, max_gross_leverage=1.0
    )
    strat = Strategy(cfg)
    bar_vol = np.array([0.01, 0.00625, np.nan])  # annual 16 %, 10 %, unknown
    base = strat.base_weights(np.array([1.0, -1.0, 1.0]), bar_vol)
    assert base == pytest.approx([0.625, -0.8, 0.0])  # 0.1/0.16; 0.1/0.1 capped at 0.8
    w = strat.portfolio_weights(base, np.zeros(3), others_gross=0.2)
    assert w == pytest.approx(base * 0.8 / 1.425)  # scaled into the 0.8 of gross left


def test_turnover_band_and_cap():
    strat = Strategy(StrategyConfig(rebalance_threshold=0.1, max_gross_leverage=5))
    w = strat.portfolio_weights(np.array([1.0, 1.0, 0.0, -1.0]), np.array([0.95, 0.0, 0.5, 0.9]))
    assert w == pytest.approx([0.95, 1.0, 0.0, -1.0])  # resize skipped; entry, exit, flip go
    capped = Strategy(StrategyConfig(max_turnover=0.5, max_gross_leverage=5))
    w = capped.portfolio_weights(np.array([1.0, -1.0]), np.array([0.0, 0.0]))
    assert w == pytest.approx([0.25, -0.25])
    nan = capped.portfolio_weights(np.array([np.nan]), np.array([0.3]))
    assert np.isnan(nan[0])


def test_order_lots_rounds_toward_zero_and_drops_small_orders():
    lots = Strategy.order_lots(
        target_w=np.array([0.5, -0.5, 0.001, np.nan]),
        equity=1_000.0,
        price=np.array([3.0, 3.0, 3.0, 3.0]),
        position_lots=np.array([0, 0, 0, 7]),
        lot=np.full(4, 0.01),
        min_notional=np.array([0.0, 0.0, 5.0, 0.0]),
    )
    assert lots.tolist() == [16666, -16666, 0, 0]


def test_momentum_precompute_matches_per_batch_scores_without_look_ahead():
    panel = panel_from_bars(random_walk(4, 60, drop=0.2, seed=3))
    history = PanelHistory(panel)
    for signal in (TimeSeriesMomentum(5, 1), momentum_20d(), BuyAndHold()):
        pre = signal.precompute(panel)
        for k in range(panel.n_batches):
            history.set_batch(k)
            lo, hi = panel.batch_starts[k], panel.batch_starts[k + 1]
            names = [panel.symbols[i] for i in history.symbol_idx]
            got = signal.scores(int(panel.close_ns[lo]), names, history)
            assert np.array_equal(got, pre[lo:hi], equal_nan=True)
    assert momentum_12_1().lookback == 252 and momentum_12_1().skip == 21


def test_history_windows_end_at_the_current_bar():
    bars = random_walk(2, 10, seed=1)
    panel = panel_from_bars(bars)
    history = PanelHistory(panel)
    history.set_batch(3)
    closes = history.closes(5)
    expected = bars[bars.symbol == "S000"].close.to_numpy()[:4]
    assert np.isnan(closes[0, :2]).all() and closes[0, 2:].tolist() == expected.tolist()


def test_rolling_helpers_match_pandas():
    bars = random_walk(3, 40, seed=2, drop=0.1)
    panel = panel_from_bars(bars)
    vol = rolling_volatility(panel, 5)
    adv = rolling_mean_volume(panel, 4)
    frame = pd.DataFrame({"s": panel.symbol_id, "c": panel.close, "v": panel.volume})
    logret = frame.groupby("s")["c"].transform(lambda c: np.log(c).diff())
    exp_vol = logret.groupby(frame.s).transform(lambda r: r.rolling(5).std())
    exp_adv = frame.groupby("s")["v"].transform(lambda v: v.rolling(4, min_periods=1).mean())
    assert np.allclose(vol, exp_vol, equal_nan=True, rtol=1e-9)
    assert np.allclose(adv, exp_adv, rtol=1e-12)


def test_precomputed_scores_lookup_and_validation():
    bars = random_walk(2, 5, seed=4)
    frame = bars.loc[:, ["ts", "symbol"]].assign(score=np.arange(len(bars), dtype=float))
    frame = frame[frame.symbol == "S001"]
    provider = PrecomputedScores(frame.set_index(["ts", "symbol"])["score"])
    panel = panel_from_bars(bars)
    pre = provider.precompute(panel)
    s1 = panel.symbol_id == 1
    assert pre[s1].tolist() == frame.score.tolist() and np.isnan(pre[~s1]).all()
    history = PanelHistory(panel)
    history.set_batch(2)
    assert np.array_equal(
        provider.scores(0, ["S000", "S001"], history), [math.nan, 7.0], equal_nan=True
    )
    naive = frame.assign(ts=frame.ts.dt.tz_localize(None))
    with pytest.raises(BacktestInputError, match="tz-aware"):
        PrecomputedScores(naive)
