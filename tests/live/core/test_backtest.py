import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.engine import run_backtest
from rrr_live.backtest.stats import compute_stats, max_drawdown
from rrr_live.domain.errors import BacktestInputError
from rrr_live.execution.models import FeeModel, ImpactModel, LatencyModel
from rrr_live.risk.limits import RiskLimits
from rrr_live.strategy.signals import BuyAndHold, TimeSeriesMomentum, momentum_20d
from rrr_live.strategy.sizing import StrategyConfig
from tests.live.core.bars_util import random_walk, real_daily

HOLD = StrategyConfig(rebalance_threshold=math.inf)


def test_buy_and_hold_sp500_equals_the_analytic_result():
    bars = real_daily("sp500")
    cfg = BacktestConfig(
        strategy=HOLD,
        fees=FeeModel(taker_rate=0.0002),
        impact=ImpactModel(half_spread_bps=1.0, impact_coef=0.1),
        # the default 2 % drawdown halt fires in January 1999; "freeze" keeps the position
        risk=RiskLimits(on_halt="freeze"),
    )
    result = run_backtest(bars, BuyAndHold(), cfg)
    c0, o1, c_end = bars.close.iloc[0], bars.open.iloc[1], bars.close.iloc[-1]
    # analytic: at the first close buy trunc(equity / close / lot) lots, filled at the next
    # open plus half-spread and sqrt impact (ADV = the first bar's volume), rounded up to a
    # cent; pay 2 bp; then hold to the end
    lots = math.trunc(1e6 / c0 / 1e-6)
    qty = lots * 1e-6
    impact = 0.1 * math.sqrt(qty / bars.volume.iloc[0])
    fill = math.ceil(o1 * (1 + 1e-4 + impact) * 100) / 100
    fee = 0.0002 * qty * fill
    expected = 1e6 - qty * fill - fee + qty * c_end
    assert len(result.fills) == 1 and result.fills.price.iloc[0] == pytest.approx(fill, abs=1e-12)
    assert result.equity.equity.iloc[-1] == pytest.approx(expected, rel=1e-9)
    # the same as a price ratio: the invested fraction grows by c_end / fill, less the fee
    invested = qty * fill / 1e6
    ratio = 1 + invested * (c_end / fill - 1) - fee / 1e6
    assert result.stats["total_return"] + 1 == pytest.approx(ratio, rel=1e-9)
    assert result.stats["fees"] == pytest.approx(fee, rel=1e-12)


def test_same_inputs_give_identical_hashes_and_changes_show():
    bars = random_walk(6, 120, seed=7, drop=0.1)
    cfg = BacktestConfig(
        strategy=StrategyConfig(max_gross_leverage=2, rebalance_threshold=0.02),
        risk=RiskLimits(max_drawdown=0.5),
        latency=LatencyModel(base_ns=1_000, jitter_ns=50_000_000, seed=1),
    )
    a = run_backtest(bars, TimeSeriesMomentum(10), cfg)
    b = run_backtest(bars.sample(frac=1.0, random_state=1), TimeSeriesMomentum(10), cfg)
    assert a.hashes() == b.hashes() and len(a.fills) > 20
    c = run_backtest(bars, TimeSeriesMomentum(10), replace(cfg, fees=FeeModel(taker_rate=0.001)))
    assert c.hashes()["fills"] != a.hashes()["fills"]


def test_no_look_ahead_fills_after_decision_and_future_cannot_change_the_past():
    bars = random_walk(4, 200, seed=11, drop=0.15)
    cfg = BacktestConfig(
        strategy=StrategyConfig(max_gross_leverage=2), risk=RiskLimits(max_drawdown=0.9)
    )
    full = run_backtest(bars, TimeSeriesMomentum(8), cfg)
    orders = full.orders.set_index("order_id")
    fills = full.fills.join(orders[["ts"]].rename(columns={"ts": "decided"}), on="order_id")
    assert (fills.ts >= fills.decided).all()
    # each fill is priced off the open of a bar that opened at or after the decision
    opens = bars.set_index(["symbol", "ts"]).open
    ref = opens.loc[list(zip(fills.symbol, fills.ts, strict=True))].to_numpy()
    sign = np.where(fills.side == "buy", 1, -1)
    assert np.allclose(fills.price, ref * (1 + sign * 1e-4), atol=0.0100001)
    assert (fills.ts > fills.decided - pd.Timedelta("1ns")).all()
    # perturb everything after a cut-off: decisions up to it are unchanged
    cut = bars.ts.sort_values().iloc[len(bars) // 2]
    noisy = bars.copy()
    later = noisy.ts >= cut
    noisy.loc[later, ["open", "high", "low", "close", "adj_close"]] *= 1.37
    other = run_backtest(noisy, TimeSeriesMomentum(8), cfg)
    close_cut = cut  # bars opening at cut close one minute later; decisions < cut are safe
    early = full.orders[full.orders.ts <= close_cut].reset_index(drop=True)
    early_other = other.orders[other.orders.ts <= close_cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(early, early_other)
    assert not full.orders.equals(other.orders)


def test_decision_batches_are_the_symbols_whose_bar_closed():
    class Recorder:
        name = "recorder"

        def __init__(self):
            self.calls = []

        def scores(self, ts_ns, symbols, history):
            self.calls.append((ts_ns, list(symbols)))
            return np.ones(len(symbols))

    bars = random_walk(5, 30, seed=5, drop=0.3)
    rec = Recorder()
    run_backtest(bars, rec, BacktestConfig(strategy=HOLD))
    close = bars.ts + pd.Timedelta("1min")
    expected = [
        (int(ts.value), sorted(group.symbol))
        for ts, group in bars.assign(close=close.dt.as_unit("ns")).groupby("close")
    ]
    assert rec.calls == expected


def test_precomputed_and_per_batch_paths_agree():
    class PerBatch:
        name = "per_batch"

        def scores(self, ts_ns, symbols, history):
            return TimeSeriesMomentum(6).scores(ts_ns, symbols, history)

    bars = random_walk(5, 80, seed=9, drop=0.2)
    cfg = BacktestConfig(
        strategy=StrategyConfig(target_vol=0.2, periods_per_year=98_280, max_gross_leverage=3),
        impact=ImpactModel(half_spread_bps=2, impact_coef=0.05),
        risk=RiskLimits(max_drawdown=0.9),
    )
    a = run_backtest(bars, TimeSeriesMomentum(6), cfg).hashes()
    b = run_backtest(bars, PerBatch(), cfg).hashes()
    assert a == b


def test_latency_longer_than_a_bar_waits_for_a_later_bar():
    bars = random_walk(1, 6, seed=1)
    cfg = BacktestConfig(strategy=HOLD, latency=LatencyModel(base_ns=90 * 10**9))
    result = run_backtest(bars, BuyAndHold(), cfg)
    decided = result.orders.ts.iloc[0]
    assert decided == bars.ts.iloc[0] + pd.Timedelta("1min")
    # arrival at +90 s lands inside the bar opening at +60 s; it fills on the bar at +120 s
    assert result.fills.ts.iloc[0] == decided + pd.Timedelta("90s")  # at arrival
    ref = bars.open.iloc[2] * (1 + 1e-4)
    assert result.fills.price.iloc[0] == pytest.approx(math.ceil(ref * 100) / 100)


def test_risk_denials_and_halt_are_recorded():
    bars = random_walk(3, 100, seed=3)
    small = BacktestConfig(risk=RiskLimits(max_position_notional=100_000, max_drawdown=0.9))
    res = run_backtest(
        bars, BuyAndHold(), replace(small, strategy=StrategyConfig(max_gross_leverage=3))
    )
    denied = res.orders[res.orders.status == "denied"]
    assert len(denied) >= 3 and set(denied.reason) == {"position limit"}
    assert res.stats["n_denied"] == len(denied)
    halting = BacktestConfig(
        risk=RiskLimits(max_drawdown=0.001), strategy=StrategyConfig(max_gross_leverage=3)
    )
    frozen = run_backtest(
        bars, TimeSeriesMomentum(3), replace(halting, risk=replace(halting.risk, on_halt="freeze"))
    )
    assert frozen.state_changes and frozen.state_changes[-1].new.value == "halted"
    halted_at = pd.Timestamp(frozen.state_changes[-1].ts_ns, unit="ns", tz="UTC")
    assert (frozen.orders.ts < halted_at).all()  # freeze: nothing sent while HALTED
    assert (frozen.fills.ts <= halted_at).all()
    assert (frozen.equity.state[frozen.equity.ts >= halted_at] == "halted").all()
    # flatten (the default): the halting decision closes every position, then nothing
    res = run_backtest(bars, TimeSeriesMomentum(3), halting)
    assert res.state_changes == frozen.state_changes
    closing = res.orders[res.orders.ts == halted_at]
    assert len(closing) and (res.orders.ts <= halted_at).all()
    held = frozen.fills.assign(n=np.where(frozen.fills.side == "buy", 1, -1) * frozen.fills.qty)
    held = held[held.ts <= halted_at].groupby("symbol").n.sum()
    expected = held[held.abs() > 1e-9]
    assert sorted(closing.symbol) == sorted(expected.index)
    signed = np.where(res.fills.side == "buy", 1, -1) * res.fills.qty
    assert res.fills.assign(n=signed).groupby("symbol").n.sum().abs().max() < 1e-9
    assert (res.equity.state[res.equity.ts >= halted_at] == "halted").all()


def test_bad_bars_are_rejected_with_a_reason():
    bars = random_walk(2, 5)
    with pytest.raises(BacktestInputError, match="one bar interval"):
        run_backtest(pd.concat([bars, random_walk(1, 5, interval="5m")]), BuyAndHold())
    with pytest.raises(BacktestInputError, match="tz-aware"):
        run_backtest(bars.assign(ts=bars.ts.dt.tz_localize(None)), BuyAndHold())
    with pytest.raises(BacktestInputError, match="duplicate"):
        run_backtest(pd.concat([bars, bars.iloc[:1]]), BuyAndHold())
    with pytest.raises(BacktestInputError, match="lack columns"):
        run_backtest(bars.drop(columns="open"), BuyAndHold())


def test_stats_on_a_known_curve():
    day = 86_400 * 10**9
    ts = np.arange(5, dtype=np.int64) * day
    eq = np.array([100.0, 110.0, 99.0, 108.9, 121.0])
    s = compute_stats(
        ts, eq, np.full(5, 50.0), traded_notional=200.0, fees=3.0, periods_per_year=252
    )
    rets = eq[1:] / eq[:-1] - 1
    assert s["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(252))
    assert s["max_drawdown"] == pytest.approx(0.1) == max_drawdown(eq)
    assert s["hit_rate"] == pytest.approx(0.75) and s["exposure"] == pytest.approx(np.mean(50 / eq))
    assert s["sortino"] == pytest.approx(rets.mean() / math.sqrt(0.1**2 / 4) * math.sqrt(252))
    assert s["total_return"] == pytest.approx(0.21) and s["fees"] == 3.0


def test_momentum_runs_on_real_nasdaq_and_sp500():
    bars = pd.concat([real_daily("sp500"), real_daily("nasdaq", "NASDAQ")], ignore_index=True)
    cfg = BacktestConfig(
        strategy=StrategyConfig(target_vol=0.1, max_gross_leverage=2, rebalance_threshold=0.05),
        risk=RiskLimits(max_drawdown=0.5),
    )
    res = run_backtest(bars, momentum_20d(), cfg)
    assert len(res.equity) == bars.ts.nunique() and res.stats["n_fills"] > 100
    assert set(res.fills.symbol) == {"NASDAQ", "SP500"}
    assert res.stats["exposure"] > 0 and math.isfinite(res.stats["sharpe"])
