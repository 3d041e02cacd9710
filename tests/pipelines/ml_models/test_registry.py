from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from rrr_live.models import load_model, save_model
from rrr_pipelines.lib.model_registry import ModelRegistry, RegistryError
from tests.live.models.conftest import make_ensemble

pytestmark = pytest.mark.pg

SPEC = {"version": "fs-7", "fingerprint": "f00d"}
RANGE = {"start": "1999-01-04", "end": "2015-12-31", "symbols": ["SPX", "NDX"]}


@pytest.fixture
def registry(mlflow_server, monkeypatch, request):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # one registered model per test keeps tests independent on the shared server
    return ModelRegistry(mlflow_server, model_name=f"rrr-ensemble-{request.node.name[:40]}")


def _trained_model(tmp_path, seed):
    d = tmp_path / f"model-{seed}"
    save_model(d, make_ensemble(seed=seed), feature_spec=SPEC)
    return d


def _log_and_register(registry, tmp_path, seed, verdict="passed"):
    run_id = registry.log_training_run(
        {"seed": seed, "window": 8},
        {"val_mse": 0.5 + seed},
        SPEC,
        RANGE,
        "abc123",
        _trained_model(tmp_path, seed),
        run_name=f"seed-{seed}",
    )
    return registry.register(run_id, verdict=verdict, reasons=[f"sharpe ok (seed {seed})"])


def test_run_is_logged_with_everything(registry, tmp_path):
    run_id = registry.log_training_run(
        {"lr": 0.001, "members": "mlp,lstm"},
        {"val_mse": 0.25},
        SPEC,
        RANGE,
        "abc123",
        _trained_model(tmp_path, 1),
    )
    run = registry.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.001", "members": "mlp,lstm"}
    assert run.data.metrics == {"val_mse": 0.25}
    assert run.data.tags["git_commit"] == "abc123"
    assert run.data.tags["feature_spec_version"] == "fs-7"
    listed = {f.path for f in registry.client.list_artifacts(run_id)}
    assert {"model", "feature_spec.json", "data_range.json"} <= listed
    model_files = {f.path for f in registry.client.list_artifacts(run_id, "model")}
    assert "model/manifest.json" in model_files


def test_register_download_and_load_round_trip(registry, tmp_path):
    v = _log_and_register(registry, tmp_path, seed=1)
    assert registry.alias_version("challenger") == v.version
    assert v.source.endswith("/model")
    tags = registry.version_tags(v.version)
    assert tags["gate.verdict"] == "passed"
    assert json.loads(tags["gate.reasons"]) == ["sharpe ok (seed 1)"]
    with pytest.raises(RegistryError, match="champion"):
        registry.download("champion", tmp_path / "none")
    registry.promote(v.version, "first model", "alice")
    local = registry.download("champion", tmp_path / "dl")
    loaded = load_model(local)
    w = np.random.default_rng(0).normal(size=(4, 8, 5)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(None, w), make_ensemble(seed=1).predict(None, w))


def test_promote_and_rollback_keep_history(registry, tmp_path):
    v1 = _log_and_register(registry, tmp_path, seed=1)
    v2 = _log_and_register(registry, tmp_path, seed=2)
    v3 = _log_and_register(registry, tmp_path, seed=3, verdict="failed")
    assert registry.alias_version("challenger") == v3.version
    with pytest.raises(RegistryError, match="no champion"):
        registry.rollback("nothing yet", "bob")
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    registry.promote(v1.version, "baseline", "alice", when=t)
    registry.promote(v2.version, "better sharpe", "bob", when=t)
    assert registry.alias_version("champion") == v2.version
    tags = registry.version_tags(v2.version)
    assert (tags["promoted.by"], tags["promoted.reason"]) == ("bob", "better sharpe")
    assert tags["promoted.at"] == "2026-01-02T03:04:05+00:00"

    assert registry.rollback("live drawdown", "carol", when=t) == v1.version
    assert registry.alias_version("champion") == v1.version
    assert registry.version_tags(v1.version)["rolled_back_to.by"] == "carol"
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback("again", "carol")
    history = registry.champion_history()
    assert [(h["action"], h["version"], h["previous"]) for h in history] == [
        ("promote", v1.version, None),
        ("promote", v2.version, v1.version),
        ("rollback", v1.version, None),
    ]
    with pytest.raises(RegistryError, match="reason"):
        registry.promote(v3.version, " ", "dave")
