"""The ML asset chain on real bundled data, a real PostgreSQL and a real MLflow server."""

import itertools
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
from rrr_pipelines.defs.ml.resources import MlflowResource
from rrr_pipelines.defs.resources import DatabaseResource, ParquetIOManager
from rrr_pipelines.lib.bars_store import write_bars
from rrr_pipelines.lib.ml.dataset import DatasetConfig, build_training_set, to_training_data
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


@pytest.mark.slow
def test_gate_failure_stops_registration_and_the_baseline_is_registered_instead(
    rrr_db_url: str, mlflow_tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRR_STORAGE_DIR", str(tmp_path / "storage"))
    write_bars(rrr_db_url, BundledSource().fetch(*ALL))
    resources = {
        "database": DatabaseResource(url=rrr_db_url),
        "io_manager": ParquetIOManager(root=str(tmp_path / "storage")),
        "mlflow": MlflowResource(tracking_uri=mlflow_tracking_uri),
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
        # No var_report/stress_report materialized: the gate must fail on missing risk figures.
        result = dg.materialize(
            chain,
            resources=resources,
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
        )
        assert not result.success
        [gate] = result.get_asset_check_evaluations()
        assert not gate.passed
        assert any("risk figures missing" in r for r in gate.metadata["reasons"].value)
        assert result.asset_materializations_for_node("model_evaluation")
        assert result.asset_materializations_for_node("registered_model") == []

        fallback = dg.materialize(
            [*chain, registered_baseline],
            selection=[registered_baseline],
            resources=resources,
            instance=instance,
        )
        meta = fallback.asset_materializations_for_node("registered_baseline")[0].metadata
    assert meta["gate_verdict"].value == "baseline-fallback"

    from rrr_pipelines.lib.registry import ModelRegistry

    registry = ModelRegistry(mlflow_tracking_uri)
    version = meta["version"].value
    assert registry.alias_version("challenger") == version
    assert registry.version_tags(version)["gate.verdict"] == "baseline-fallback"

    # The registered artifact is what the live side loads: pickle-free, verified.
    from rrr_live.models import load_model

    loaded = load_model(registry.download("challenger", tmp_path / "dl"))
    assert loaded.predict(np.zeros((3, len(default_spec().names)))).shape == (3,)

    # Human promotion through the CLI, then rollback refuses (no earlier champion).
    monkeypatch.setenv("RRR_MLFLOW_TRACKING_URI", mlflow_tracking_uri)
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
