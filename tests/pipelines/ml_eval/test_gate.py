from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rrr_live.models import Ensemble, Member, build_network, load_model, save_model
from rrr_pipelines.lib.ml.gate import (
    GateCriteria,
    GateError,
    GateEvidence,
    RiskFigures,
    evaluate_gate,
    measure_inference_latency,
)

KEYS = {
    "ic_t_nw", "ic_ci_low", "sharpe", "max_drawdown", "var_99_1d", "worst_stress_loss",
}  # fmt: skip

GOOD = GateEvidence(
    model="ensemble",
    ic_t_nw=3.1,
    ic_ci_low=0.004,
    sharpe=0.9,
    best_baseline="momentum_12_1",
    best_baseline_sharpe=0.48,
    max_drawdown=0.12,
    latency_p95_ms=4.0,
    risk=RiskFigures(var_99_1d=30_000.0, worst_stress_loss=80_000.0, portfolio_value=1e6),
)

# one change per criterion that makes exactly that criterion fail (values at the boundary)
FAILING = {
    "ic_t_nw": {"ic_t_nw": 1.99},
    "ic_ci_low": {"ic_ci_low": 0.0},
    "sharpe": {"sharpe": 0.48},
    "max_drawdown": {"max_drawdown": 0.2501},
    "var_99_1d": {"risk": RiskFigures(50_001.0, 80_000.0, 1e6)},
    "worst_stress_loss": {"risk": RiskFigures(30_000.0, 100_001.0, 1e6)},
}


def test_all_criteria_met_passes() -> None:
    verdict = evaluate_gate(GOOD)
    assert verdict.passed
    assert verdict.reasons == []
    assert set(verdict.observed) == KEYS == set(verdict.thresholds)
    assert verdict.observed["var_99_1d"] == pytest.approx(0.03)
    assert verdict.observed["worst_stress_loss"] == pytest.approx(0.08)
    assert verdict.thresholds["sharpe"] == 0.48
    assert verdict.metadata()["passed"] is True


def test_boundary_values_that_pass() -> None:
    edge = replace(
        GOOD, ic_t_nw=2.0, max_drawdown=0.25, latency_p95_ms=50.0,
        risk=RiskFigures(50_000.0, 100_000.0, 1e6),
    )  # fmt: skip
    assert evaluate_gate(edge).passed


@pytest.mark.parametrize("key", sorted(FAILING))
def test_each_criterion_failing_alone_names_itself(key: str) -> None:
    verdict = evaluate_gate(replace(GOOD, **FAILING[key]))  # type: ignore[arg-type]
    assert not verdict.passed
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith(f"{key}: ")
    obs = verdict.observed[key]
    assert f"{obs:.4g}" in verdict.reasons[0]  # the number is in the reason
    assert f"{verdict.thresholds[key]:.4g}" in verdict.reasons[0]


def test_missing_risk_figures_fail() -> None:
    verdict = evaluate_gate(replace(GOOD, risk=None))
    assert not verdict.passed
    assert {r.split(":")[0] for r in verdict.reasons} == {"var_99_1d", "worst_stress_loss"}
    assert all("risk figures missing" in r for r in verdict.reasons)
    assert math.isnan(verdict.observed["var_99_1d"])
    assert verdict.thresholds["var_99_1d"] == 0.05


def test_missing_risk_baseline_or_ic_fail_but_missing_latency_does_not() -> None:
    assert evaluate_gate(replace(GOOD, latency_p95_ms=None)).passed
    no_risk = evaluate_gate(replace(GOOD, risk=None))
    assert {r.split(":")[0] for r in no_risk.reasons} == {"var_99_1d", "worst_stress_loss"}
    no_base = evaluate_gate(replace(GOOD, best_baseline=None, best_baseline_sharpe=math.nan))
    assert no_base.reasons == [no_base.reasons[0]] and no_base.reasons[0].startswith("sharpe:")
    nan_ic = evaluate_gate(replace(GOOD, ic_t_nw=math.nan, ic_ci_low=math.nan))
    assert {r.split(":")[0] for r in nan_ic.reasons} == {"ic_t_nw", "ic_ci_low"}


def test_stricter_criteria_and_margin() -> None:
    verdict = evaluate_gate(GOOD, GateCriteria(min_sharpe_margin=0.5, min_ic_t_stat=3.5))
    assert {r.split(":")[0] for r in verdict.reasons} == {"sharpe", "ic_t_nw"}
    assert verdict.thresholds["sharpe"] == pytest.approx(0.98)


def test_criteria_validation() -> None:
    with pytest.raises(GateError, match="max_drawdown"):
        GateCriteria(max_drawdown=1.5)
    with pytest.raises(GateError, match="finite"):
        GateCriteria(min_ic_t_stat=math.inf)
    with pytest.raises(GateError, match="min_sharpe_margin"):
        GateCriteria(min_sharpe_margin=-0.1)


def test_risk_figures_from_metadata() -> None:
    figures = RiskFigures.from_metadata(
        {"var_99_1d": 31_000.0, "portfolio_value": 1e6}, {"worst_stress_loss": 420_000.0}
    )
    assert figures == RiskFigures(31_000.0, 420_000.0, 1e6)
    assert RiskFigures.from_metadata({"var_99_1d": 1.0}, {"worst_stress_loss": 1.0}) is None


def _window_ensemble() -> Ensemble:
    torch.manual_seed(0)
    n_features, window = 6, 8
    members = (
        Member("mlp", "mlp", {"hidden": 16, "layers": 2},
               build_network("mlp", {"hidden": 16, "layers": 2}, n_features, window)),
        Member("lstm", "lstm", {"hidden": 8},
               build_network("lstm", {"hidden": 8}, n_features, window)),
    )  # fmt: skip
    return Ensemble(
        tuple(f"f{i}" for i in range(n_features)), window, np.zeros(n_features, np.float32),
        np.ones(n_features, np.float32), members, {"mlp": 0.5, "lstm": 0.5},
    )  # fmt: skip


def test_measure_inference_latency(tmp_path: Path) -> None:
    save_model(tmp_path / "m", _window_ensemble(), feature_spec={"version": "test"})
    loaded = load_model(tmp_path / "m")
    assert loaded.needs_windows
    lat = measure_inference_latency(loaded, n_symbols=32, repeats=20, warmup=2)
    assert lat.n_symbols == 32 and lat.repeats == 20 and lat.device == "cpu"
    assert 0 < lat.p50_ms <= lat.p95_ms <= lat.max_ms
    evidence = replace(GOOD, latency_p95_ms=lat.p95_ms)
    # measured and carried in the evidence, never judged: any latency leaves the verdict alone
    assert evidence.latency_p95_ms == lat.p95_ms
    slow = evaluate_gate(replace(GOOD, latency_p95_ms=1e6))
    assert slow.passed and "latency_p95_ms" not in slow.observed
    with pytest.raises(GateError):
        measure_inference_latency(loaded, n_symbols=0)
