"""Live feedback assets (group ``live``): the runner's journal read back into Dagster.

* ``live_performance`` - per runner: PnL and drawdown of the journaled equity, live IC and hit
  rate per model version (champion and shadow side by side), slippage of the fills against the
  decision close and against the price the bar backtest assumes;
* ``feature_drift`` - PSI per feature of the live window against the training window; breached
  features (and champion decay) are written to ``model_feedback``, where the existing
  ``retrain_on_live_feedback`` sensor sees them;
* ``model_staleness`` - the champion's age, its training window's end vs now, bars since.

All logic is in ``rrr_pipelines.lib.live_feedback``; the drift judgement is the one the
``live_drift_retrain`` sensor runs (``judge_runner``).
"""

import math
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from rrr_pipelines.defs.live.policies import DAILY_FRESHNESS, MLFLOW_RETRY
from rrr_pipelines.defs.live.resources import (
    LiveFeedbackResource,
    judge_runner,
    reference_features,
    utc_time,
)
from rrr_pipelines.defs.ml.resources import MlflowResource
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.risk import render

GROUP = "live"


def _num(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _runner_performance(url: str, runner: str, half_spread_bps: float, last: int) -> dict[str, Any]:
    from rrr_pipelines.lib.live_feedback.journal import read_batches, read_fills
    from rrr_pipelines.lib.live_feedback.performance import (
        equity_pnl,
        mean_slippage,
        scored_pairs,
        slippage,
        version_scores,
    )

    batches = read_batches(url, runner, last=last)
    pnl = equity_pnl(batches)
    scores = version_scores(scored_pairs(batches))
    slips = slippage(read_fills(url, runner), batches, half_spread_bps)
    return {
        "batches": len(batches), "pnl": pnl, "scores": scores, "slippage": slips,
        "slip_decision_bps": mean_slippage(slips, "slip_decision_bps"),
        "slip_backtest_bps": mean_slippage(slips, "slip_backtest_bps"),
    }  # fmt: skip


def _role(scores: pd.DataFrame, role: str) -> dict[str, Any]:
    part = scores.loc[scores["role"] == role]
    if part.empty:
        return {"version": "", "ic": None, "hit_rate": None, "n": 0}
    last = part.sort_values("n").iloc[-1]
    return {"version": str(last["version"]), "ic": _num(last["ic"]),
            "hit_rate": _num(last["hit_rate"]), "n": int(last["n"])}  # fmt: skip


def _performance_metadata(runner: str, perf: dict[str, Any]) -> dict[str, Any]:
    pnl, scores, slips = perf["pnl"], perf["scores"], perf["slippage"]
    meta: dict[str, Any] = {
        f"{runner}.batches": perf["batches"],
        f"{runner}.pnl": _num(pnl.pnl),
        f"{runner}.max_drawdown": _num(pnl.max_drawdown),
        f"{runner}.fills": len(slips),
        f"{runner}.slippage_vs_decision_bps": _num(perf["slip_decision_bps"]),
        f"{runner}.slippage_vs_backtest_bps": _num(perf["slip_backtest_bps"]),
        f"{runner}.champion": dg.MetadataValue.json(_role(scores, "champion")),
        f"{runner}.shadow": dg.MetadataValue.json(_role(scores, "shadow")),
        f"{runner}.scores": dg.MetadataValue.md(render.table_markdown(scores)),
    }
    if len(pnl.path):
        meta[f"{runner}.equity_plot"] = dg.MetadataValue.md(
            render.line_plot(pnl.path.set_index("ts")["equity"], f"{runner}: equity")
        )
    if len(scores):
        labels = [f"{r.version} ({r.role})" for r in scores.itertuples()]
        ic = np.nan_to_num(scores["ic"].to_numpy(dtype=float))
        meta[f"{runner}.ic_plot"] = dg.MetadataValue.md(
            render.bar_plot(labels, ic, f"{runner}: live IC per version", "IC")
        )
    return meta


@dg.asset(
    group_name=GROUP,
    kinds={"postgres"},
    freshness_policy=DAILY_FRESHNESS,
)
def live_performance(
    database: DatabaseResource, live_feedback: LiveFeedbackResource
) -> dg.MaterializeResult[Any]:
    """PnL, live IC/hit rate per model version (shadow vs champion), slippage (see module doc)."""
    runners = live_feedback.runner_list(database)
    meta: dict[str, Any] = {"runners": dg.MetadataValue.json(runners)}
    for runner in runners:
        perf = _runner_performance(database.url, runner, live_feedback.half_spread_bps,
                                   live_feedback.performance_bars)  # fmt: skip
        meta.update(_performance_metadata(runner, perf))
    return dg.MaterializeResult(metadata=meta)


def _record_breaches(
    url: str, model_name: str, ev: Any, threshold: float, ic_threshold: float
) -> list[int]:
    """Write the evaluation's breaches to ``model_feedback``; return the new row ids."""
    from rrr_pipelines.lib.feedback import record_feedback

    ids = []
    detail = {"runner": ev.runner, "window": list(ev.window), "source": "feature_drift"}
    rows = [("drift", f"psi_{f.feature}", f.psi, threshold)
            for f in ev.drift.features if f.breached]  # fmt: skip
    if ev.decay:
        rows.append(("decay", "live_ic", ev.champion_ic, ic_threshold))
    for kind, metric, value, limit in rows:
        ids.append(record_feedback(
            url, model_name=model_name, model_version=ev.version, kind=kind, metric=metric,
            value=value, threshold=limit, breached=True, detail=detail,
        ))  # fmt: skip
    return ids


@dg.asset(group_name=GROUP, kinds={"postgres"})
def feature_drift(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    live_feedback: LiveFeedbackResource,
) -> dg.MaterializeResult[Any]:
    """PSI per feature of each runner's live window against the training window.

    Breaches are written to ``model_feedback`` (kind ``drift``, metric ``psi_<feature>``; champion
    decay as kind ``decay``), the contract the retrain sensor reads.
    """
    window = live_feedback.reference_window(context.instance)
    if isinstance(window, str):
        raise dg.Failure(window)
    reference = reference_features(database, live_feedback, window)
    meta: dict[str, Any] = {"reference_window": f"[{window[0]}, {window[1]})"}
    drifted: dict[str, list[str]] = {}
    for runner in live_feedback.runner_list(database):
        ev = judge_runner(database, live_feedback, runner, reference)
        if isinstance(ev, str):
            context.log.warning(ev)
            meta[f"{runner}.skipped"] = ev
            continue
        table = ev.drift.table()
        ids = _record_breaches(database.url, live_feedback.model_name, ev,
                               live_feedback.psi_threshold, live_feedback.ic_threshold)  # fmt: skip
        drifted[runner] = ev.drift.drifted
        meta.update({
            f"{runner}.max_psi": _num(ev.drift.max_psi),
            f"{runner}.drifted": dg.MetadataValue.json(ev.drift.drifted),
            f"{runner}.psi": dg.MetadataValue.json({r.feature: _num(r.psi)
                                                    for r in table.itertuples()}),
            f"{runner}.not_judged": dg.MetadataValue.json(ev.drift.skipped),
            f"{runner}.decay": ev.decay,
            f"{runner}.feedback_rows": dg.MetadataValue.json(ids),
            f"{runner}.window": f"{ev.window[0]} .. {ev.window[1]}",
        })  # fmt: skip
        if len(table):
            meta[f"{runner}.psi_plot"] = dg.MetadataValue.md(render.bar_plot(
                list(table["feature"]), table["psi"].to_numpy(dtype=float),
                f"{runner}: PSI (threshold {live_feedback.psi_threshold:g})", "PSI"))  # fmt: skip
    meta["drifted"] = dg.MetadataValue.json(drifted)
    return dg.MaterializeResult(metadata=meta)


def _champion_facts(mlflow: MlflowResource, model_name: str) -> dict[str, Any] | None:
    """Champion version, promotion time and training-window end from the registry."""
    from rrr_pipelines.lib.model_registry import ModelRegistry

    registry = ModelRegistry(mlflow.tracking_uri, model_name=model_name)
    version = registry.alias_version("champion")
    if version is None:
        return None
    tags = registry.version_tags(version)
    stamps = [tags[k] for k in ("promoted.at", "rolled_back_to.at") if tags.get(k)]
    trained = tags.get("trained_before") or ""
    return {
        "version": version,
        "promoted_at": max(utc_time(s) for s in stamps) if stamps else None,
        "trained_before": utc_time(trained) if trained else None,
    }


@dg.asset(group_name=GROUP, kinds={"mlflow"}, retry_policy=MLFLOW_RETRY)
def model_staleness(
    database: DatabaseResource, mlflow: MlflowResource, live_feedback: LiveFeedbackResource
) -> dg.MaterializeResult[Any]:
    """Champion age, days since its training window ended, bars journaled since then."""
    from rrr_pipelines.lib.live_feedback.journal import batch_times_since
    from rrr_pipelines.lib.live_feedback.staleness import model_staleness as judge

    facts = _champion_facts(mlflow, live_feedback.model_name)
    if facts is None:
        raise dg.Failure(
            f"{live_feedback.model_name} has no champion: nothing to judge", allow_retries=False
        )
    trained = facts["trained_before"]
    bars = (batch_times_since(database.url, int(pd.Timestamp(trained).value),
                              live_feedback.runners or None) if trained else 0)  # fmt: skip
    s = judge(now=datetime.now(UTC), version=facts["version"], promoted_at=facts["promoted_at"],
              trained_before=trained, bars_since=bars,
              max_data_age_days=live_feedback.max_data_age_days)  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "version": s.version,
            "champion_age_days": _num(s.champion_age_days),
            "data_age_days": _num(s.data_age_days),
            "bars_since_training": s.bars_since,
            "stale": s.stale,
            "reasons": dg.MetadataValue.json(list(s.reasons)),
            "trained_before": str(facts["trained_before"] or ""),
            "promoted_at": str(facts["promoted_at"] or ""),
        }
    )
