"""Retraining triggers: live decay/drift feedback and new bars, at most once per signal."""

import dagster as dg
import pytest

from rrr_pipelines.defs.ml.automation import (
    retrain_on_live_feedback,
    retrain_on_new_bars,
    weekly_retrain,
)
from rrr_pipelines.lib.feedback import breached_since, record_feedback


def _report(url: str, kind: str, value: float, threshold: float) -> int:
    breached = value > threshold if kind == "drift" else value < threshold
    return record_feedback(
        url,
        model_name="rrr-ensemble",
        model_version="3",
        kind=kind,
        metric="psi_ret_1" if kind == "drift" else "rolling_ic_60d",
        value=value,
        threshold=threshold,
        breached=breached,
    )


def test_feedback_sensor_requests_one_retrain_per_breach(
    rrr_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRR_PG_URL_RRR", rrr_db_url)
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance)
        assert retrain_on_live_feedback(ctx).skip_reason is not None  # nothing reported yet

        _report(rrr_db_url, "drift", 0.05, 0.25)  # within threshold: no retrain
        assert retrain_on_live_feedback(dg.build_sensor_context(instance=instance)).skip_reason

        breach = _report(rrr_db_url, "decay", -0.02, 0.0)
        result = retrain_on_live_feedback(dg.build_sensor_context(instance=instance))
        assert [r.run_key for r in result.run_requests] == [f"feedback-{breach}"]
        assert result.run_requests[0].tags["rrr/retrain_reason"] == "decay"
        assert result.cursor == str(breach)

        again = retrain_on_live_feedback(
            dg.build_sensor_context(instance=instance, cursor=result.cursor)
        )
        assert again.skip_reason is not None and not again.run_requests


def test_breached_since_orders_and_filters(rrr_db_url: str) -> None:
    ids = [_report(rrr_db_url, "drift", v, 0.25) for v in (0.3, 0.1, 0.4)]
    rows = breached_since(rrr_db_url, 0)
    assert [r.id for r in rows] == [ids[0], ids[2]]
    assert breached_since(rrr_db_url, ids[2]) == []


def test_feedback_sensor_without_database_setting_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RRR_PG_URL_RRR", raising=False)
    with dg.instance_for_test() as instance:
        result = retrain_on_live_feedback(dg.build_sensor_context(instance=instance))
        assert "RRR_PG_URL_RRR" in result.skip_reason.skip_message


def test_weekly_schedule_targets_the_retrain_job() -> None:
    assert weekly_retrain.cron_schedule == "0 6 * * 6"
    assert weekly_retrain.job_name == "retrain_job"


def test_new_bars_sensor_fires_on_a_changing_publish_only() -> None:
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance)
        assert not retrain_on_new_bars.evaluate_tick(ctx).run_requests  # nothing published

        def publish(written: int) -> None:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    "market_bars", metadata={"rows_written": written, "rows_deleted": 0}
                )
            )

        publish(0)  # an unchanged partition re-published: nothing new to learn from
        data = retrain_on_new_bars.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert not data.run_requests and "changed no rows" in str(data.skip_message)
        publish(12)
        data = retrain_on_new_bars.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=data.cursor)
        )
        assert len(data.run_requests) == 1
        assert data.run_requests[0].tags["rrr/retrain_reason"] == "new_data"
