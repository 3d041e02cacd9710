"""Retraining: a weekly schedule, new-data and live decay/drift sensors."""

import os

import dagster as dg

RETRAIN_SELECTION = dg.AssetSelection.groups("ml")

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=RETRAIN_SELECTION,
    description="features → training_set → ensemble → evaluation → gate → registration",
)

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=retrain_job,
    cron_schedule="0 6 * * 6",  # Saturdays 06:00 UTC, after the week's last session
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


@dg.asset_sensor(
    asset_key=dg.AssetKey("market_bars"),
    job=retrain_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def retrain_on_new_bars(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.RunRequest | dg.SkipReason:
    """Retrain once per publish of market_bars that changed published rows.

    ``market_bars`` materializes only when audited partitions are published (a quarantined
    partition stops the run before it), so this sensor never sees data that failed its checks.
    A publish that changed nothing (unchanged data re-ingested) is skipped.
    """
    mat = asset_event.asset_materialization
    meta = mat.metadata if mat is not None else {}
    changed = sum(int(meta[key].value) for key in ("rows_written", "rows_deleted") if key in meta)
    if mat is not None and "rows_written" in meta and changed == 0:
        return dg.SkipReason(f"market_bars publish in run {asset_event.run_id} changed no rows")
    return dg.RunRequest(
        run_key=f"bars-{asset_event.run_id or asset_event.timestamp}",
        tags={"rrr/retrain_reason": "new_data"},
    )


@dg.sensor(
    job=retrain_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED
)
def retrain_on_live_feedback(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Retrain when the live runner reports model decay or drift (table model_feedback)."""
    from rrr_pipelines.lib.feedback import breached_since

    url = os.environ.get("RRR_PG_URL_RRR")
    if not url:
        return dg.SensorResult(skip_reason="RRR_PG_URL_RRR is not set")
    after = int(context.cursor or 0)
    rows = breached_since(url, after)
    if not rows:
        return dg.SensorResult(skip_reason="no decay/drift breach reported")
    last = rows[-1]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"feedback-{last.id}",
                tags={
                    "rrr/retrain_reason": last.kind,
                    "rrr/metric": last.metric,
                    "rrr/value": f"{last.value:.6g}",
                    "rrr/threshold": f"{last.threshold:.6g}",
                },
            )
        ],
        cursor=str(last.id),
    )
