"""The one alias rule, from registry tags alone (what the live runner will enforce)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from rrr_live.models import verdict as rule

MODEL = [
    rule.Criterion("ic_t_nw", 3.0, 2.0),
    rule.Criterion("ic_ci_low", 0.01, 0.0),
    rule.Criterion("sharpe", 1.2, 1.03),
    rule.Criterion("max_drawdown", 0.1, 0.25),
    rule.Criterion("var_99_1d", 0.03, 0.05),
    rule.Criterion("worst_stress_loss", 0.3, 0.5),
]


def _tags(criteria: list[rule.Criterion], criteria_set: str = rule.MODEL_SET) -> dict[str, str]:
    return rule.verdict_tags("ensemble", criteria_set, "run-1", criteria)


def _fail(key: str, observed: float) -> list[rule.Criterion]:
    return [rule.Criterion(c.key, observed, c.threshold) if c.key == key else c for c in MODEL]


def test_a_passed_version_may_hold_every_alias() -> None:
    tags = _tags(MODEL)
    verdict = rule.parse_verdict(tags)
    assert verdict.passed and verdict.evaluation_run == "run-1" and verdict.failing == ()
    assert all(rule.check_alias(tags, a).allowed for a in rule.ALIASES)
    assert rule.may_trade(tags).allowed


def test_a_failed_version_may_only_be_shadow_and_the_refusal_names_the_criteria() -> None:
    tags = _tags(_fail("sharpe", 0.78))
    assert tags[rule.TAG_VERDICT] == rule.FAILED
    for alias in (rule.CHALLENGER, rule.CHAMPION):
        decision = rule.check_alias(tags, alias)
        assert not decision.allowed
        assert (
            "sharpe (observed 0.78, needs > 1.03)" in decision.reason and "run-1" in decision.reason
        )
    assert rule.check_alias(tags, rule.SHADOW).allowed
    assert not rule.check_alias(tags, "production").allowed


def test_a_recorded_override_lets_a_failed_version_trade() -> None:
    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    tags = {**_tags(_fail("worst_stress_loss", 0.63)), **rule.override_tags("alice", at, "demo")}
    decision = rule.may_trade(tags)
    assert decision.allowed and "alice" in decision.reason and "demo" in decision.reason
    verdict = rule.parse_verdict(tags)
    assert verdict.status == rule.FAILED and verdict.override == rule.Override(
        "alice", at.isoformat(), "demo"
    )
    with pytest.raises(ValueError, match="who and why"):
        rule.override_tags("alice", at, " ")
    with pytest.raises(ValueError, match="timezone"):
        rule.override_tags("alice", datetime(2026, 1, 1), "x")  # noqa: DTZ001 - the point


def test_waived_criteria_pass_but_stay_recorded() -> None:
    criteria = [rule.Criterion(c.key, c.observed, c.threshold, c.key == "sharpe")
                for c in _fail("sharpe", 0.5)]  # fmt: skip
    tags = _tags(criteria)
    assert tags[rule.TAG_WAIVED] == "sharpe" and tags[rule.TAG_VERDICT] == rule.PASSED
    verdict = rule.parse_verdict(tags)
    assert verdict.passed and [c.key for c in verdict.criteria if c.waived] == ["sharpe"]


@pytest.mark.parametrize(
    "edit",
    [
        {rule.TAG_VERDICT: rule.PASSED},  # a verdict that contradicts its own numbers
        {rule.observed_tag("sharpe"): "n/a"},
        {rule.TAG_EVALUATION_RUN: ""},
        {rule.TAG_CRITERIA_SET: "lenient"},
        {rule.TAG_WAIVED: "vibes"},
    ],
)
def test_inconsistent_or_incomplete_tags_are_not_judged_and_cannot_trade(
    edit: dict[str, str],
) -> None:
    tags = {**_tags(_fail("sharpe", 0.78)), **edit}
    verdict = rule.parse_verdict(tags)
    assert verdict.status == "not judged" and verdict.problems
    assert not rule.may_trade(tags).allowed and rule.check_alias(tags, rule.SHADOW).allowed


def test_legacy_tags_without_evidence_cannot_trade() -> None:
    # Old versions carried only a hard-coded verdict; it is not evidence.
    tags = {"gate.verdict": "passed", "gate.reasons": "[]"}
    decision = rule.may_trade(tags)
    assert not decision.allowed and "not judged" in decision.reason


def test_missing_and_non_finite_observations() -> None:
    nan_tags = _tags(_fail("var_99_1d", math.nan))
    assert nan_tags[rule.observed_tag("var_99_1d")] == "nan"
    assert rule.parse_verdict(nan_tags).status == rule.FAILED
    inf_tags = _tags(_fail("ic_t_nw", math.inf))  # a perfect oracle's t-statistic
    assert rule.parse_verdict(inf_tags).passed


def test_criteria_sets_are_complete() -> None:
    baseline = [c for c in MODEL if c.key in rule.BASELINE_CRITERIA]
    assert rule.parse_verdict(_tags(baseline, rule.BASELINE_SET)).passed
    with pytest.raises(ValueError, match="judges"):
        _tags(baseline, rule.MODEL_SET)
    with pytest.raises(ValueError, match="unknown criteria set"):
        _tags(MODEL, "everything")
    with pytest.raises(ValueError, match="evaluation run"):
        rule.verdict_tags("ensemble", rule.MODEL_SET, " ", MODEL)


@pytest.mark.parametrize(
    ("key", "observed", "threshold", "expected"),
    [
        ("ic_t_nw", 2.0, 2.0, True),
        ("ic_ci_low", 0.0, 0.0, False),
        ("sharpe", 1.0, 1.0, False),
        ("max_drawdown", 0.25, 0.25, True),
        ("var_99_1d", 0.06, 0.05, False),
        ("worst_stress_loss", math.nan, 0.5, False),
    ],
)
def test_comparisons_at_the_boundary(
    key: str, observed: float, threshold: float, expected: bool
) -> None:
    assert rule.holds(key, observed, threshold) is expected
