from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rrr_live.backtest.config import BacktestConfig
from rrr_pipelines.lib.ml.evaluation import (
    BACKTEST_COLUMNS,
    IC_COLUMNS,
    EvaluationConfig,
    EvaluationError,
    EvaluationReport,
    HoldoutPeriod,
    evaluate_holdout,
    holdout_backtest,
    score_series,
)
from rrr_pipelines.lib.ml.gate import GateEvidence, evaluate_gate
from tests.pipelines.ml_eval.conftest import RealData

PNG = b"\x89PNG\r\n\x1a\n"
BASELINES = {"ridge", "buy_and_hold", "momentum_20d", "momentum_12_1"}


def _ridge(real: RealData) -> pd.Series:
    return real.ridge.predict_frame(real.frame.loc[real.holdout])


@pytest.fixture(scope="module")
def oracle_report(real: RealData) -> EvaluationReport:
    hold = real.holdout
    oracle = score_series(real.frame, real.frame.loc[hold, "label"], "oracle", hold)
    return evaluate_holdout(
        real.bars, {"oracle": oracle}, real.labels, real.period,
        baseline_scores={"ridge": _ridge(real)},
    )  # fmt: skip


@pytest.fixture(scope="module")
def noise_report(real: RealData) -> EvaluationReport:
    hold = real.holdout
    rng = np.random.default_rng(20240601)
    noise = score_series(real.frame, rng.standard_normal(int(hold.sum())), "noise", hold)
    return evaluate_holdout(
        real.bars, {"noise": noise}, real.labels, real.period,
        baseline_scores={"ridge": _ridge(real)},
    )  # fmt: skip


def test_table_has_every_model_and_baseline(oracle_report: EvaluationReport) -> None:
    table = oracle_report.table
    assert set(table.index) == {"oracle"} | BASELINES
    assert table.loc["oracle", "kind"] == "model"
    assert (table.loc[sorted(BASELINES), "kind"] == "baseline").all()
    assert set(IC_COLUMNS) | set(BACKTEST_COLUMNS) <= set(table.columns)
    # a constant score has no IC; every other score has one
    assert table.loc["buy_and_hold", list(IC_COLUMNS)].isna().all()
    assert table.drop(index="buy_and_hold")["ic_mean"].notna().all()
    assert table["sharpe"].notna().all()
    assert (table["fees"] > 0).all()  # every strategy paid costs


def test_oracle_beats_every_baseline_and_passes_ic_criteria(
    oracle_report: EvaluationReport,
) -> None:
    table = oracle_report.table
    oracle = table.loc["oracle"]
    assert oracle["ic_mean"] == pytest.approx(1.0)  # the score is the label itself
    for name in BASELINES:
        assert oracle["sharpe"] > table.loc[name, "sharpe"], name
    assert oracle_report.best_baseline in BASELINES
    assert oracle_report.beats_best_baseline
    assert "beats the best baseline" in oracle_report.verdict
    assert "significantly above zero" in oracle_report.verdict
    verdict = evaluate_gate(GateEvidence.from_report(oracle_report))
    failing = {r.split(":")[0] for r in verdict.reasons}
    assert not failing & {"ic_t_nw", "ic_ci_low", "sharpe"}


def test_noise_is_not_significant_and_loses(noise_report: EvaluationReport) -> None:
    row = noise_report.row("noise")
    assert not (row["ic_t_nw"] >= 2.0 and row["ic_ci_low"] > 0.0)
    assert abs(row["ic_mean"]) < 0.1
    best = noise_report.best_baseline
    assert best is not None
    assert row["sharpe"] < noise_report.row(best)["sharpe"]
    assert not noise_report.beats_best_baseline
    verdict = noise_report.verdict
    assert "NOT significantly above zero" in verdict
    assert f"noise Sharpe {row['sharpe']:.2f} <= {best}" in verdict
    assert "does NOT beat the best baseline" in verdict
    gate = evaluate_gate(GateEvidence.from_report(noise_report))
    assert not gate.passed
    assert any(r.startswith("sharpe:") for r in gate.reasons)


def test_best_baseline_has_highest_baseline_sharpe(oracle_report: EvaluationReport) -> None:
    table = oracle_report.table
    baselines = table[table["kind"] == "baseline"]
    assert oracle_report.best_baseline == baselines["sharpe"].astype(float).idxmax()


def test_backtests_trade_only_inside_the_holdout(
    oracle_report: EvaluationReport, real: RealData
) -> None:
    period = real.period
    for name, bt in oracle_report.backtests.items():
        first = bt.equity["ts"].iloc[0]
        assert first == period.start + pd.Timedelta(days=1), name  # close of the first bar
        assert bt.equity["ts"].iloc[-1] <= period.end + pd.Timedelta(days=1)
        assert bt.equity["equity"].iloc[0] == pytest.approx(1_000_000.0), name
        total = bt.equity["equity"].iloc[-1] / bt.equity["equity"].iloc[0] - 1
        assert bt.stats["total_return"] == pytest.approx(total)


def test_scores_outside_the_holdout_are_ignored(real: RealData) -> None:
    frame, hold = real.frame, real.holdout
    inside = score_series(frame, frame.loc[hold, "label"], "m", hold)
    outside = ~hold
    rng = np.random.default_rng(1)
    noisy = score_series(frame, rng.standard_normal(int(outside.sum())), "m", outside)
    with_outside = pd.concat([noisy, inside]).rename("m")
    cfg = BacktestConfig()
    a = holdout_backtest(real.bars, inside, real.period, cfg)
    b = holdout_backtest(real.bars, with_outside, real.period, cfg)
    assert a.stats == b.stats
    pd.testing.assert_frame_equal(a.equity, b.equity)


def test_plots_and_dict(oracle_report: EvaluationReport) -> None:
    assert oracle_report.ic_plot_png.startswith(PNG)
    assert oracle_report.equity_plot_png.startswith(PNG)
    flat = oracle_report.to_dict()
    assert all(isinstance(v, float) and math.isfinite(v) for v in flat.values())
    assert flat["oracle.sharpe"] == oracle_report.row("oracle")["sharpe"]
    assert flat["beats_best_baseline"] == 1.0
    best = oracle_report.best_baseline
    assert flat["best_baseline.sharpe"] == oracle_report.row(str(best))["sharpe"]


def test_period_coercions_and_errors(real: RealData) -> None:
    p = real.period
    assert HoldoutPeriod.of((p.start.to_pydatetime(), p.end.to_pydatetime())) == p
    with pytest.raises(EvaluationError, match="tz-aware"):
        HoldoutPeriod(pd.Timestamp("2018-01-01"), pd.Timestamp("2018-02-01"))
    with pytest.raises(EvaluationError, match="rule baselines"):
        EvaluationConfig(rule_baselines=("nope",))
    early = score_series(real.frame, np.ones(len(real.frame)), "early")
    early = early[early.index.get_level_values("ts") < p.start]
    with pytest.raises(EvaluationError, match="no finite score inside the holdout"):
        evaluate_holdout(real.bars, {"early": early}, real.labels, p)
    ridge = {"ridge": _ridge(real)}
    with pytest.raises(EvaluationError, match="primary 'nope'"):
        evaluate_holdout(real.bars, ridge, real.labels, p, config=EvaluationConfig(primary="nope"))
    with pytest.raises(EvaluationError, match="used twice"):
        evaluate_holdout(real.bars, ridge, real.labels, p, baseline_scores=ridge)
