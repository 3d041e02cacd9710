"""Live automation: drift/decay retraining, daily live reports, failed runs recorded.

* ``live_drift_retrain`` - evaluates every runner's journal with the ``feature_drift`` asset's
  judgement (``judge_runner``) and requests ``retrain_job`` with the reason (``drift``,
  ``decay``) and the drifted features in the run's tags. The cursor keeps, per runner, the breach
  already requested (runner, version, reasons, features): the same breach is requested once; a
  clean evaluation clears it, so a later breach is requested again.
  ``retrain_on_live_feedback`` (``defs/ml/automation.py``) acts on the same breaches once
  ``feature_drift`` has written them to ``model_feedback``: turn on one of the two.
* ``live_feedback_daily`` / ``live_risk_daily`` - the live feedback assets and the risk report
  of the live positions, every day.
* ``record_failed_runs`` - every failed run becomes a row of ``pipeline_failures`` (read by
  ``rrr_pipelines.lib.live_feedback.failures.recent_failures``) and an error line in the
  sensor's tick log in the Dagster UI. On by default.
"""

import json
import math
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from rrr_pipelines.defs.live.assets import feature_drift, live_performance, model_staleness
from rrr_pipelines.defs.live.resources import (
    LiveFeedbackResource,
    judge_runner,
    reference_features,
)
from rrr_pipelines.defs.live.risk import live_risk_report
from rrr_pipelines.defs.ml import automation as ml_automation  # not its names: autoload
from rrr_pipelines.defs.resources import DatabaseResource

live_feedback_job = dg.define_asset_job(
    "live_feedback_job",
    selection=dg.AssetSelection.assets(live_performance, feature_drift, model_staleness),
    description="the runner's journal read back: performance, drift, staleness",
)
live_risk_job = dg.define_asset_job(
    "live_risk_job",
    selection=dg.AssetSelection.assets(live_risk_report),
    description="VaR, ES and stress of the live positions",
)

live_feedback_daily = dg.ScheduleDefinition(
    name="live_feedback_daily",
    job=live_feedback_job,
    cron_schedule="15 0 * * *",  # 00:15 UTC: the previous day's bars have all closed
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
live_risk_daily = dg.ScheduleDefinition(
    name="live_risk_daily",
    job=live_risk_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


def _fmt(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else "nan"


def _request(ev: Any) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"live-{ev.runner}-{ev.last_seq}-{'+'.join(ev.reasons)}",
        tags={
            "rrr/retrain_reason": "+".join(ev.reasons),
            "rrr/drifted_features": ",".join(ev.drift.drifted),
            "rrr/runner": ev.runner,
            "rrr/model_version": ev.version,
            "rrr/max_psi": _fmt(ev.drift.max_psi),
            "rrr/live_ic": _fmt(ev.champion_ic),
        },
    )


@dg.sensor(
    job=ml_automation.retrain_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def live_drift_retrain(
    context: dg.SensorEvaluationContext,
    database: DatabaseResource,
    live_feedback: LiveFeedbackResource,
) -> dg.SensorResult:
    """Request a retrain when a runner's live features drift or its champion decays."""
    window = live_feedback.reference_window(context.instance)
    if isinstance(window, str):
        return dg.SensorResult(skip_reason=window)
    reference = reference_features(database, live_feedback, window)
    done: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    requests, notes = [], []
    for runner in live_feedback.runner_list(database):
        ev = judge_runner(database, live_feedback, runner, reference)
        if isinstance(ev, str):
            notes.append(ev)
            continue
        key = ev.breach_key()
        if not key:
            done.pop(runner, None)
            notes.append(f"{runner}: no drift (max PSI {_fmt(ev.drift.max_psi)}), no decay")
        elif done.get(runner) == key:
            notes.append(f"{runner}: breach already requested ({key})")
        else:
            context.log.info(f"{runner}: {'+'.join(ev.reasons)} {ev.drift.drifted}")
            requests.append(_request(ev))
            done[runner] = key
    cursor = json.dumps(done, sort_keys=True)
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=cursor)
    return dg.SensorResult(skip_reason="; ".join(notes) or "no runner journaled", cursor=cursor)


@dg.run_failure_sensor(name="record_failed_runs", default_status=dg.DefaultSensorStatus.RUNNING)
def record_failed_runs(context: dg.RunFailureSensorContext, database: DatabaseResource) -> None:
    """Record the failed run in ``pipeline_failures`` and log it on the sensor's tick."""
    from rrr_pipelines.lib.live_feedback.failures import record_failure

    run = context.dagster_run
    steps = [e.step_key for e in context.get_step_failure_events() if e.step_key]
    message = context.failure_event.message or ""
    record = context.instance.get_run_record_by_id(run.run_id)
    end = record.end_time if record is not None else None
    failed_at = datetime.fromtimestamp(end, UTC) if end else datetime.now(UTC)
    tags = {k: v for k, v in run.tags.items() if k.startswith("rrr/")}
    new = record_failure(
        database.url, run_id=run.run_id, job_name=run.job_name, failed_at=failed_at,
        failed_steps=steps, message=message, tags=tags,
    )  # fmt: skip
    context.log.error(
        f"run {run.run_id} of {run.job_name} failed"
        f"{' in ' + ', '.join(steps) if steps else ''}: {message[:300]}"
        f"{'' if new else ' (already recorded)'}"
    )
