"""Dynamic stress: crises replayed through the trading core with the live 2 % halt."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
import pytest

from rrr_live.execution.models import FeeModel, ImpactModel
from rrr_live.risk.limits import RiskLimits
from rrr_live.strategy.signals import PrecomputedScores
from rrr_live.strategy.sizing import StrategyConfig
from rrr_pipelines.lib.risk.dynamic_stress import (
    StressWindow,
    close_returns,
    crisis_windows,
    dynamic_stress,
    live_stress_config,
    replay_window,
    worst_dynamic_loss,
)
from rrr_pipelines.lib.risk.stress import NamedScenario, historical_scenarios
from rrr_pipelines.lib.sources.bundled import BundledSource

LEHMAN = StressWindow(
    "Autumn 2008 (Lehman)",
    pd.Timestamp("2008-09-12", tz="UTC"),
    pd.Timestamp("2008-11-20", tz="UTC"),
)


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame:
    source = BundledSource(symbols=["SP500"])
    return source.fetch(datetime(2007, 6, 1, tzinfo=UTC), datetime(2009, 6, 1, tzinfo=UTC))


def _long_from(bars: pd.DataFrame, first: pd.Timestamp) -> PrecomputedScores:
    """+1 from the bar ``first`` on, nothing before (nothing trades in the history)."""
    rows = bars.loc[bars["ts"] >= first, ["ts", "symbol"]]
    return PrecomputedScores(pd.Series(1.0, index=pd.MultiIndex.from_frame(rows)), "long")


def _held(cfg):
    return replace(cfg, strategy=StrategyConfig(rebalance_threshold=math.inf))


def _decision_bar(bars: pd.DataFrame, start: pd.Timestamp) -> pd.Timestamp:
    grid = pd.DatetimeIndex(bars["ts"]).unique().sort_values()
    return grid[grid.searchsorted(start, side="right") - 2]


def test_flatten_bounds_a_fully_long_crisis_loss(sp500):
    cfg = _held(live_stress_config())  # live limits: 2 % halt, flatten; evaluation costs
    assert cfg.risk.max_drawdown == 0.02 and cfg.risk.on_halt == "flatten"
    row = replay_window(sp500, _long_from(sp500, _decision_bar(sp500, LEHMAN.start)), LEHMAN, cfg)
    assert row["covered"] and row["halted"] and "HALTED" in row["state_path"]
    e0 = row["value_at_start"]
    qty = row["book_at_start"]["SP500"] / sp500.set_index("ts").loc[LEHMAN.start, "close"]
    bars = sp500.set_index("ts")
    k = bars.index.get_loc(pd.Timestamp(row["halt_date"], tz="UTC"))
    c_prev, c_k = bars["close"].iloc[k - 1], bars["close"].iloc[k]
    flat_fill = bars.index[k + 1]  # reduce-only market order at the next open
    # costs of the flattening sell: taker fee, half-spread and square-root impact on its notional
    trigger = max(0.0, qty * (c_prev - c_k)) / e0
    gap = max(0.0, qty * (c_k - bars["open"].loc[flat_fill])) / e0
    notional = qty * bars["open"].loc[flat_fill]
    spread = cfg.impact.half_spread_bps * 1e-4 * notional
    adv = bars["volume"].iloc[k - cfg.adv_lookback + 1 : k + 1].mean()
    impact = cfg.impact.impact_coef * math.sqrt(qty / adv) * notional
    costs = (cfg.fees.taker_rate * notional + spread + impact) / e0
    bound = cfg.risk.max_drawdown + trigger + gap + costs
    assert row["loss"] <= bound + 1e-12
    assert row["loss"] < row["static_loss"]  # the halt acted


def test_never_rebalanced_costless_unhalted_book_equals_the_static_loss(sp500):
    cfg = replace(
        _held(live_stress_config()),
        fees=FeeModel(maker_rate=0.0, taker_rate=0.0),
        impact=ImpactModel(half_spread_bps=0.0, impact_coef=0.0),
        risk=RiskLimits(max_drawdown=1.0),
    )
    row = replay_window(sp500, _long_from(sp500, _decision_bar(sp500, LEHMAN.start)), LEHMAN, cfg)
    assert not row["halted"]
    static = historical_scenarios(
        close_returns(sp500), row["book_at_start"],
        (NamedScenario(LEHMAN.name, "2008-09-12", "2008-11-20"),),
    )  # fmt: skip
    assert row["loss"] == pytest.approx(-static["pnl"].iloc[0] / row["value_at_start"], abs=1e-9)
    assert row["loss"] == pytest.approx(row["static_loss"], abs=1e-9)


def test_windows_outside_the_oos_span_are_not_covered(sp500):
    ts = sp500["ts"]
    inside = sp500.loc[(ts >= "2008-06-02") & (ts <= "2009-03-31"), ["ts", "symbol"]]
    scores = pd.Series(1.0, index=pd.MultiIndex.from_frame(inside))
    windows = crisis_windows(sp500, (inside["ts"].min(), inside["ts"].max()))
    names = [w.name for w in windows]
    assert {"worst 1-day (OOS)", "worst 5-day (OOS)", "worst 20-day (OOS)"} <= set(names)
    table = dynamic_stress(sp500, scores, windows)
    by_name = table.set_index("scenario")
    assert by_name.loc["Autumn 2008 (Lehman)", "covered"]
    assert not by_name.loc["Flash crash May 2010", "covered"]
    assert not by_name.loc["Dot-com crash 2000-02", "covered"]
    assert by_name.loc["worst 20-day (OOS)", "covered"]
    covered = table[table["covered"].astype(bool)]
    assert worst_dynamic_loss(table) == covered["loss"].max()
