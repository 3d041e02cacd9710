"""The drift/decay sensor on a real journal: drift names the features, clean data skips."""

import dagster as dg
import pandas as pd
import pytest

from rrr_pipelines.defs.live.automation import live_drift_retrain
from tests.pipelines.live_feedback.conftest import live_bars, resources
from tests.pipelines.live_feedback.kit import Journal, write_journal

VOL_FEATURES = {"ret_1", "ret_5", "rv_cc_20", "rv_parkinson_20", "rv_gk_20"}
SCALE_FREE = {"rsi_14", "bollinger_z_20", "volume_z_20"}  # unchanged by a volatility shift


def _tick(instance: dg.DagsterInstance, url: str, cursor: str | None = None) -> dg.SensorResult:
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources(url))
    result = live_drift_retrain(ctx)
    assert isinstance(result, dg.SensorResult)
    return result


def test_injected_volatility_drift_requests_one_retrain_naming_the_features(
    db: str, training_bars: pd.DataFrame
) -> None:
    # the live window's shocks are 4x the training window's: a shift in the volatility features
    write_journal(db, Journal("r1", live_bars(training_bars, vol=0.04)))
    with dg.instance_for_test() as instance:
        first = _tick(instance, db)
        assert len(first.run_requests) == 1
        tags = first.run_requests[0].tags
        drifted = set(tags["rrr/drifted_features"].split(","))
        assert tags["rrr/retrain_reason"] == "drift"
        assert drifted >= VOL_FEATURES and not drifted & SCALE_FREE
        assert tags["rrr/runner"] == "r1" and tags["rrr/model_version"] == "3"
        assert float(tags["rrr/max_psi"]) > 0.25

        again = _tick(instance, db, first.cursor)  # the same breach: requested once
        assert not again.run_requests and "already requested" in str(again.skip_reason)


def test_clean_journal_skips_and_clears_the_cursor(db: str, training_bars: pd.DataFrame) -> None:
    write_journal(db, Journal("r1", live_bars(training_bars)))
    with dg.instance_for_test() as instance:
        result = _tick(instance, db, cursor='{"r1": "r1|3|drift|ret_1"}')
        assert not result.run_requests
        assert "r1: no drift" in str(result.skip_reason)
        assert result.cursor == "{}"


def test_decaying_champion_requests_a_decay_retrain(db: str, training_bars: pd.DataFrame) -> None:
    # clean features, but the champion forecasts the opposite of what happens (live IC -1)
    write_journal(db, Journal("r2", live_bars(training_bars), forecast_sign=-1.0))
    with dg.instance_for_test() as instance:
        result = _tick(instance, db)
        [req] = result.run_requests
        assert req.tags["rrr/retrain_reason"] == "decay"
        assert req.tags["rrr/drifted_features"] == ""
        assert float(req.tags["rrr/live_ic"]) == pytest.approx(-1.0)


def test_without_a_training_window_the_sensor_says_why(db: str) -> None:
    with dg.instance_for_test() as instance:
        res = resources(db, reference_end="")
        ctx = dg.build_sensor_context(instance=instance, resources=res)
        assert "no training window" in str(live_drift_retrain(ctx).skip_reason)


def test_training_window_defaults_to_the_latest_training_set(
    db: str, training_bars: pd.DataFrame
) -> None:
    write_journal(db, Journal("r1", live_bars(training_bars, vol=0.04)))
    segments = {
        "train": {"rows": 900, "start": "2020-01-01 00:00:00+00:00", "end": "x"},
        "validation": {"rows": 300, "start": "2020-10-01 00:00:00+00:00", "end": "y"},
    }
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "training_set", metadata={"segments": dg.MetadataValue.json(segments),
                                      "holdout_start": "2021-05-15 00:00:00+00:00"}))  # fmt: skip
        res = resources(db, reference_start="", reference_end="")
        window = res["live_feedback"].reference_window(instance)
        assert [str(t) for t in window] == ["2020-01-01 00:00:00+00:00",
                                            "2021-05-15 00:00:00+00:00"]  # fmt: skip
        ctx = dg.build_sensor_context(instance=instance, resources=res)
        assert live_drift_retrain(ctx).run_requests[0].tags["rrr/retrain_reason"] == "drift"
