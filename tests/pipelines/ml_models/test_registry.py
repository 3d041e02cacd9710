from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from click.testing import CliRunner

from rrr_live.models import load_model, save_model
from rrr_live.models import verdict as rule
from rrr_pipelines.lib.model_registry import GateRefusedError, ModelRegistry, RegistryError
from tests.live.models.conftest import make_ensemble

pytestmark = pytest.mark.pg

SPEC = {"version": "fs-7", "fingerprint": "f00d"}
RANGE = {"start": "1999-01-04", "end": "2015-12-31", "symbols": ["SPX", "NDX"]}
PASSING = [
    rule.Criterion("sharpe", 1.1, 0.0),
    rule.Criterion("max_drawdown", 0.1, 0.25),
    rule.Criterion("var_99_1d", 0.03, 0.05),
    rule.Criterion("worst_stress_loss", 0.3, 0.5),
]
FAILING = [rule.Criterion("worst_stress_loss", 0.634, 0.5) if c.key == "worst_stress_loss" else c
           for c in PASSING]  # fmt: skip


@pytest.fixture
def registry(mlflow_server, monkeypatch, request):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # one registered model per test keeps tests independent on the shared server
    return ModelRegistry(mlflow_server, model_name=f"rrr-ensemble-{request.node.name[:40]}")


def _trained_model(tmp_path, seed):
    d = tmp_path / f"model-{seed}"
    save_model(d, make_ensemble(seed=seed), feature_spec=SPEC)
    return d


def _log_and_register(registry, tmp_path, seed, passed=True):
    run_id = registry.log_training_run(
        {"seed": seed, "window": 8},
        {"val_mse": 0.5 + seed},
        SPEC,
        RANGE,
        "abc123",
        _trained_model(tmp_path, seed),
        run_name=f"seed-{seed}",
    )
    criteria = PASSING if passed else FAILING
    tags = rule.verdict_tags(f"cand-{seed}", rule.BASELINE_SET, f"eval-{seed}", criteria)
    return registry.register(run_id, tags)


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
    assert registry.alias_version("challenger") is None  # registering sets no alias
    registry.set_alias(v.version, "challenger")
    assert registry.alias_version("challenger") == v.version
    assert v.source.endswith("/model")
    tags = registry.version_tags(v.version)
    assert rule.parse_verdict(tags).passed and tags[rule.TAG_EVALUATION_RUN] == "eval-1"
    with pytest.raises(RegistryError, match="champion"):
        registry.download("champion", tmp_path / "none")
    registry.promote(v.version, "first model", "alice")
    local = registry.download("champion", tmp_path / "dl")
    loaded = load_model(local)
    w = np.random.default_rng(0).normal(size=(4, 8, 5)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(None, w), make_ensemble(seed=1).predict(None, w))


def test_promote_and_rollback_keep_history_and_follow_the_rule(registry, tmp_path):
    v1 = _log_and_register(registry, tmp_path, seed=1)
    v2 = _log_and_register(registry, tmp_path, seed=2)
    v3 = _log_and_register(registry, tmp_path, seed=3, passed=False)
    with pytest.raises(GateRefusedError, match=r"worst_stress_loss \(observed 0.634"):
        registry.set_alias(v3.version, "challenger")
    registry.set_alias(v3.version, "shadow")  # a failed version may be scored, never traded
    with pytest.raises(RegistryError, match="no champion"):
        registry.rollback("nothing yet", "bob")
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    registry.promote(v1.version, "baseline", "alice", when=t)
    registry.promote(v2.version, "better sharpe", "bob", when=t)
    assert registry.alias_version("champion") == v2.version
    tags = registry.version_tags(v2.version)
    assert (tags["promoted.by"], tags["promoted.reason"]) == ("bob", "better sharpe")
    assert tags["promoted.at"] == "2026-01-02T03:04:05+00:00"

    # v1's verdict is tampered with: the rule re-reads the tags and refuses to return to it
    registry.client.set_model_version_tag(registry.model_name, v1.version, rule.TAG_VERDICT, "x")
    with pytest.raises(GateRefusedError, match="not judged"):
        registry.rollback("live drawdown", "carol", when=t)
    registry.client.set_model_version_tag(
        registry.model_name, v1.version, rule.TAG_VERDICT, "passed"
    )
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


def _cli(registry, monkeypatch, *args):
    from rrr_live.config import get_settings
    from rrr_pipelines.cli.main import cli

    monkeypatch.setenv("RRR_MLFLOW_TRACKING_URI", registry.tracking_uri)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, ["model", "--name", registry.model_name, *args])
    finally:
        get_settings.cache_clear()


def test_cli_refuses_a_failed_version_names_criteria_and_records_an_override(
    registry, tmp_path, monkeypatch
):
    v1 = _log_and_register(registry, tmp_path, seed=1, passed=False)
    refused = _cli(registry, monkeypatch, "promote", v1.version, "--reason", "looks fine")
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1
    assert "worst_stress_loss (observed 0.634, needs <= 0.5)" in refused.output
    assert "--override-gate" not in registry.version_tags(v1.version)
    assert registry.alias_version("champion") is None

    reason = "accepting the dot-com stress for a paper run"
    done = _cli(registry, monkeypatch, "promote", v1.version, "--override-gate", "--reason", reason)
    assert done.exit_code == 0, done.output
    assert registry.alias_version("champion") == v1.version
    tags = registry.version_tags(v1.version)  # what the MLflow UI shows
    assert tags[rule.TAG_OVERRIDE_REASON] == reason and tags[rule.TAG_OVERRIDE_BY]
    assert datetime.fromisoformat(tags[rule.TAG_OVERRIDE_AT]).tzinfo is not None
    assert rule.parse_verdict(tags).status == rule.FAILED  # the verdict itself is unchanged

    listing = _cli(registry, monkeypatch, "list")
    assert listing.exit_code == 0, listing.output
    header, row = listing.output.strip().splitlines()
    assert header.split() == ["version", "candidate", "verdict", "criteria", "override", "aliases"]
    assert row.startswith(f"v{v1.version} ") and "cand-1" in row and "@champion" in row
    assert "failed (worst_stress_loss)" in row and "baseline" in row and reason in row


def test_cli_fails_in_one_line_within_seconds_when_mlflow_is_down(tmp_path):
    from tests.kit.services import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RRR_", "MLFLOW_"))}
    env.update(RRR_HOME=str(tmp_path / "home"), RRR_MLFLOW_PORT=str(free_port()))
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "rrr_pipelines.cli", "model", "list"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert time.monotonic() - started < 10
    assert out.returncode == 1 and out.stdout == ""
    [line] = out.stderr.strip().splitlines()
    assert "not reachable" in line and "rrr up" in line and env["RRR_MLFLOW_PORT"] in line
    assert not (tmp_path / "home").exists()  # nothing was started to answer it
