"""The promotion-gate resource: documented defaults, injectable thresholds, explicit waivers."""

import dataclasses

import pytest

from rrr_pipelines.defs.ml.resources import PromotionGateResource
from rrr_pipelines.lib.ml.gate import (
    CRITERIA_KEYS,
    GateCriteria,
    GateError,
    GateEvidence,
    RiskFigures,
    evaluate_gate,
)

# Passes every default criterion except the Sharpe comparison (0.5 vs the baseline's 1.0).
EVIDENCE = GateEvidence(
    model="ensemble", ic_t_nw=3.0, ic_ci_low=0.01, sharpe=0.5, best_baseline="buy_and_hold",
    best_baseline_sharpe=1.0, max_drawdown=0.1, latency_p95_ms=1.0,
    risk=RiskFigures(var_99_1d=30_000.0, worst_stress_loss=80_000.0, portfolio_value=1e6),
)  # fmt: skip


def test_resource_defaults_are_the_documented_criteria() -> None:
    resource = PromotionGateResource()
    assert resource.criteria() == GateCriteria()
    criteria_fields = {f.name for f in dataclasses.fields(GateCriteria)}
    assert set(PromotionGateResource.model_fields) == criteria_fields | {"waive"}
    assert resource.waive == []


def test_injected_thresholds_are_validated_by_the_criteria() -> None:
    assert PromotionGateResource(min_ic_t_stat=1e9).criteria().min_ic_t_stat == 1e9
    with pytest.raises(GateError, match="max_drawdown"):
        PromotionGateResource(max_drawdown=2.0).criteria()
    with pytest.raises(GateError, match="min_sharpe_margin"):
        PromotionGateResource(min_sharpe_margin=-1.0).criteria()


def test_a_waived_criterion_is_reported_but_does_not_fail_the_gate() -> None:
    strict = evaluate_gate(EVIDENCE)
    assert not strict.passed and [r.split(":")[0] for r in strict.reasons] == ["sharpe"]
    waived = evaluate_gate(EVIDENCE, waived=["sharpe"])
    assert waived.passed and waived.reasons == [] and waived.waived == strict.reasons
    assert waived.observed == strict.observed and waived.thresholds == strict.thresholds
    assert waived.metadata()["waived"] == strict.reasons[0]
    assert set(strict.observed) == set(CRITERIA_KEYS)
    with pytest.raises(GateError, match="unknown criteria"):
        evaluate_gate(EVIDENCE, waived=["sharp"])


def test_missing_risk_figures_fail_unless_waived() -> None:
    bare = dataclasses.replace(EVIDENCE, sharpe=2.0, risk=None)
    verdict = evaluate_gate(bare)
    assert {r.split(":")[0] for r in verdict.reasons} == {"var_99_1d", "worst_stress_loss"}
    assert evaluate_gate(bare, waived=["var_99_1d", "worst_stress_loss"]).passed
