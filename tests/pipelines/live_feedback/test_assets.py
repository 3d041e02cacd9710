"""The live assets materialized on a small real journal; their metadata carries the numbers."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from rrr_pipelines.defs.live.assets import feature_drift, live_performance
from rrr_pipelines.defs.live.risk import live_risk_report
from rrr_pipelines.defs.ml.automation import retrain_on_live_feedback
from rrr_pipelines.lib.feedback import breached_since
from tests.pipelines.live_feedback.conftest import live_bars, resources
from tests.pipelines.live_feedback.kit import Journal, JournalFill, write_journal

RISK_CONFIG = {"ops": {"live_risk_report": {"config": {"window": 200, "n_paths": 2000}}}}


def _close(bars: pd.DataFrame, seq: int, symbol: str) -> float:
    times = sorted(bars["ts"].unique())
    row = bars[(bars["ts"] == times[seq - 1]) & (bars["symbol"] == symbol)]
    return float(row["close"].iloc[0])


def test_live_assets_report_pnl_scores_slippage_drift_and_risk(
    db: str, training_bars: pd.DataFrame
) -> None:
    bars = live_bars(training_bars)
    equity = [100_000.0 + 3.0 * i - 7.0 * (i % 5) for i in range(500)]
    buy_px, sell_px = _close(bars, 10, "AAA") * 1.001, _close(bars, 20, "BBB") * 0.998
    fills = [JournalFill(10, "AAA", "BUY", 2.0, buy_px, 1),
             JournalFill(20, "BBB", "SELL", 1.0, sell_px, 2)]  # fmt: skip
    write_journal(db, Journal("r1", bars, shadow="4", equity=equity, fills=fills))
    with dg.instance_for_test() as instance:
        assets = [live_performance, feature_drift, live_risk_report]
        res = dg.materialize(assets, instance=instance, resources=resources(db),
                             run_config=RISK_CONFIG)  # fmt: skip
        assert res.success
        perf = res.asset_materializations_for_node("live_performance")[0].metadata
        drift = res.asset_materializations_for_node("feature_drift")[0].metadata
        risk = res.asset_materializations_for_node("live_risk_report")[0].metadata

    assert perf["r1.pnl"].value == pytest.approx(equity[-1] - equity[0])
    assert perf["r1.batches"].value == 500 and perf["r1.fills"].value == 2
    champion, shadow = perf["r1.champion"].value, perf["r1.shadow"].value
    assert champion["version"] == "3" and champion["ic"] == pytest.approx(1.0)
    assert shadow["version"] == "4" and shadow["ic"] == pytest.approx(-1.0)
    assert champion["n"] == 3 * 499  # every bar but each symbol's last has its next return
    w = np.array([2.0 * buy_px, 1.0 * sell_px])  # buy 10 bps over, sell 20 bps under the close
    expected = (10.0 * w[0] + 20.0 * w[1]) / w.sum()
    assert perf["r1.slippage_vs_decision_bps"].value == pytest.approx(expected)
    assert "r1.equity_plot" in perf and "data:image/png;base64" in perf["r1.ic_plot"].value

    assert drift["r1.drifted"].value == [] and drift["r1.max_psi"].value < 0.25
    assert drift["r1.feedback_rows"].value == []
    assert set(drift["r1.not_judged"].value) == {"dow_sin", "dow_cos", "month_sin", "month_cos"}

    last = {s: _close(bars, 500, s) for s in ("AAA", "BBB")}
    assert risk["positions"].value == pytest.approx({"AAA": 2 * last["AAA"], "BBB": -last["BBB"]})
    assert risk["var_99_1d"].value > 0 and risk["worst_stress_loss"].value >= 0


def test_feature_drift_writes_breaches_the_existing_retrain_sensor_sees(
    db: str, training_bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_journal(db, Journal("r2", live_bars(training_bars, vol=0.04), champion="5"))
    with dg.instance_for_test() as instance:
        res = dg.materialize([feature_drift], instance=instance, resources=resources(db))
        meta = res.asset_materializations_for_node("feature_drift")[0].metadata
        rows = breached_since(db, 0)
        assert [r.metric for r in rows] == [f"psi_{f}" for f in meta["r2.drifted"].value]
        assert {r.model_version for r in rows} == {"5"} and "rv_cc_20" in meta["r2.drifted"].value
        monkeypatch.setenv("RRR_PG_URL_RRR", db)
        result = retrain_on_live_feedback(dg.build_sensor_context(instance=instance))
        assert [r.tags["rrr/retrain_reason"] for r in result.run_requests] == ["drift"]
