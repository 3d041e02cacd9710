"""The one rule for what a registered model version may do, read from its registry tags.

Pure and dependency-free: ``rrr_pipelines`` writes these tags when it registers a candidate and
enforces the rule when it sets an alias; the live runner reads the same tags over MLflow's REST
API and enforces the same rule before it trades a version.

The rule:

* every registered candidate carries its verdict (``passed`` / ``failed``), the criteria set that
  judged it (``model`` for the ensemble, ``baseline`` for a baseline), the evaluation run whose
  evidence was judged, and each criterion's observed value and threshold (plus any waivers);
* aliases ``challenger`` and ``champion`` (the ones that trade) need a ``passed`` verdict or a
  recorded gate override (who, when, why); a failed version may only hold ``shadow`` (scored
  live, never trades);
* the verdict is re-derived from the per-criterion tags: a ``gate.verdict`` that disagrees with
  its own numbers, or tags that are missing, count as "not judged" and cannot trade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

PASSED = "passed"
FAILED = "failed"
MODEL_SET = "model"
BASELINE_SET = "baseline"

CHAMPION = "champion"
CHALLENGER = "challenger"
SHADOW = "shadow"
ALIASES: tuple[str, ...] = (CHAMPION, CHALLENGER, SHADOW)
TRADING_ALIASES = frozenset({CHAMPION, CHALLENGER})

TAG_VERDICT = "gate.verdict"
TAG_CRITERIA_SET = "gate.criteria_set"
TAG_EVALUATION_RUN = "gate.evaluation_run"
TAG_CANDIDATE = "gate.candidate"
TAG_WAIVED = "gate.waived"
TAG_REASONS = "gate.reasons"
TAG_OVERRIDE_BY = "gate.override.by"
TAG_OVERRIDE_AT = "gate.override.at"
TAG_OVERRIDE_REASON = "gate.override.reason"

# How each criterion's observation must compare with its threshold.
COMPARISONS: dict[str, str] = {
    "ic_t_nw": ">=",
    "ic_ci_low": ">",
    "sharpe": ">",
    "max_drawdown": "<=",
    "var_99_1d": "<=",
    "worst_stress_loss": "<=",
}
MODEL_CRITERIA: tuple[str, ...] = tuple(COMPARISONS)
BASELINE_CRITERIA: tuple[str, ...] = ("sharpe", "max_drawdown", "var_99_1d", "worst_stress_loss")
CRITERIA_SETS: dict[str, tuple[str, ...]] = {
    MODEL_SET: MODEL_CRITERIA,
    BASELINE_SET: BASELINE_CRITERIA,
}


def observed_tag(key: str) -> str:
    """Tag holding a criterion's observed value."""
    return f"gate.observed.{key}"


def threshold_tag(key: str) -> str:
    """Tag holding a criterion's threshold."""
    return f"gate.threshold.{key}"


def holds(key: str, observed: float, threshold: float) -> bool:
    """Whether ``observed`` meets ``threshold`` for criterion ``key`` (NaN never holds).

    Raises:
        KeyError: for an unknown criterion key.
    """
    op = COMPARISONS[key]
    if math.isnan(observed) or math.isnan(threshold):
        return False
    if op == ">=":
        return observed >= threshold
    if op == ">":
        return observed > threshold
    return observed <= threshold


@dataclass(frozen=True)
class Criterion:
    """One judged criterion.

    Attributes:
        key: Criterion key (see ``COMPARISONS``).
        observed: Observed value (NaN: missing).
        threshold: Threshold it is compared with.
        waived: An operator waived it: judged and reported, not enforced.
    """

    key: str
    observed: float
    threshold: float
    waived: bool = False

    @property
    def holds(self) -> bool:
        """The observation meets the threshold."""
        return holds(self.key, self.observed, self.threshold)

    @property
    def ok(self) -> bool:
        """Holds, or is waived."""
        return self.holds or self.waived

    def describe(self) -> str:
        """``key (observed X, needs OP Y)``."""
        op = COMPARISONS[self.key]
        return f"{self.key} (observed {self.observed:.4g}, needs {op} {self.threshold:.4g})"


@dataclass(frozen=True)
class Override:
    """A recorded gate override: who let a version trade despite its verdict, when and why."""

    by: str
    at: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    """A version's verdict as re-derived from its tags.

    Attributes:
        status: ``passed``, ``failed`` or ``not judged`` (tags missing or inconsistent).
        criteria_set: ``model`` / ``baseline`` (empty when unknown).
        evaluation_run: Run id of the evaluation whose evidence was judged.
        candidate: Name of the candidate (``ensemble``, a baseline name).
        criteria: Every judged criterion.
        override: The recorded gate override, if any.
        problems: Why the tags could not be trusted (empty when they could).
    """

    status: str
    criteria_set: str
    evaluation_run: str
    candidate: str
    criteria: tuple[Criterion, ...]
    override: Override | None
    problems: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Every criterion holds or is waived, and the tags are consistent."""
        return self.status == PASSED

    @property
    def failing(self) -> tuple[Criterion, ...]:
        """Criteria that neither hold nor are waived."""
        return tuple(c for c in self.criteria if not c.ok)


@dataclass(frozen=True)
class AliasDecision:
    """Whether a version may hold an alias, and why (a value, not an exception)."""

    allowed: bool
    reason: str


def _fmt(value: float) -> str:
    return repr(float(value))


def verdict_tags(
    candidate: str, criteria_set: str, evaluation_run: str, criteria: Sequence[Criterion]
) -> dict[str, str]:
    """The tags that record a verdict on a version (the verdict follows from ``criteria``).

    Args:
        candidate: Candidate name.
        criteria_set: ``model`` or ``baseline``.
        evaluation_run: Run id of the evaluation whose evidence was judged.
        criteria: One entry per criterion of the set.

    Returns:
        ``{tag: value}``.

    Raises:
        ValueError: unknown criteria set, missing/unknown criteria or an empty run id.
    """
    _check_set(criteria_set, [c.key for c in criteria])
    if not evaluation_run.strip():
        raise ValueError("a verdict needs the evaluation run it judged")
    tags = {
        TAG_VERDICT: PASSED if all(c.ok for c in criteria) else FAILED,
        TAG_CRITERIA_SET: criteria_set,
        TAG_EVALUATION_RUN: evaluation_run,
        TAG_CANDIDATE: candidate,
        TAG_WAIVED: ",".join(c.key for c in criteria if c.waived),
    }
    for c in criteria:
        tags[observed_tag(c.key)] = _fmt(c.observed)
        tags[threshold_tag(c.key)] = _fmt(c.threshold)
    return tags


def _check_set(criteria_set: str, keys: Sequence[str]) -> None:
    if criteria_set not in CRITERIA_SETS:
        raise ValueError(f"unknown criteria set {criteria_set!r}; known {sorted(CRITERIA_SETS)}")
    if sorted(keys) != sorted(CRITERIA_SETS[criteria_set]):
        raise ValueError(
            f"criteria set {criteria_set!r} judges {list(CRITERIA_SETS[criteria_set])}, "
            f"got {list(keys)}"
        )


def override_tags(by: str, at: datetime, reason: str) -> dict[str, str]:
    """The tags that record a gate override.

    Raises:
        ValueError: empty ``by``/``reason`` or a naive ``at``.
    """
    if not by.strip() or not reason.strip():
        raise ValueError("a gate override needs who and why")
    if at.tzinfo is None:
        raise ValueError("a gate override needs a timezone-aware time")
    return {TAG_OVERRIDE_BY: by, TAG_OVERRIDE_AT: at.isoformat(), TAG_OVERRIDE_REASON: reason}


def _parse_float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _parse_criteria(
    tags: Mapping[str, str], keys: Sequence[str]
) -> tuple[tuple[Criterion, ...], list[str]]:
    waived = {k for k in tags.get(TAG_WAIVED, "").split(",") if k}
    criteria: list[Criterion] = []
    problems = [f"waiver of unknown criterion {k!r}" for k in sorted(waived - set(keys))]
    for key in keys:
        obs = _parse_float(tags.get(observed_tag(key)))
        thr = _parse_float(tags.get(threshold_tag(key)))
        if obs is None or thr is None:
            problems.append(f"criterion {key} has no observed value or threshold")
            continue
        criteria.append(Criterion(key, obs, thr, key in waived))
    return tuple(criteria), problems


def _parse_override(tags: Mapping[str, str]) -> Override | None:
    by, at, reason = (tags.get(t, "").strip() for t in
                      (TAG_OVERRIDE_BY, TAG_OVERRIDE_AT, TAG_OVERRIDE_REASON))  # fmt: skip
    return Override(by, at, reason) if by and at and reason else None


def parse_verdict(tags: Mapping[str, str]) -> Verdict:
    """Re-derive a version's verdict from its tags.

    The status is recomputed from the observed values and thresholds; the ``gate.verdict`` tag
    must agree with it, otherwise (or when tags are missing) the status is ``not judged``.
    """
    criteria_set = tags.get(TAG_CRITERIA_SET, "")
    run = tags.get(TAG_EVALUATION_RUN, "").strip()
    candidate = tags.get(TAG_CANDIDATE, "")
    override = _parse_override(tags)
    problems: list[str] = []
    if criteria_set not in CRITERIA_SETS:
        problems.append(f"no known criteria set (tag {TAG_CRITERIA_SET}={criteria_set!r})")
        criteria: tuple[Criterion, ...] = ()
    else:
        criteria, problems = _parse_criteria(tags, CRITERIA_SETS[criteria_set])
    if not run:
        problems.append(f"no evaluation run (tag {TAG_EVALUATION_RUN})")
    derived = PASSED if all(c.ok for c in criteria) else FAILED
    recorded = tags.get(TAG_VERDICT)
    if recorded != derived and not problems:
        problems.append(f"tag {TAG_VERDICT}={recorded!r} disagrees with its criteria ({derived})")
    status = "not judged" if problems else derived
    return Verdict(status, criteria_set, run, candidate, criteria, override, tuple(problems))


def check_alias(tags: Mapping[str, str], alias: str) -> AliasDecision:
    """May the version with these tags hold ``alias``?

    ``shadow`` is open to every registered version (it never trades). ``challenger`` and
    ``champion`` need a passed verdict or a recorded gate override.
    """
    if alias not in ALIASES:
        return AliasDecision(False, f"unknown alias {alias!r}; known {list(ALIASES)}")
    if alias not in TRADING_ALIASES:
        return AliasDecision(True, f"{alias} never trades")
    verdict = parse_verdict(tags)
    if verdict.passed:
        return AliasDecision(True, f"passed the {verdict.criteria_set} criteria")
    if verdict.override is not None:
        o = verdict.override
        return AliasDecision(True, f"gate overridden by {o.by} at {o.at}: {o.reason}")
    if verdict.problems:
        why = "; ".join(verdict.problems)
        return AliasDecision(False, f"not judged ({why}); it may only be {SHADOW}")
    failing = ", ".join(c.describe() for c in verdict.failing)
    return AliasDecision(
        False,
        f"failed the {verdict.criteria_set} criteria of evaluation run "
        f"{verdict.evaluation_run}: {failing}; it may only be {SHADOW}",
    )


def may_trade(tags: Mapping[str, str]) -> AliasDecision:
    """May the live runner trade this version (as ``champion``)?"""
    return check_alias(tags, CHAMPION)
