"""Failed runs recorded where the operator sees them; schedules, policies and wiring load."""

import dagster as dg

from rrr_pipelines.defs.live.automation import record_failed_runs
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.live_feedback.failures import recent_failures


@dg.asset
def boom() -> None:
    """Always fails."""
    raise RuntimeError("venue said no")


def test_failure_sensor_records_a_failed_run_once(rrr_db_url: str) -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize([boom], instance=instance, raise_on_error=False)
        assert not result.success
        ctx = dg.build_run_status_sensor_context(
            sensor_name="record_failed_runs", dagster_event=result.get_run_failure_event(),
            dagster_instance=instance, dagster_run=result.dagster_run,
            resources={"database": DatabaseResource(url=rrr_db_url)},
        ).for_run_failure()  # fmt: skip
        record_failed_runs(ctx)
        record_failed_runs(ctx)  # a second report of the same run changes nothing
    [row] = recent_failures(rrr_db_url)
    assert row.run_id == result.run_id and row.job_name == result.dagster_run.job_name
    assert row.failed_steps == ("boom",) and row.failed_at.tzinfo is not None


def test_definitions_wire_the_live_automation() -> None:
    from rrr_pipelines.definitions import defs

    d = defs()
    dg.Definitions.validate_loadable(d)
    assert d.resolve_sensor_def("live_drift_retrain").job_name == "retrain_job"
    assert d.resolve_sensor_def("record_failed_runs").default_status == (
        dg.DefaultSensorStatus.RUNNING
    )
    for name, cron in (
        ("live_feedback_daily", "15 0 * * *"),
        ("live_risk_daily", "30 0 * * *"),
        ("market_bars_daily", "30 22 * * *"),
        ("weekly_retrain", "0 6 * * 6"),
    ):
        assert d.resolve_schedule_def(name).cron_schedule == cron  # fmt: skip
    graph = d.resolve_asset_graph()
    for key in ("market_bars", "features", "ensemble_model", "live_performance"):
        assert graph.get(dg.AssetKey(key)).freshness_policy is not None, key
    for key in ("market_bars_staging", "registered_model", "registered_baseline",
                "model_staleness"):  # fmt: skip
        policy = d.resolve_assets_def(key).op.retry_policy
        assert policy is not None and policy.backoff == dg.Backoff.EXPONENTIAL, key
        assert policy.max_retries >= 1


def test_live_assets_stay_out_of_the_retrain_job() -> None:
    from rrr_pipelines.definitions import defs

    selected = defs().resolve_job_def("retrain_job").asset_layer.selected_asset_keys
    assert dg.AssetKey("ensemble_model") in selected
    for key in ("live_performance", "feature_drift", "model_staleness", "live_risk_report"):
        assert dg.AssetKey(key) not in selected


def test_only_remote_source_errors_reach_the_retry_policy() -> None:
    import pytest

    from rrr_pipelines.defs.live.policies import REST_RETRY, retry_only_remote_errors
    from rrr_pipelines.lib.sources.base import SourceError
    from rrr_pipelines.lib.sources.rest import RestSourceError

    # Dagster's exponential backoff waits delay * (2**attempt - 1): 30 s, 90 s, 210 s
    assert [REST_RETRY.calculate_delay(n) for n in (1, 2, 3)] == [30, 90, 210]
    with pytest.raises(RestSourceError), retry_only_remote_errors():
        raise RestSourceError("HTTP 503")
    with pytest.raises(dg.Failure) as failed, retry_only_remote_errors():
        raise SourceError("no such file")
    assert failed.value.allow_retries is False
