"""The ML asset chain on real bundled data, a real PostgreSQL and a real MLflow server."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rrr_live.features import default_spec
from rrr_live.models import verdict as rule
from rrr_pipelines.defs.ml.assets import ensemble_model, features, training_set, walk_forward
from rrr_pipelines.defs.ml.evaluation import (
    model_evaluation,
    promotion_gate,
    registered_baseline,
    registered_model,
)
from rrr_pipelines.defs.ml.resources import MlflowResource, PromotionGateResource
from rrr_pipelines.defs.resources import DatabaseResource, ParquetIOManager
from rrr_pipelines.lib.bars_store import write_bars
from rrr_pipelines.lib.ml.dataset import DatasetConfig, build_training_set, to_training_data
from rrr_pipelines.lib.model_registry import ModelRegistry
from rrr_pipelines.lib.sources.bundled import BundledSource

ALL = pd.Timestamp("1990-01-01", tz="UTC"), pd.Timestamp("2030-01-01", tz="UTC")


def test_training_set_rows_are_complete_and_segments_ordered() -> None:
    frame, _ = build_training_set(BundledSource().fetch(*ALL), default_spec(), DatasetConfig())
    names = list(default_spec().names)
    assert np.isfinite(frame[names].to_numpy()).all() and np.isfinite(frame["label"]).all()
    ends = {
        s: frame.loc[frame.segment == s, "ts"]
        for s in ("train", "validation", "stacking", "holdout")
    }
    order = ["train", "validation", "stacking", "holdout"]
    for early, late in itertools.pairwise(order):
        # purged: no label window of an earlier segment reaches the next segment's start
        assert frame.loc[frame.segment == early, "label_end"].max() < ends[late].min()
    data = to_training_data(frame, names)
    assert sum(int(m.sum()) for m in data.masks.values()) == int((frame.segment != "").sum())


IMPOSSIBLE = PromotionGateResource(min_ic_t_stat=1e9)
# Trivially loose: every threshold at its most permissive valid value; the criteria that no
# valid threshold switches off (IC t >= 0, Sharpe above the best baseline, a drawdown past 100 %
# of a frozen book that keeps losing after the evaluation's 60 % halt) are waived.
LOOSE = PromotionGateResource(
    min_ic_t_stat=0.0, min_ic_ci_low=-1e9, max_drawdown=1.0,
    max_var_99_1d=1.0, max_worst_stress_loss=1.0, waive=["ic_t_nw", "sharpe", "max_drawdown"],
)  # fmt: skip


def _gate_evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [gate] = result.get_asset_check_evaluations()
    return gate


def _registered(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in event.metadata.items()}


def _assert_aliases_follow_the_rule(registry: ModelRegistry) -> None:
    """The acceptance invariant: no trading alias on a version the rule does not allow."""
    for summary in registry.versions():
        tags = registry.version_tags(summary.version)
        for alias in summary.aliases:
            assert rule.check_alias(tags, alias).allowed, (summary.version, alias)


def _launch_registered_model_like_the_ui(
    home: Path, env: dict[str, str], gate_config: dict
) -> subprocess.CompletedProcess[str]:
    """A real Dagster run of just `registered_model` in the instance, with the code location's
    own resources (env-bound) and launchpad config, as the UI submits it."""
    config = {"resources": {"gate": {"config": gate_config}}}
    argv = [sys.executable, "-m", "dagster", "asset", "materialize", "-m",
            "rrr_pipelines.definitions", "--select", "registered_model",
            "--config-json", json.dumps(config)]  # fmt: skip
    return subprocess.run(
        argv, env={**os.environ, **env, "DAGSTER_HOME": str(home)}, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_every_candidate_is_registered_with_its_own_evaluations_verdict(
    rrr_db_url: str, mlflow_tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = tmp_path / "storage"
    monkeypatch.setenv("RRR_STORAGE_DIR", str(storage))
    write_bars(rrr_db_url, BundledSource().fetch(*ALL))
    resources = {
        "database": DatabaseResource(url=rrr_db_url),
        "io_manager": ParquetIOManager(root=str(storage)),
        "mlflow": MlflowResource(tracking_uri=mlflow_tracking_uri),
        "gate": IMPOSSIBLE,
    }
    chain = [features, training_set, ensemble_model, walk_forward, model_evaluation,
             promotion_gate, registered_model, registered_baseline]  # fmt: skip
    run_config = {
        "ops": {
            "ensemble_model": {"config": {"max_epochs": 1}},
            "walk_forward": {"config": {"max_epochs": 1, "retrain_every": 7}},
        }
    }
    registry = ModelRegistry(mlflow_tracking_uri)
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # 1. A failed gate: both candidates are registered, tagged failed, neither may trade.
        failed = dg.materialize(chain, resources=resources, instance=instance,
                                run_config=run_config)  # fmt: skip
        gate = _gate_evaluation(failed)
        assert not gate.passed and gate.metadata["verdict"].value == "failed"
        assert gate.metadata["evaluation_run"].value == failed.run_id
        reasons = gate.metadata["reasons"].value
        assert any(r.startswith("ic_t_nw:") and "1e+09" in r for r in reasons)
        [evaluation] = failed.asset_materializations_for_node("model_evaluation")
        _assert_candidate_risk(evaluation.metadata, gate.metadata["observed"].value)
        ensemble = _registered(failed, "registered_model")
        tags = registry.version_tags(ensemble["version"])
        assert ensemble["gate_verdict"] == "failed" == tags[rule.TAG_VERDICT]
        assert ensemble["alias"] == "" and tags[rule.TAG_EVALUATION_RUN] == failed.run_id
        assert tags[rule.threshold_tag("ic_t_nw")] == "1000000000.0"
        # lineage: trained before the holdout; the folds and the OOS span it was judged on
        folds = json.loads(tags["walkforward.folds"])
        assert [f["fold"] for f in folds] == [0, 1]
        assert max(f["train_end"] for f in folds) < tags["trained_before"]
        assert tags["oos.span"].split("..")[1] < tags["trained_before"]
        assert rule.parse_verdict(tags).failing[0].key == "ic_t_nw"
        baseline = _registered(failed, "registered_baseline")
        base_tags = registry.version_tags(baseline["version"])
        assert base_tags[rule.TAG_CRITERIA_SET] == "baseline" == baseline["criteria_set"]
        assert set(rule.parse_verdict(base_tags).criteria) and baseline["candidate"] in (
            "buy_and_hold", "momentum_20d", "momentum_12_1", "ridge")  # fmt: skip
        # the ensemble failed, so a baseline that passed its own criteria is the challenger
        base_passed = rule.parse_verdict(base_tags).passed
        assert (baseline["alias"] == "challenger") is base_passed
        _assert_aliases_follow_the_rule(registry)

        # 2. A passing gate on a new evaluation: that ensemble is the challenger.
        passing = dg.materialize(
            chain, selection=[model_evaluation, promotion_gate, registered_model],
            resources={**resources, "gate": LOOSE}, instance=instance,
        )  # fmt: skip
        assert _gate_evaluation(passing).passed
        passed = _registered(passing, "registered_model")
        assert passed["gate_verdict"] == "passed" and passed["alias"] == "challenger"
        assert registry.alias_version("challenger") == passed["version"]
        passed_tags = registry.version_tags(passed["version"])
        assert "sharpe" in passed_tags[rule.TAG_WAIVED].split(",")  # the waiver is recorded
        assert passed_tags[rule.TAG_EVALUATION_RUN] == passing.run_id

        # 3. A newer evaluation without any gate; the latest gate anywhere is still "passed".
        unchecked = dg.materialize(
            chain, selection=dg.AssetSelection.assets(model_evaluation).without_checks(),
            resources=resources, instance=instance,
        )  # fmt: skip
        assert unchecked.get_asset_check_evaluations() == []

        # 4. registered_model alone, launched like the UI: judged on evaluation 3's own evidence.
        env = {"RRR_PG_URL_RRR": rrr_db_url, "MLFLOW_TRACKING_URI": mlflow_tracking_uri,
               "RRR_STORAGE_DIR": str(storage)}  # fmt: skip
        out = _launch_registered_model_like_the_ui(home, env, {"min_ic_t_stat": 1e9})
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        [alone] = instance.get_runs(limit=1)
        assert alone.asset_selection == {dg.AssetKey("registered_model")}
        event = instance.get_latest_materialization_event(dg.AssetKey("registered_model"))
        assert event is not None and event.run_id == alone.run_id
        version = event.asset_materialization.metadata["version"].value
    alone_tags = registry.version_tags(version)
    assert alone_tags[rule.TAG_VERDICT] == "failed"
    assert alone_tags[rule.TAG_EVALUATION_RUN] == unchecked.run_id != passing.run_id
    assert registry.alias_version("challenger") == passed["version"]  # untouched
    assert not registry.check_alias(version, "champion").allowed
    _assert_aliases_follow_the_rule(registry)
    _assert_loadable_and_promotable(registry, passed["version"], tmp_path, monkeypatch)


def _assert_candidate_risk(meta: dict, observed: dict) -> None:
    """The gate's risk figures are the candidate's book, relative to its equity."""
    book = meta["risk.portfolio"].value
    equity = meta["risk.portfolio_value"].value
    assert book["equity"] == equity > 0
    assert sum(abs(v) for v in book["positions"].values()) == pytest.approx(
        meta["risk.gross_exposure"].value
    )
    assert observed["var_99_1d"] == pytest.approx(meta["risk.var_99_1d"].value / equity)
    # the gate judges the worst dynamic stress loss (OOS scores, live limits), a fraction
    assert observed["worst_stress_loss"] == pytest.approx(
        meta["risk.worst_dynamic_stress_loss"].value
    )
    assert "Lehman" in meta["dynamic_stress"].value
    assert "Dot-com" in meta["risk.historical"].value and "hs" in meta["risk.var_table"].value


def _assert_loadable_and_promotable(
    registry: ModelRegistry, version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The registered artifact is what the live side loads: pickle-free, verified.
    from rrr_live.models import load_model

    loaded = load_model(registry.download("challenger", tmp_path / "dl"))
    n_features = len(default_spec().names)
    windows = np.zeros((3, max(loaded.window_length, 1), n_features), np.float32)
    features = np.zeros((3, n_features), np.float32)
    assert loaded.predict(features, windows if loaded.needs_windows else None).shape == (3,)

    # Human promotion through the CLI, then rollback refuses (no earlier champion).
    monkeypatch.setenv("RRR_MLFLOW_TRACKING_URI", registry.tracking_uri)
    from rrr_live.config import get_settings
    from rrr_pipelines.cli.main import cli

    get_settings.cache_clear()
    runner = CliRunner()
    out = runner.invoke(cli, ["model", "promote", version, "--reason", "test promotion"])
    assert out.exit_code == 0, out.output
    assert registry.alias_version("champion") == version
    listing = runner.invoke(cli, ["model", "list"])
    assert f"v{version}" in listing.output and "@champion" in listing.output
    back = runner.invoke(cli, ["model", "rollback", "--reason", "nothing before it"])
    assert back.exit_code == 1 and "Traceback" not in back.output
    get_settings.cache_clear()
