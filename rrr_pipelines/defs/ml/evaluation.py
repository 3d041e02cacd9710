"""model_evaluation → promotion_gate → registered_model and registered_baseline.

Every evaluated candidate (the ensemble and the best baseline) is registered, tagged with the
verdict computed inside registration from the evidence its loaded ``model_evaluation`` table
carries (that evaluation's own run id, figures, latency and risk figures), never from a check
found elsewhere in the instance. Aliases follow the one rule of :mod:`rrr_live.models.verdict`:
``challenger`` only for a passed version (the ensemble first; the best baseline when the ensemble
of the same evaluation failed). ``promotion_gate`` reports the ensemble's verdict on the same
table; it does not block registration, because a failed candidate is registered too (it may only
ever be ``shadow``).
"""

import base64
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from rrr_pipelines.defs.live.policies import MLFLOW_RETRY
from rrr_pipelines.defs.ml.assets import GROUP, model_root
from rrr_pipelines.defs.ml.config import DataSelection
from rrr_pipelines.defs.ml.resources import MlflowResource, PromotionGateResource
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.jsonsafe import json_safe


class EvaluationSettings(DataSelection):
    """Holdout evaluation settings."""

    live_batch_symbols: int = Field(
        default=1000, description="batch size of the inference-latency measurement (live universe)"
    )


def _png_md(title: str, png: bytes) -> dg.MetadataValue:
    return dg.MetadataValue.md(
        f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"
    )


def _package_best_baseline(report: Any, training_set: pd.DataFrame, run_id: str) -> str:
    from rrr_live.features import default_spec
    from rrr_pipelines.lib.ml.baselines import fit_ridge_frame, rule_baseline, save_baseline
    from rrr_pipelines.lib.ml.dataset import bar_interval

    spec = default_spec()
    name = report.best_baseline
    if name is None:
        return ""
    baseline = (
        fit_ridge_frame(training_set, list(spec.names))
        if name == "ridge"
        else rule_baseline(name, spec)
    )
    out = model_root() / "baseline" / run_id
    interval = bar_interval(training_set)
    save_baseline(out, baseline, feature_spec={**spec.to_dict(), "fingerprint": spec.fingerprint()},
                  metadata={"baseline": name, "run_id": run_id,
                            **({"bar_interval": interval} if interval else {})})  # fmt: skip
    return str(out)


def _candidate_risk(
    context: dg.AssetExecutionContext, backtest: Any, bars: pd.DataFrame
) -> tuple[Any, dict[str, Any]]:
    """Risk figures of the book the candidate's holdout backtest holds at its maximum gross.

    Returns ``(RiskFigures | None, metadata)``; ``None`` (the gate then fails on missing risk
    figures) when the book or its VaR cannot be computed, with the reason in the metadata.
    """
    from rrr_live.risk.ewma import RiskInputError
    from rrr_pipelines.lib.ml.gate import RiskFigures
    from rrr_pipelines.lib.risk import render
    from rrr_pipelines.lib.risk.portfolio import book_risk

    try:
        figures = book_risk(backtest, bars)
    except RiskInputError as exc:
        context.log.warning(f"candidate risk figures unavailable: {exc}")
        return None, {"risk.error": str(exc)}
    book = figures.book
    risk = RiskFigures(figures.var_99_1d, figures.worst_stress_loss, book.equity)
    meta: dict[str, Any] = {
        "risk.as_of": str(book.as_of),
        "risk.portfolio_value": book.equity,
        "risk.gross_exposure": book.gross_exposure,
        "risk.var_99_1d": risk.var_99_1d,
        "risk.worst_stress_loss": risk.worst_stress_loss,
        "risk.portfolio": dg.MetadataValue.json(
            {"as_of": str(book.as_of), "equity": book.equity, "positions": book.positions}
        ),
    }
    if figures.risk is not None:
        stress = figures.risk.stress
        meta["risk.worst_scenario"] = stress.worst_scenario
        meta["risk.var_table"] = dg.MetadataValue.md(
            render.table_markdown(figures.risk.var, ",.0f")
        )
        meta["risk.stress_table"] = dg.MetadataValue.md(render.table_markdown(stress.table, ",.2f"))
        hist = stress.historical[["scenario", "start", "end", "covered", "days", "pnl", "pnl_pct"]]
        meta["risk.historical"] = dg.MetadataValue.md(render.table_markdown(hist, ",.2f"))
    return risk, meta


def _dynamic_risk(
    context: dg.AssetExecutionContext, backtest: Any, bars: pd.DataFrame, scores: pd.Series,
    span: tuple[pd.Timestamp, pd.Timestamp],
) -> tuple[Any, pd.DataFrame, dict[str, Any]]:  # fmt: skip
    """VaR of the candidate's OOS book and its worst **dynamic** stress loss (gate figures)."""
    from rrr_pipelines.lib.ml.gate import RiskFigures
    from rrr_pipelines.lib.risk.dynamic_stress import (
        crisis_windows,
        dynamic_stress,
        worst_dynamic_loss,
    )

    static, meta = _candidate_risk(context, backtest, bars)
    ts = scores.index.get_level_values("ts")
    oos = scores[(ts >= span[0]) & (ts <= span[1])]  # rule baselines score every bar
    table = dynamic_stress(bars, oos, crisis_windows(bars, span))
    worst = worst_dynamic_loss(table)
    meta["risk.worst_dynamic_stress_loss"] = worst
    if static is None or not np.isfinite(worst):
        return None, table, meta
    value = static.portfolio_value
    return RiskFigures(static.var_99_1d, worst * value, value), table, meta


def _baseline_scores(name: str, walk_forward: pd.DataFrame, bars: pd.DataFrame) -> pd.Series:
    """A baseline's OOS scores: refitted per fold (score baselines) or the rule's own."""
    from rrr_pipelines.lib.ml.evaluation import rule_scores

    if name in walk_forward.columns:
        return pd.Series(
            walk_forward[name].to_numpy(np.float64),
            index=pd.MultiIndex.from_frame(walk_forward[["ts", "symbol"]]),
        )
    return rule_scores(name, bars)


def _stress_md(table: pd.DataFrame) -> str:
    cols = [c for c in ("scenario", "start", "end", "covered", "loss", "max_loss", "halted",
                        "halt_date", "bars_to_halt", "static_loss", "state_path")
            if c in table.columns]  # fmt: skip
    return str(table[cols].round(4).to_markdown(index=False))


@dg.asset(group_name=GROUP, deps=["market_bars"], kinds={"pandas"})
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationSettings,
    training_set: pd.DataFrame,
    ensemble_model: pd.DataFrame,
    walk_forward: pd.DataFrame,
    database: DatabaseResource,
) -> pd.DataFrame:
    """Out-of-sample evidence of the ensemble next to the baselines, then the holdout check.

    The gate evidence is the **concatenated walk-forward OOS span** (``walk_forward``): IC
    metrics, the cost-aware backtest (the evaluation's 60 % halt), the VaR of the book the OOS
    backtest holds at its maximum gross, and the worst **dynamic** stress loss (the OOS scores
    replayed through each covered crisis window with the live limits). The registered model
    (trained before the holdout) is then checked once on the final holdout, reported
    separately (``holdout.*`` metadata), not judged on.
    """
    from rrr_live.features import default_spec
    from rrr_live.models import load_model
    from rrr_pipelines.lib.ml.baselines import fit_ridge_frame
    from rrr_pipelines.lib.ml.dataset import to_training_data
    from rrr_pipelines.lib.ml.evaluation import HoldoutPeriod, evaluate_holdout, score_series
    from rrr_pipelines.lib.ml.evaluation_render import cumulative_ic_png
    from rrr_pipelines.lib.ml.gate import GateEvidence, measure_inference_latency
    from rrr_pipelines.lib.ml.oos import evaluate_oos
    from rrr_pipelines.lib.ml.predict import predict_rows

    names = list(default_spec().names)
    model_dir = str(ensemble_model["model_dir"].iloc[0])
    loaded = load_model(model_dir)  # verifies hashes and the canary: what live will load
    bars = database.load_bars(source=config.source, interval=config.interval)
    oos = evaluate_oos(bars, walk_forward, training_set)
    report = oos.report
    span = (report.period.start, report.period.end)
    latency = measure_inference_latency(loaded, config.live_batch_symbols)
    ens_oos = _baseline_scores("ensemble", walk_forward, bars)
    risk, stress_table, risk_meta = _dynamic_risk(
        context, report.backtests["ensemble"], bars, ens_oos, span
    )
    evidence = GateEvidence.from_report(report, latency_p95_ms=latency.p95_ms, risk=risk)
    baseline_dir = _package_best_baseline(report, training_set, context.run.run_id)
    risks = {"ensemble": risk}
    if report.best_baseline is not None:
        best = report.best_baseline
        risks[best], _, base_meta = _dynamic_risk(
            context, report.backtests[best], bars, _baseline_scores(best, walk_forward, bars), span
        )
        risk_meta.update({f"baseline_{k}": v for k, v in base_meta.items() if "table" not in k})
    table = _evidence_table(report, risks, latency.p95_ms, context.run.run_id)
    table["artifact_dir"] = [
        model_dir if n == "ensemble" else baseline_dir if n == report.best_baseline else ""
        for n in table["name"]
    ]
    table["oos_start"], table["oos_end"] = str(span[0]), str(span[1])
    table["walk_forward_folds"] = oos.folds.to_json(orient="records")
    # the registered model's last, separately reported check: the untouched holdout
    holdout = (training_set["segment"] == "holdout").to_numpy()
    ens_scores = score_series(
        training_set, predict_rows(loaded.ensemble, to_training_data(training_set, names), holdout),
        "ensemble", holdout,
    )  # fmt: skip
    ridge = fit_ridge_frame(training_set, names)
    held = evaluate_holdout(
        bars, {"ensemble": ens_scores}, training_set, HoldoutPeriod.from_training_set(training_set),
        baseline_scores={"ridge": score_series(training_set, ridge.predict_frame(training_set),
                                               "ridge")},
    )  # fmt: skip
    context.log.info(f"OOS {span[0].date()}..{span[1].date()}: {report.verdict}")
    context.log.info(f"holdout (reported, not judged): {held.verdict}")
    context.add_output_metadata(
        {
            "verdict": dg.MetadataValue.text(report.verdict),
            "best_baseline": report.best_baseline or "",
            "beats_best_baseline": bool(report.beats_best_baseline),
            "oos_span": f"{span[0].date()}..{span[1].date()}",
            "comparison": dg.MetadataValue.md(report.table.round(4).to_markdown()),
            "folds": dg.MetadataValue.md(oos.folds.round(4).to_markdown(index=False)),
            "ic_over_time": _png_md("OOS IC over time", report.ic_plot_png),
            "cumulative_ic": _png_md("cumulative OOS IC", cumulative_ic_png(oos.cumulative_ic)),
            "cumulative_returns": _png_md("OOS equity", report.equity_plot_png),
            "dynamic_stress": dg.MetadataValue.md(_stress_md(stress_table)),
            "dynamic_stress_rows": dg.MetadataValue.json(
                json_safe(
                    stress_table.drop(columns=["book_at_start"], errors="ignore").to_dict(
                        orient="records"
                    )
                )
            ),
            "gate_evidence": dg.MetadataValue.json(_evidence_dict(evidence)),
            "latency_p95_ms": float(latency.p95_ms),
            "latency_p50_ms": float(latency.p50_ms),
            "holdout": f"{held.period.start.date()}..{held.period.end.date()}",
            "holdout.verdict": dg.MetadataValue.text(held.verdict),
            "holdout.comparison": dg.MetadataValue.md(held.table.round(4).to_markdown()),
            "model_dir": model_dir,
            "baseline_dir": baseline_dir,
            **{k: float(v) for k, v in report.to_dict().items() if k.startswith("ensemble.")},
            **risk_meta,
        }
    )
    return table


def _evidence_table(
    report: Any, risks: dict[str, Any], latency_p95_ms: float, run_id: str
) -> pd.DataFrame:
    """The comparison table plus the gate evidence and the id of the run that produced it."""
    nan = float("nan")
    table = report.table.reset_index()
    names = list(table["name"])
    table["evaluation_run"] = run_id
    table["best_baseline"] = [n == report.best_baseline for n in names]
    table["latency_p95_ms"] = [latency_p95_ms if n == "ensemble" else nan for n in names]
    for column, attr in (("risk_var_99_1d", "var_99_1d"),
                         ("risk_worst_stress_loss", "worst_stress_loss"),
                         ("risk_portfolio_value", "portfolio_value")):  # fmt: skip
        table[column] = [
            float(getattr(risks[n], attr)) if risks.get(n) is not None else nan for n in names
        ]
    return table


def _evidence_dict(evidence: Any) -> dict[str, Any]:
    """Gate evidence as strict JSON: NaN → null, ±inf → ±1e308 (metadata JSON has no inf/NaN)."""
    from dataclasses import asdict

    return dict(json_safe(asdict(evidence)))


def judge(
    table: pd.DataFrame, name: str, criteria_set: str, gate: PromotionGateResource
) -> tuple[Any, str]:
    """The verdict on candidate ``name`` from the evidence in one evaluation table.

    Returns:
        ``(GateVerdict, evaluation_run)``.
    """
    from rrr_pipelines.lib.ml.gate import evaluate_gate, evidence_from_table

    evidence, run = evidence_from_table(table, name)
    verdict = evaluate_gate(evidence, gate.criteria(), waived=gate.waive, criteria_set=criteria_set)
    return verdict, run


@dg.asset_check(
    asset=model_evaluation,
    description="Promotion gate on the evaluation it is attached to: significant holdout IC, "
    "beats the best baseline after costs, drawdown, inference latency, VaR and stress within "
    "limits. Registration recomputes the same verdict; only a passed version may trade.",
)
def promotion_gate(
    context: dg.AssetCheckExecutionContext,
    model_evaluation: pd.DataFrame,
    gate: PromotionGateResource,
) -> dg.AssetCheckResult:
    """Judge the ensemble of this evaluation (its own table) with the ``gate`` thresholds."""
    from rrr_live.models.verdict import MODEL_SET

    verdict, run = judge(model_evaluation, "ensemble", MODEL_SET, gate)
    for reason in verdict.reasons:
        context.log.warning(f"GATE: {reason}")
    for reason in verdict.waived:
        context.log.warning(f"GATE (waived by the gate resource): {reason}")
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "verdict": "passed" if verdict.passed else "failed",
            "criteria_set": MODEL_SET,
            "evaluation_run": run,
            "reasons": dg.MetadataValue.json(verdict.reasons),
            "waived": dg.MetadataValue.json(verdict.waived),
            "observed": dg.MetadataValue.json(json_safe(verdict.observed)),
            "thresholds": dg.MetadataValue.json(json_safe(verdict.thresholds)),
        },
    )


def git_commit() -> str:
    """The commit of the code that trains (``unknown`` outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent, check=True,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _register(
    context: dg.AssetExecutionContext, mlflow: MlflowResource, row: pd.Series, verdict: Any,
    evaluation_run: str, training_set: pd.DataFrame, *, challenger: bool,
) -> dg.MaterializeResult[Any]:  # fmt: skip
    from rrr_live.features import default_spec
    from rrr_live.models.manifest import Manifest
    from rrr_live.models.verdict import CHALLENGER

    spec = default_spec()
    registry = mlflow.registry()
    metrics = {k: float(v) for k, v in row.items() if isinstance(v, float) and pd.notna(v)}
    manifest = Manifest.read(Path(row["artifact_dir"]))
    members = manifest.metadata.get("members", {})
    candidate = str(row["name"])
    lineage = {  # on the run and the version: what it was trained on and judged by
        "trained_before": str(manifest.metadata.get("trained_before", "")),
        "oos.span": f"{row.get('oos_start', '')}..{row.get('oos_end', '')}",
        "walkforward.folds": str(row.get("walk_forward_folds", "[]"))[:4900],
    }
    run_id = registry.log_training_run(
        params={
            "candidate": candidate,
            "feature_spec_version": spec.version,
            **manifest.metadata.get("params", {}),
            **{f"{m}.{k}": v for m, rec in members.items() for k, v in rec.items()},
        },
        metrics=metrics,
        feature_spec={**spec.to_dict(), "fingerprint": spec.fingerprint()},
        data_range=_lineage(row, manifest.metadata, training_set),
        git_commit=git_commit(),
        model_dir=row["artifact_dir"],
        run_name=f"{candidate}-{context.run.run_id[:8]}",
        tags={"evaluation_run": evaluation_run, **lineage},
    )
    version = registry.register(run_id, {**verdict.tags(candidate, evaluation_run), **lineage})
    status = "passed" if verdict.passed else "failed"
    alias = ""
    if challenger:
        registry.set_alias(version.version, CHALLENGER)  # the rule re-reads the version's tags
        alias = CHALLENGER
    context.log.info(
        f"registered {version.name} v{version.version} ({candidate}, {verdict.criteria_set} "
        f"criteria {status}){' as @' + alias if alias else ', no alias'}"
    )
    for reason in verdict.reasons:
        context.log.warning(f"{candidate} {status}: {reason}")
    return dg.MaterializeResult(
        metadata={
            "model": version.name,
            "version": version.version,
            "candidate": candidate,
            "alias": alias,
            "gate_verdict": status,
            "criteria_set": verdict.criteria_set,
            "evaluation_run": evaluation_run,
            "reasons": dg.MetadataValue.json(verdict.reasons),
            "waived": dg.MetadataValue.json(verdict.waived),
            "mlflow_run": dg.MetadataValue.url(f"{mlflow.tracking_uri}/#/models/{version.name}"),
        }
    )


def _lineage(
    row: pd.Series, metadata: dict[str, Any], training_set: pd.DataFrame
) -> dict[str, Any]:
    """data_range.json of a registered version: data, training cut-off, folds and OOS figures."""
    import json

    oos = {k: float(v) for k, v in row.items() if isinstance(v, float) and pd.notna(v)}
    return {
        "start": str(training_set["ts"].min()),
        "end": str(training_set["ts"].max()),
        "trained_before": metadata.get("trained_before", ""),
        "train_rows_last_ts": metadata.get("train_rows_last_ts", ""),
        "purged": True,
        "oos_span": [str(row.get("oos_start", "")), str(row.get("oos_end", ""))],
        "walk_forward_folds": json.loads(str(row.get("walk_forward_folds", "[]"))),
        "oos": oos,
    }


@dg.asset(group_name=GROUP, kinds={"mlflow"}, retry_policy=MLFLOW_RETRY)
def registered_model(
    context: dg.AssetExecutionContext,
    model_evaluation: pd.DataFrame,
    training_set: pd.DataFrame,
    mlflow: MlflowResource,
    gate: PromotionGateResource,
) -> dg.MaterializeResult[Any]:
    """Register the evaluated ensemble as a new `rrr-ensemble` version with its own verdict.

    The verdict is recomputed here from the loaded evaluation's evidence with the model
    criteria; only a passed ensemble becomes ``@challenger``.
    """
    from rrr_live.models.verdict import MODEL_SET

    verdict, run = judge(model_evaluation, "ensemble", MODEL_SET, gate)
    row = model_evaluation.set_index("name", drop=False).loc["ensemble"]
    return _register(context, mlflow, row, verdict, run, training_set, challenger=verdict.passed)


@dg.asset(group_name=GROUP, kinds={"mlflow"}, retry_policy=MLFLOW_RETRY)
def registered_baseline(
    context: dg.AssetExecutionContext,
    model_evaluation: pd.DataFrame,
    training_set: pd.DataFrame,
    mlflow: MlflowResource,
    gate: PromotionGateResource,
) -> dg.MaterializeResult[Any]:
    """Register the evaluation's best baseline (same manifest format) with its own verdict.

    Judged by the baseline criteria (positive Sharpe after costs, drawdown, VaR, stress). It
    becomes ``@challenger`` only if it passed and the ensemble of the same evaluation did not.
    """
    from rrr_live.models.verdict import BASELINE_SET, MODEL_SET

    best = model_evaluation.loc[model_evaluation["best_baseline"].astype(bool), "name"]
    if best.empty:
        raise dg.Failure("the evaluation found no baseline to register")
    name = str(best.iloc[0])
    verdict, run = judge(model_evaluation, name, BASELINE_SET, gate)
    ensemble, _ = judge(model_evaluation, "ensemble", MODEL_SET, gate)
    row = model_evaluation.set_index("name", drop=False).loc[name]
    challenger = verdict.passed and not ensemble.passed
    return _register(context, mlflow, row, verdict, run, training_set, challenger=challenger)
