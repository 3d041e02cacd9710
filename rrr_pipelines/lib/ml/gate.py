"""The promotion gate: a pure function of the evidence and the criteria (Dagster-free).

A model is promoted (alias ``@challenger``) only if **every** criterion holds. The evidence is
the **concatenated out-of-sample span** of the rolling walk-forward (every test fold before the
holdout, :mod:`rrr_pipelines.lib.ml.walkforward`), not the final holdout, which is reported
separately. The thresholds were fixed before any result was seen; never tune them after:

=====================  ==========================================================  ==========
key                    passes when                                                 default
=====================  ==========================================================  ==========
``ic_t_nw``            OOS IC Newey-West t-statistic ``>=`` threshold               2.0
``ic_ci_low``          lower end of the 95 % bootstrap CI of the mean OOS IC ``>``  0.0
``sharpe``             OOS Sharpe after costs ``>`` best baseline's + margin         margin 0.0
``max_drawdown``       OOS backtest max drawdown ``<=``                             0.25
``var_99_1d``          1-day 99 % VaR / portfolio value ``<=``                      0.05
``worst_stress_loss``  worst **dynamic** stress loss / portfolio value ``<=``       0.10
=====================  ==========================================================  ==========

The dynamic stress loss is the largest loss of the candidate's own OOS scores replayed through
each covered crisis window by the trading core with the live risk limits (2 % drawdown halt,
``flatten``; :mod:`rrr_pipelines.lib.risk.dynamic_stress`); static scenario losses are
information in ``stress_report`` only. Inference latency is measured and reported in the
evidence, never part of the verdict: it depends on the machine's load (speed lives in ``bench/``).

A **baseline** is judged by the baseline criteria set (``criteria_set="baseline"``): a positive
Sharpe after costs, ``max_drawdown``, ``var_99_1d`` and ``worst_stress_loss`` with the same
thresholds. The comparisons and the criteria sets are defined once, in
:mod:`rrr_live.models.verdict`, which the live runner shares.

A missing or non-finite observation fails its criterion (missing risk figures give the reason
"risk figures missing"); nothing passes by default. An operator may **waive** named criteria
(``evaluate_gate(..., waived=...)``): a waived criterion is still judged and reported, its
failure goes to ``GateVerdict.waived`` instead of ``reasons``. The thresholds are documented in
``docs/evaluation.md``; change them only before looking at a result, never to make one pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rrr_live.errors import RRRError
from rrr_live.models import verdict as rule

if TYPE_CHECKING:
    from rrr_live.models import LoadedEnsemble
    from rrr_pipelines.lib.ml.evaluation import EvaluationReport


class GateError(RRRError, ValueError):
    """Invalid criteria or evidence; the message names the field."""


@dataclass(frozen=True)
class GateCriteria:
    """Promotion thresholds (see the module table; the reasoning is in ``docs/evaluation.md``).

    Attributes:
        min_ic_t_stat: Newey-West t of the holdout IC must reach this (2 ~ 5 % two-sided).
        min_ic_ci_low: The bootstrap CI's lower bound must exceed this (0: IC above zero).
        min_sharpe_margin: Sharpe must exceed the best baseline's Sharpe plus this margin.
        max_drawdown: Largest allowed holdout drawdown (fraction of the peak).
        max_var_99_1d: 1-day 99 % VaR as a fraction of portfolio value.
        max_worst_stress_loss: Worst dynamic stress loss as a fraction of portfolio value.
    """

    min_ic_t_stat: float = 2.0
    min_ic_ci_low: float = 0.0
    min_sharpe_margin: float = 0.0
    max_drawdown: float = 0.25
    max_var_99_1d: float = 0.05
    max_worst_stress_loss: float = 0.10

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not math.isfinite(value):
                raise GateError(f"GateCriteria.{name} must be finite, got {value}")
        if self.min_sharpe_margin < 0 or self.min_ic_t_stat < 0:
            raise GateError("min_sharpe_margin and min_ic_t_stat must be >= 0")
        for name in ("max_drawdown", "max_var_99_1d", "max_worst_stress_loss"):
            if not 0 < getattr(self, name) <= 1:
                raise GateError(f"GateCriteria.{name} is a fraction in (0, 1]")


@dataclass(frozen=True)
class RiskFigures:
    """Risk report figures in currency (losses positive) and the portfolio value they refer to.

    Attributes:
        var_99_1d: 1-day 99 % VaR of the candidate's book (historical simulation).
        worst_stress_loss: Worst dynamic stress loss (the candidate's OOS scores replayed through
            the covered crisis windows with the live limits), in currency of ``portfolio_value``.
        portfolio_value: The strategy's equity on the book's date (the figures' base).
    """

    var_99_1d: float
    worst_stress_loss: float
    portfolio_value: float

    def __post_init__(self) -> None:
        if not self.portfolio_value > 0:
            raise GateError(f"portfolio_value must be > 0, got {self.portfolio_value}")

    @classmethod
    def from_metadata(
        cls, var_report: Mapping[str, Any], stress_report: Mapping[str, Any]
    ) -> RiskFigures | None:
        """Build from the risk assets' metadata values; ``None`` if a figure is missing.

        Args:
            var_report: Needs ``var_99_1d`` and ``portfolio_value``.
            stress_report: Needs ``worst_stress_loss``.
        """
        try:
            return cls(
                float(var_report["var_99_1d"]),
                float(stress_report["worst_stress_loss"]),
                float(var_report["portfolio_value"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class GateEvidence:
    """What the gate judges.

    Attributes:
        model: Name of the candidate.
        ic_t_nw: Holdout IC Newey-West t-statistic.
        ic_ci_low: Lower bound of the 95 % bootstrap CI of the mean holdout IC.
        sharpe: Candidate's holdout Sharpe after costs.
        best_baseline: Name of the best baseline (``None`` if none was evaluated).
        best_baseline_sharpe: Its holdout Sharpe after costs.
        max_drawdown: Candidate's holdout max drawdown (fraction).
        latency_p95_ms: p95 inference latency on a live-size batch (``None``: not measured).
        risk: Risk report figures (``None``: missing).
    """

    model: str
    ic_t_nw: float
    ic_ci_low: float
    sharpe: float
    best_baseline: str | None
    best_baseline_sharpe: float
    max_drawdown: float
    latency_p95_ms: float | None = None
    risk: RiskFigures | None = None

    @classmethod
    def from_report(
        cls,
        report: EvaluationReport,
        *,
        model: str | None = None,
        latency_p95_ms: float | None = None,
        risk: RiskFigures | None = None,
    ) -> GateEvidence:
        """Collect the evidence about ``model`` (default: the report's primary) from a report."""
        name = model or report.primary
        if name is None:
            raise GateError("the report has no primary model; name the candidate")
        row = report.row(name)
        best = report.best_baseline
        return cls(
            name,
            row["ic_t_nw"],
            row["ic_ci_low"],
            row["sharpe"],
            best,
            report.row(best)["sharpe"] if best is not None else math.nan,
            row["max_drawdown"],
            latency_p95_ms,
            risk,
        )


@dataclass(frozen=True)
class GateVerdict:
    """The gate's answer: every criterion's observed value and threshold, and what failed.

    Attributes:
        passed: Every criterion not waived holds.
        reasons: One line per failing criterion (key first, numbers given).
        observed: Observation per criterion key.
        thresholds: Threshold per criterion key.
        waived: Failures of waived criteria (reported, not enforced).
        criteria_set: ``model`` or ``baseline``.
        waived_keys: Keys the operator waived (whether or not they failed).
    """

    passed: bool
    reasons: list[str]
    observed: dict[str, float]
    thresholds: dict[str, float]
    waived: list[str] = field(default_factory=list)
    criteria_set: str = rule.MODEL_SET
    waived_keys: tuple[str, ...] = ()

    def metadata(self) -> dict[str, float | bool | str]:
        """Flat metadata for an asset check (``observed.<key>``, ``threshold.<key>``)."""
        out: dict[str, float | bool | str] = {"passed": self.passed}
        out.update({f"observed.{k}": v for k, v in self.observed.items()})
        out.update({f"threshold.{k}": v for k, v in self.thresholds.items()})
        out["reasons"] = "; ".join(self.reasons) if self.reasons else "all criteria met"
        if self.waived:
            out["waived"] = "; ".join(self.waived)
        return out

    def criteria(self) -> list[rule.Criterion]:
        """The judged criteria in the registry's form (:mod:`rrr_live.models.verdict`)."""
        return [
            rule.Criterion(k, self.observed[k], self.thresholds[k], k in self.waived_keys)
            for k in self.observed
        ]

    def tags(self, candidate: str, evaluation_run: str) -> dict[str, str]:
        """Model-version tags recording this verdict (plus the human-readable reasons)."""
        import json

        tags = rule.verdict_tags(candidate, self.criteria_set, evaluation_run, self.criteria())
        tags[rule.TAG_REASONS] = json.dumps(self.reasons + [f"waived: {r}" for r in self.waived])
        return tags


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _risk_fraction(risk: RiskFigures | None, attr: str) -> float:
    return math.nan if risk is None else float(getattr(risk, attr)) / risk.portfolio_value


Check = tuple[str, float, float, str]
BASELINE_MIN_SHARPE = 0.0  # a baseline must at least make money after costs


def _checks(ev: GateEvidence, c: GateCriteria, criteria_set: str) -> list[Check]:
    base = ev.best_baseline or "no baseline"
    sharpe: Check = (
        ("sharpe", ev.sharpe, ev.best_baseline_sharpe + c.min_sharpe_margin,
         f"OOS Sharpe after costs {{o}} does not beat {base} (Sharpe {{t}})")
        if criteria_set == rule.MODEL_SET
        else ("sharpe", ev.sharpe, BASELINE_MIN_SHARPE,
              "OOS Sharpe after costs {o} is not positive (> {t})")
    )  # fmt: skip
    checks: list[Check] = [
        ("ic_t_nw", ev.ic_t_nw, c.min_ic_t_stat, "OOS IC Newey-West t {o} is not >= {t}"),
        ("ic_ci_low", ev.ic_ci_low, c.min_ic_ci_low,
         "OOS IC 95 % CI lower bound {o} is not > {t}"),
        sharpe,
        ("max_drawdown", ev.max_drawdown, c.max_drawdown,
         "OOS max drawdown {o} exceeds the limit {t}"),
        ("var_99_1d", _risk_fraction(ev.risk, "var_99_1d"), c.max_var_99_1d,
         "1-day 99 % VaR {o} of portfolio value exceeds the limit {t}"),
        ("worst_stress_loss", _risk_fraction(ev.risk, "worst_stress_loss"),
         c.max_worst_stress_loss,
         "worst dynamic stress loss {o} of portfolio value exceeds the limit {t}"),
    ]  # fmt: skip
    keys = rule.CRITERIA_SETS[criteria_set]
    return [check for check in checks if check[0] in keys]


_MISSING = {
    "var_99_1d": "risk figures missing (var_99_1d)",
    "worst_stress_loss": "risk figures missing (worst_stress_loss)",
    "sharpe": "no baseline Sharpe to compare against",
}


CRITERIA_KEYS: tuple[str, ...] = rule.MODEL_CRITERIA


def evaluate_gate(
    evidence: GateEvidence,
    criteria: GateCriteria | None = None,
    waived: Collection[str] = (),
    criteria_set: str = rule.MODEL_SET,
) -> GateVerdict:
    """Judge ``evidence`` against ``criteria`` (default :class:`GateCriteria`).

    Args:
        evidence: The candidate's holdout figures, latency and risk figures.
        criteria: Thresholds.
        waived: Criterion keys an operator waived: judged and reported, but a failure goes to
            ``GateVerdict.waived`` and does not stop the promotion. Keys outside the criteria
            set are ignored (a waiver of ``ic_t_nw`` means nothing to a baseline).
        criteria_set: ``model`` (the ensemble) or ``baseline`` (positive Sharpe instead of
            beating the best baseline; no IC criteria).

    Returns:
        The verdict: ``passed`` only if every criterion not waived holds; each failure is one
        reason in ``reasons`` (or ``waived``), starting with the criterion's key and giving the
        numbers.

    Raises:
        GateError: if ``waived`` names an unknown criterion or the set is unknown.
    """
    unknown = sorted(set(waived) - set(CRITERIA_KEYS))
    if unknown:
        raise GateError(f"cannot waive unknown criteria {unknown}; known {list(CRITERIA_KEYS)}")
    if criteria_set not in rule.CRITERIA_SETS:
        raise GateError(f"unknown criteria set {criteria_set!r}; known {list(rule.CRITERIA_SETS)}")
    crit = criteria or GateCriteria()
    applied = tuple(k for k in rule.CRITERIA_SETS[criteria_set] if k in waived)
    reasons: list[str] = []
    waived_reasons: list[str] = []
    observed: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    for key, obs, thr, message in _checks(evidence, crit, criteria_set):
        observed[key], thresholds[key] = float(obs), float(thr)
        sink = waived_reasons if key in applied else reasons
        if math.isnan(obs) or math.isnan(thr):
            missing = _MISSING.get(key, "not available")
            sink.append(f"{key}: {missing} (observed {obs:.4g}, threshold {thr:.4g})")
        elif not rule.holds(key, obs, thr):
            sink.append(f"{key}: " + message.format(o=f"{obs:.4g}", t=f"{thr:.4g}"))
    return GateVerdict(
        not reasons, reasons, observed, thresholds, waived_reasons, criteria_set, applied
    )


EVIDENCE_COLUMNS: tuple[str, ...] = (
    "evaluation_run", "best_baseline", "latency_p95_ms", "risk_var_99_1d",
    "risk_worst_stress_loss", "risk_portfolio_value",
)  # fmt: skip


def evidence_from_table(table: pd.DataFrame, name: str) -> tuple[GateEvidence, str]:
    """The gate evidence about candidate ``name`` carried by a ``model_evaluation`` table.

    The table holds one row per model/baseline (column ``name``) with the holdout figures, the
    ``EVIDENCE_COLUMNS`` (which row is the best baseline, latency, the candidate book's risk
    figures) and the id of the evaluation run that produced all of it, so a verdict is always
    computed from one evaluation's own evidence.

    Returns:
        ``(evidence, evaluation_run)``.

    Raises:
        GateError: the table lacks the row, the evidence columns or a single run id.
    """
    missing = sorted({"name", "sharpe", *EVIDENCE_COLUMNS} - set(table.columns))
    if missing:
        raise GateError(f"the evaluation table has no evidence columns {missing}")
    runs = sorted(set(table["evaluation_run"].astype(str)))
    if len(runs) != 1 or not runs[0].strip():
        raise GateError(f"the evaluation table must come from one evaluation run, got {runs}")
    rows = table.set_index("name", drop=False)
    if name not in rows.index:
        raise GateError(f"the evaluation has no candidate {name!r}; rows {list(rows.index)}")
    row = rows.loc[name]
    best = rows[rows["best_baseline"].astype(bool)]
    best_name = str(best.index[0]) if len(best) else None
    risk = None
    figures = [float(row[c]) for c in ("risk_var_99_1d", "risk_worst_stress_loss",
                                       "risk_portfolio_value")]  # fmt: skip
    if all(math.isfinite(v) for v in figures) and figures[2] > 0:
        risk = RiskFigures(*figures)
    latency = float(row["latency_p95_ms"])
    evidence = GateEvidence(
        model=name,
        ic_t_nw=float(row.get("ic_t_nw", math.nan)),
        ic_ci_low=float(row.get("ic_ci_low", math.nan)),
        sharpe=float(row["sharpe"]),
        best_baseline=best_name,
        best_baseline_sharpe=float(best["sharpe"].iloc[0]) if best_name else math.nan,
        max_drawdown=float(row.get("max_drawdown", math.nan)),
        latency_p95_ms=latency if math.isfinite(latency) else None,
        risk=risk,
    )
    return evidence, runs[0]


@dataclass(frozen=True)
class LatencyMeasurement:
    """Wall-clock latency of ``LoadedEnsemble.predict`` on one batch size.

    Attributes:
        n_symbols: Rows per call (the live decision batch).
        repeats: Timed calls.
        p50_ms: Median milliseconds per call.
        p95_ms: 95th percentile.
        max_ms: Slowest call.
        device: Torch device.
    """

    n_symbols: int
    repeats: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    device: str


def measure_inference_latency(
    loaded: LoadedEnsemble, n_symbols: int, repeats: int = 200, warmup: int = 10, seed: int = 0
) -> LatencyMeasurement:
    """Time ``loaded.predict`` on a batch of ``n_symbols`` rows, as the live batcher calls it.

    Inputs are drawn around the model's standardization statistics (latency does not depend on
    the values); window models get ``(n, T, F)`` windows and the last row as features.

    Args:
        loaded: A model from ``rrr_live.models.load_model``.
        n_symbols: Batch size (symbols per decision batch live).
        repeats: Timed calls (after ``warmup`` untimed ones).
        warmup: Untimed calls first (allocator, thread pools).
        seed: Seed of the synthetic inputs.

    Returns:
        Percentiles of the per-call wall time.
    """
    if n_symbols < 1 or repeats < 1 or warmup < 0:
        raise GateError("need n_symbols >= 1, repeats >= 1, warmup >= 0")
    ens = loaded.ensemble
    rng = np.random.default_rng(seed)
    depth = max(loaded.window_length, 1)
    z = rng.standard_normal((n_symbols, depth, ens.n_features))
    windows = (ens.feature_mean + ens.feature_std * z).astype(np.float32)
    features = np.ascontiguousarray(windows[:, -1, :])
    wins = windows if loaded.needs_windows else None
    for _ in range(warmup):
        loaded.predict(features, wins)
    samples = np.empty(repeats)
    for i in range(repeats):
        started = time.perf_counter()
        loaded.predict(features, wins)  # returns numpy: includes any device sync
        samples[i] = (time.perf_counter() - started) * 1e3
    p50, p95 = np.percentile(samples, [50, 95])
    return LatencyMeasurement(
        n_symbols, repeats, float(p50), float(p95), float(samples.max()), loaded.device
    )
