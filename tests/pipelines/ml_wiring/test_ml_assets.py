"""The ML asset chain on real bundled data, a real PostgreSQL and a real MLflow server."""

import itertools
import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rrr_live.features import default_spec
from rrr_pipelines.defs.ml.assets import ensemble_model, features, training_set
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
# valid threshold switches off (IC t >= 0, Sharpe above the best baseline) are waived.
LOOSE = PromotionGateResource(
    min_ic_t_stat=0.0, min_ic_ci_low=-1e9, max_drawdown=1.0, max_latency_p95_ms=1e9,
    max_var_99_1d=1.0, max_worst_stress_loss=1.0, waive=["ic_t_nw", "sharpe"],
)  # fmt: skip


def _gate_evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [gate] = result.get_asset_check_evaluations()
    return gate


@pytest.mark.slow
def test_gate_verdicts_decide_registration_with_baseline_fallback(
    rrr_db_url: str, mlflow_tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRR_STORAGE_DIR", str(tmp_path / "storage"))
    write_bars(rrr_db_url, BundledSource().fetch(*ALL))
    resources = {
        "database": DatabaseResource(url=rrr_db_url),
        "io_manager": ParquetIOManager(root=str(tmp_path / "storage")),
        "mlflow": MlflowResource(tracking_uri=mlflow_tracking_uri),
        "gate": IMPOSSIBLE,
    }
    chain = [
        features,
        training_set,
        ensemble_model,
        model_evaluation,
        promotion_gate,
        registered_model,
    ]
    run_config = {"ops": {"ensemble_model": {"config": {"max_epochs": 1}}}}
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            chain,
            resources=resources,
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
        )
        assert not result.success
        gate = _gate_evaluation(result)
        assert not gate.passed and gate.metadata["verdict"].value == "failed"
        reasons = gate.metadata["reasons"].value
        assert any(r.startswith("ic_t_nw:") and "1e+09" in r for r in reasons)
        assert gate.metadata["thresholds"].value["ic_t_nw"] == 1e9
        assert result.asset_materializations_for_node("registered_model") == []
        [evaluation] = result.asset_materializations_for_node("model_evaluation")
        _assert_candidate_risk(evaluation.metadata, gate.metadata["observed"].value)

        fallback = dg.materialize(
            [*chain, registered_baseline],
            selection=[registered_baseline],
            resources=resources,
            instance=instance,
        )
        meta = fallback.asset_materializations_for_node("registered_baseline")[0].metadata
        assert meta["gate_verdict"].value == "baseline-fallback"

        registry = ModelRegistry(mlflow_tracking_uri)
        version = meta["version"].value
        assert registry.alias_version("challenger") == version
        assert registry.version_tags(version)["gate.verdict"] == "baseline-fallback"
        _assert_loadable_and_promotable(registry, version, tmp_path, monkeypatch)

        passing = dg.materialize(
            chain,
            selection=[model_evaluation, registered_model],
            resources={**resources, "gate": LOOSE},
            instance=instance,
        )
        gate = _gate_evaluation(passing)
        assert gate.passed and gate.metadata["verdict"].value == "passed"
        registered = passing.asset_materializations_for_node("registered_model")[0].metadata
    assert registered["gate_verdict"].value == "passed"
    assert registered["alias"].value == "challenger" and registered["candidate"].value == "ensemble"
    new_version = registered["version"].value
    assert new_version != version and registry.alias_version("challenger") == new_version
    tags = registry.version_tags(new_version)
    assert tags["gate.verdict"] == "passed"
    waived = [f"waived: {r}" for r in gate.metadata["waived"].value]
    assert json.loads(tags["gate.reasons"]) == waived  # the override is recorded with the model
    assert registry.alias_version("champion") == version  # a human promotes, not the gate


def _assert_candidate_risk(meta: dict, observed: dict) -> None:
    """The gate's risk figures are the candidate's book, relative to its equity."""
    book = meta["risk.portfolio"].value
    equity = meta["risk.portfolio_value"].value
    assert book["equity"] == equity > 0
    assert sum(abs(v) for v in book["positions"].values()) == pytest.approx(
        meta["risk.gross_exposure"].value
    )
    assert observed["var_99_1d"] == pytest.approx(meta["risk.var_99_1d"].value / equity)
    assert observed["worst_stress_loss"] == pytest.approx(
        meta["risk.worst_stress_loss"].value / equity
    )
    assert "Dot-com" in meta["risk.historical"].value and "hs" in meta["risk.var_table"].value


def _assert_loadable_and_promotable(
    registry: ModelRegistry, version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The registered artifact is what the live side loads: pickle-free, verified.
    from rrr_live.models import load_model

    loaded = load_model(registry.download("challenger", tmp_path / "dl"))
    assert loaded.predict(np.zeros((3, len(default_spec().names)))).shape == (3,)

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
