"""The runner-state metrics the alert rules watch: trading state, drawdown against its limit,
orders and denials, model refusals, a model's training age (unit tests on a fresh registry)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from rrr_live.clock import SimulatedClock
from rrr_live.feeds.connection import FeedSettings
from rrr_live.inference.lifecycle import LifecycleEvent, trained_until_s
from rrr_live.metrics import Metrics
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.risk.state import TradingState
from rrr_live.service.runner_metrics import RunnerGauges
from rrr_live.service.trader import BatchReport
from rrr_live.strategy.decision import Decision
from rrr_live.venue.model import OrderState
from tests.live.feeds.harness import Run, make_feed, server

S = 1_000_000_000


def _value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def _gauges() -> tuple[Metrics, RunnerGauges, RiskEngine]:
    m = Metrics()
    risk = RiskEngine(RiskLimits(max_drawdown=0.1), Portfolio(["AAA"], 1000.0))
    g = RunnerGauges(m, wall_ns=lambda: 1_700_000_123 * S)
    g.watch_risk(risk)
    return m, g, risk


def test_trading_state_is_read_at_scrape_time():
    m, _, risk = _gauges()
    assert [_value(m, "rrr_trading_state", state=s.value) for s in TradingState] == [1, 0, 0]
    risk.halt(5 * S, "operator")  # no batch in between: a control-API halt shows at once
    assert _value(m, "rrr_trading_state", state="halted") == 1
    assert _value(m, "rrr_trading_state", state="active") == 0
    risk.resume(6 * S)
    assert _value(m, "rrr_trading_state", state="active") == 1


def test_batch_sets_drawdown_against_its_limit_and_counts_orders_and_denials():
    m, g, risk = _gauges()
    assert _value(m, "rrr_drawdown_limit_ratio") == 0.1
    risk.portfolio.update_high_water_mark(1000.0)
    r = BatchReport(7 * S, 1, ["AAA"], [], decision=Decision(7 * S, TradingState.ACTIVE,
                                                              920.0, 0.0, 0.0))  # fmt: skip
    r.denied = [("AAA", "POSITION"), ("AAA", "POSITION"), ("AAA", "RATE")]
    r.rejected = [("c1", "insufficient balance")]
    r.orders = [OrderState(f"c{i}", "FILLED", i, Decimal(1)) for i in (2, 3)]
    g.on_batch(r)
    assert math.isclose(_value(m, "rrr_drawdown_ratio"), 0.08)
    assert _value(m, "rrr_equity") == 920.0
    assert _value(m, "rrr_batches_total") == 1
    assert _value(m, "rrr_last_batch_timestamp_seconds") == 1_700_000_123
    assert _value(m, "rrr_orders_total", outcome="accepted") == 2
    assert _value(m, "rrr_orders_total", outcome="rejected") == 1
    assert _value(m, "rrr_risk_denials_total", reason="POSITION") == 2
    assert _value(m, "rrr_risk_denials_total", reason="RATE") == 1
    assert _value(m, "rrr_risk_denials_total", reason="VAR") == 0  # every reason exists at 0


def test_a_batch_without_a_decision_keeps_the_last_drawdown():
    m, g, risk = _gauges()
    risk.portfolio.update_high_water_mark(1000.0)
    g.on_batch(BatchReport(1 * S, 1, ["AAA"], [], decision=Decision(S, TradingState.ACTIVE,
                                                                    950.0, 0.0, 0.0)))  # fmt: skip
    g.on_batch(BatchReport(2 * S, 2, [], ["AAA"]))
    nan = BatchReport(3 * S, 3, ["AAA"], [], decision=Decision(3 * S, TradingState.HALTED,
                                                               math.nan, 0.0, 0.0))  # fmt: skip
    g.on_batch(nan)
    assert math.isclose(_value(m, "rrr_drawdown_ratio"), 0.05)
    assert _value(m, "rrr_batches_total") == 3


def test_refused_flag_is_set_until_the_alias_moves():
    m, g, _ = _gauges()
    assert _value(m, "rrr_model_refused", alias="champion") == 0
    assert _value(m, "rrr_model_refused", alias="shadow") == 0
    g.on_event(LifecycleEvent("champion", "alias_seen", "3"))
    g.on_event(LifecycleEvent("champion", "refused", "3", "verdict: failed"))
    g.on_event(LifecycleEvent("shadow", "swapped", "4"))
    assert _value(m, "rrr_model_refused", alias="champion") == 1
    assert _value(m, "rrr_model_refused", alias="shadow") == 0
    g.on_event(LifecycleEvent("champion", "alias_seen", "2", "alias moved"))  # rolled back
    assert _value(m, "rrr_model_refused", alias="champion") == 0


def test_trained_until_reads_the_training_pipelines_metadata():
    aware = trained_until_s({"train_rows_last_ts": "2026-11-30 00:00:00+00:00"})
    naive = trained_until_s({"train_rows_last_ts": "2026-11-30 00:00:00"})
    assert aware == naive == 1_795_996_800.0
    assert math.isnan(trained_until_s({}))
    assert math.isnan(trained_until_s({"train_rows_last_ts": "NaT"}))


@pytest.mark.asyncio
async def test_feed_reports_its_last_frame_time_on_the_injected_clock():
    clock = SimulatedClock(1_700_000_000 * S)
    settings = FeedSettings(max_reconnects=0, idle_timeout_s=30, clock=clock)
    async with server("coinbase") as ex:
        feed = await make_feed("coinbase", ex, settings)
        run = Run(feed, lambda _item: clock.advance(1_000_000))  # 1 ms of clock per event
        await run.finish(ex)
    last = feed.metrics.registry.get_sample_value(
        "rrr_feed_last_frame_timestamp_seconds", {"venue": "coinbase"}
    )
    # the recorded Coinbase frames carry one event each: the last frame's time is the last
    # event's receive time (the clock moved on after it)
    assert last == max(i.recv_ns for i in run.items) / 1e9 < clock.now_ns() / 1e9
