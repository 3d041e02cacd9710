"""The gate's verdict as the registry records it: baseline criteria, table evidence, one rule."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_live.models import verdict as rule
from rrr_pipelines.lib.ml.gate import (
    GateCriteria,
    GateError,
    GateEvidence,
    RiskFigures,
    evaluate_gate,
    evidence_from_table,
)

BASELINE = GateEvidence(
    model="buy_and_hold", ic_t_nw=math.nan, ic_ci_low=math.nan, sharpe=1.03,
    best_baseline="buy_and_hold", best_baseline_sharpe=1.03, max_drawdown=0.2,
    latency_p95_ms=None, risk=RiskFigures(37_000.0, 634_000.0, 1e6),
)  # fmt: skip


def test_a_baseline_is_judged_by_the_baseline_criteria() -> None:
    verdict = evaluate_gate(BASELINE, criteria_set=rule.BASELINE_SET)
    assert set(verdict.observed) == set(rule.BASELINE_CRITERIA)
    assert verdict.thresholds["sharpe"] == 0.0  # positive Sharpe after costs, not "beat itself"
    assert [r.split(":")[0] for r in verdict.reasons] == ["worst_stress_loss"]
    losing = evaluate_gate(replace(BASELINE, sharpe=-0.1), criteria_set=rule.BASELINE_SET)
    assert "sharpe: OOS Sharpe after costs -0.1 is not positive" in losing.reasons[0]
    waived = evaluate_gate(
        BASELINE, criteria_set=rule.BASELINE_SET, waived=["worst_stress_loss", "ic_t_nw"]
    )
    assert waived.passed and waived.waived_keys == ("worst_stress_loss",)
    with pytest.raises(GateError, match="criteria set"):
        evaluate_gate(BASELINE, criteria_set="lenient")


def test_verdict_tags_round_trip_through_the_live_rule() -> None:
    verdict = evaluate_gate(BASELINE, criteria_set=rule.BASELINE_SET)
    tags = verdict.tags("buy_and_hold", "run-7")
    parsed = rule.parse_verdict(tags)
    assert parsed.status == rule.FAILED and parsed.criteria_set == rule.BASELINE_SET
    assert [c.key for c in parsed.failing] == ["worst_stress_loss"]
    assert parsed.evaluation_run == "run-7" and parsed.candidate == "buy_and_hold"
    assert tags[rule.TAG_REASONS].startswith('["worst_stress_loss:')


finite = st.floats(-5, 5, allow_nan=False)
fraction = st.floats(0.001, 1.0)


@settings(max_examples=150, deadline=None)
@given(
    ic_t=st.one_of(finite, st.just(math.nan)), ci=finite, sharpe=finite, base=finite,
    dd=st.floats(0, 1), lat=st.one_of(st.none(), st.floats(0, 100)), var=fraction,
    stress=fraction, t_thr=st.floats(0, 4), dd_thr=fraction,
    waive=st.lists(st.sampled_from(rule.MODEL_CRITERIA), max_size=2),
    criteria_set=st.sampled_from([rule.MODEL_SET, rule.BASELINE_SET]),
)  # fmt: skip
def test_the_pipeline_gate_and_the_live_rule_always_agree(
    ic_t: float, ci: float, sharpe: float, base: float, dd: float, lat: float | None,
    var: float, stress: float, t_thr: float, dd_thr: float, waive: list[str], criteria_set: str,
) -> None:  # fmt: skip
    evidence = GateEvidence("m", ic_t, ci, sharpe, "b", base, dd, lat,
                            RiskFigures(var * 1e6, stress * 1e6, 1e6))  # fmt: skip
    criteria = GateCriteria(min_ic_t_stat=t_thr, max_drawdown=dd_thr)
    verdict = evaluate_gate(evidence, criteria, waive, criteria_set)
    tags = verdict.tags("m", "run")
    assert rule.parse_verdict(tags).passed is verdict.passed
    assert rule.may_trade(tags).allowed is verdict.passed


def _table(run: str | list[str] = "run-1") -> pd.DataFrame:
    nan = math.nan
    return pd.DataFrame(
        {
            "name": ["ensemble", "buy_and_hold", "ridge"],
            "kind": ["model", "baseline", "baseline"],
            "ic_t_nw": [3.0, nan, 1.0],
            "ic_ci_low": [0.01, nan, -0.01],
            "sharpe": [0.78, 1.03, 0.2],
            "max_drawdown": [0.2, 0.19, 0.3],
            "evaluation_run": run,
            "best_baseline": [False, True, False],
            "latency_p95_ms": [7.0, nan, nan],
            "risk_var_99_1d": [37_000.0, 36_000.0, nan],
            "risk_worst_stress_loss": [634_000.0, 630_000.0, nan],
            "risk_portfolio_value": [1e6, 1e6, nan],
        }
    )


def test_evidence_comes_from_the_evaluation_table_and_its_run() -> None:
    evidence, run = evidence_from_table(_table(), "ensemble")
    assert run == "run-1"
    assert (evidence.best_baseline, evidence.best_baseline_sharpe) == ("buy_and_hold", 1.03)
    assert evidence.latency_p95_ms == 7.0 and evidence.risk == RiskFigures(37e3, 634e3, 1e6)
    ridge, _ = evidence_from_table(_table(), "ridge")
    assert ridge.risk is None and ridge.latency_p95_ms is None
    assert not evaluate_gate(ridge, criteria_set=rule.BASELINE_SET).passed


def test_a_table_without_one_run_or_evidence_is_refused() -> None:
    with pytest.raises(GateError, match="one evaluation run"):
        evidence_from_table(_table(["run-1", "run-2", "run-1"]), "ensemble")
    with pytest.raises(GateError, match="evidence columns"):
        evidence_from_table(_table().drop(columns=["evaluation_run"]), "ensemble")
    with pytest.raises(GateError, match="no candidate"):
        evidence_from_table(_table(), "oracle")
