"""Backtests fed with ticks: fills come from the matching engine's book, not the bar open."""

import math

import numpy as np
import pandas as pd
import pytest

from rrr_live.backtest.config import BacktestConfig, TickExecution
from rrr_live.backtest.engine import run_backtest
from rrr_live.backtest.ticks import ticks_from_bars
from rrr_live.domain.errors import BacktestInputError
from rrr_live.execution.models import FeeModel, ImpactModel, LatencyModel
from rrr_live.risk.limits import RiskLimits
from rrr_live.strategy.signals import BuyAndHold, TimeSeriesMomentum, momentum_20d
from rrr_live.strategy.sizing import StrategyConfig
from tests.live.core.bars_util import random_walk, real_daily

T0 = pd.Timestamp("2024-01-02 14:30", tz="UTC")
SEC = 10**9
HOLD = StrategyConfig(rebalance_threshold=math.inf)


def flat_bars(n: int = 4, price: float = 100.0) -> pd.DataFrame:
    ts = T0 + pd.Timedelta("1min") * np.arange(n)
    return pd.DataFrame(
        {
            "source": "test",
            "symbol": "X",
            "interval": "1m",
            "ts": ts,
            "open": price,
            "high": price,
            "low": price,
            "close": price,
            "adj_close": price,
            "volume": 1000.0,
        }
    )


def tick_frame(rows: list[tuple[int, str, str, float, float]]) -> pd.DataFrame:
    """Rows of (seconds after T0, kind, side, price, size) for symbol X."""
    return pd.DataFrame(
        {
            "ts_ns": [T0.value + s * SEC for s, *_ in rows],
            "symbol": "X",
            "kind": [r[1] for r in rows],
            "side": [r[2] for r in rows],
            "price": [r[3] for r in rows],
            "size": [r[4] for r in rows],
        }
    )


BOOK = [
    (10, "snapshot", "bid", 99.99, 500),
    (10, "snapshot", "ask", 100.00, 60),
    (10, "snapshot", "ask", 100.05, 100),
]


def small_config(**kw) -> BacktestConfig:
    base = dict(
        initial_cash=10_000.0,
        strategy=HOLD,
        lot_size="1",
        fees=FeeModel(maker_rate=-0.0001, taker_rate=0.001),
        risk=RiskLimits(max_drawdown=0.5),
    )
    return BacktestConfig(**(base | kw))


def fill_rows(result):
    f = result.fills
    return list(zip((f.ts - T0).dt.total_seconds(), f.price, f.qty, strict=True))


def test_market_order_walks_two_levels_with_taker_fees():
    ticks = tick_frame([*BOOK, (90, "trade", "sell", 99.99, 1)])
    res = run_backtest(flat_bars(), BuyAndHold(), small_config(), ticks=ticks)
    # decided at the first close (60 s) for trunc(10 000 / 100) = 100 lots; with no latency it
    # meets the book of 10 s when the next tick (90 s) arrives: 60 at 100.00, 40 at 100.05
    assert fill_rows(res) == [(60.0, 100.00, 60.0), (60.0, 100.05, 40.0)]
    assert res.fills.fee.tolist() == pytest.approx([0.001 * 6000, 0.001 * 4002])
    assert res.orders.status.tolist() == ["filled"]
    cash = 10_000 - 6000 - 4002 - 6.0 - 4.002
    assert res.equity.cash.iloc[1] == pytest.approx(cash, abs=1e-9)
    assert res.equity.equity.iloc[-1] == pytest.approx(cash + 100 * 100.0, abs=1e-9)


def test_latency_meets_the_book_as_it_is_at_arrival():
    ticks = tick_frame([*BOOK, (100, "diff", "ask", 100.00, 0)])
    cfg = small_config(latency=LatencyModel(base_ns=45 * SEC))
    res = run_backtest(flat_bars(), BuyAndHold(), cfg, ticks=ticks)
    # arrival at 105 s, after the 100.00 ask was pulled at 100 s: all 100 at 100.05
    assert fill_rows(res) == [(105.0, 100.05, 100.0)]


def test_resting_limit_fills_only_after_the_queue_ahead_trades():
    ticks = tick_frame(
        [
            (10, "snapshot", "bid", 100.00, 30),
            (10, "snapshot", "ask", 100.02, 50),
            (70, "trade", "sell", 100.00, 20),  # 30 ahead of us -> 10 ahead, no fill
            (80, "trade", "sell", 100.00, 40),  # 10 to the queue, 30 to us
            (90, "trade", "sell", 99.99, 500),  # trades through our price: the other 70
        ]
    )
    cfg = small_config(ticks=TickExecution(order_type="limit"))
    res = run_backtest(flat_bars(), BuyAndHold(), cfg, ticks=ticks)
    assert fill_rows(res) == [(80.0, 100.00, 30.0), (90.0, 100.00, 70.0)]
    assert res.fills.fee.tolist() == pytest.approx([-0.0001 * 3000, -0.0001 * 7000])
    assert res.orders.status.tolist() == ["filled"]
    # a queue that never trades leaves the order partly filled at the end of data
    partial = run_backtest(flat_bars(), BuyAndHold(), cfg, ticks=ticks.iloc[:4])
    assert fill_rows(partial) == [(80.0, 100.00, 30.0)]
    assert partial.orders.status.tolist() == ["partially_filled"]
    assert partial.orders.reason.tolist() == ["expired at end of data"]


def assert_same_trading(bars_only, with_ticks, spread_bps):
    cols = ["ts", "order_id", "symbol", "side", "qty", "price"]
    pd.testing.assert_frame_equal(bars_only.fills[cols], with_ticks.fills[cols])
    traded = float(bars_only.fills.notional.sum())
    gap = abs(bars_only.equity.equity.iloc[-1] - with_ticks.equity.equity.iloc[-1])
    assert gap <= traded * spread_bps * 1e-4  # within the modelled spread (in fact ~0)
    assert with_ticks.equity.equity.to_numpy() == pytest.approx(
        bars_only.equity.equity.to_numpy(), rel=1e-9
    )


def test_ticks_derived_from_minute_bars_reproduce_the_bars_only_run():
    bars = random_walk(3, 150, seed=2)
    cfg = BacktestConfig(
        strategy=StrategyConfig(max_gross_leverage=2, rebalance_threshold=0.05),
        risk=RiskLimits(max_drawdown=0.5),
        impact=ImpactModel(half_spread_bps=2.0),
        fees=FeeModel(taker_rate=0.0005),
    )
    signal = TimeSeriesMomentum(5)
    bars_only = run_backtest(bars, signal, cfg)
    ticks = ticks_from_bars(bars, half_spread_bps=2.0)
    with_ticks = run_backtest(bars, signal, cfg, ticks=ticks)
    assert len(bars_only.fills) > 30
    assert_same_trading(bars_only, with_ticks, 2.0)


def test_ticks_derived_from_daily_bars_wait_over_weekends_like_the_next_open():
    bars = pd.concat([real_daily("sp500"), real_daily("nasdaq", "NASDAQ")], ignore_index=True)
    bars = bars[bars.ts < pd.Timestamp("2004-01-01", tz="UTC")]
    cfg = BacktestConfig(
        strategy=StrategyConfig(target_vol=0.1, max_gross_leverage=2, rebalance_threshold=0.05),
        risk=RiskLimits(max_drawdown=0.6),
        impact=ImpactModel(half_spread_bps=1.0),
    )
    bars_only = run_backtest(bars, momentum_20d(), cfg)
    with_ticks = run_backtest(bars, momentum_20d(), cfg, ticks=ticks_from_bars(bars, 1.0))
    # a Friday-close order reaches an empty (closed) book and waits for Monday's open
    assert (bars_only.fills.ts.dt.day_of_week == 0).any()
    assert_same_trading(bars_only, with_ticks, 1.0)


def test_bad_ticks_are_rejected_with_a_reason():
    bars = flat_bars()
    good = tick_frame(BOOK)
    cases = [
        (good.drop(columns="size"), "lack columns"),
        (good.assign(symbol="Y"), "without bars"),
        (good.assign(kind="quote"), "unknown tick kinds"),
        (good.assign(price=-1.0), "finite and > 0"),
        (good.assign(side="buy"), "does not fit kind"),
        (tick_frame([(5, "diff", "bid", 99.0, 1), *BOOK]), "diff before the first snapshot"),
        (good.drop(columns="ts_ns"), "ts_ns"),
        (good.assign(ts=pd.Timestamp("2024-01-02")).drop(columns="ts_ns"), "tz-aware"),
    ]
    for frame, message in cases:
        with pytest.raises(BacktestInputError, match=message):
            run_backtest(bars, BuyAndHold(), small_config(), ticks=frame)
    with pytest.raises(ValueError, match="order_type"):
        TickExecution(order_type="stop")  # type: ignore[arg-type]
