"""``model_staleness`` against a real MLflow registry and a real journal."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pytest

from rrr_pipelines.defs.live.assets import model_staleness
from rrr_pipelines.defs.ml.resources import MlflowResource
from rrr_pipelines.lib.model_registry import ModelRegistry
from tests.pipelines.live_feedback.conftest import live_bars, resources
from tests.pipelines.live_feedback.kit import Journal, write_journal


def _champion(uri: str, name: str, trained_before: str, promoted_at: str) -> str:
    """A registered version holding ``champion``, with the tags promotion and training leave."""
    client = ModelRegistry(uri, model_name=name).client
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment(f"exp-{name}"))
    mv = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
        tags={"trained_before": trained_before, "promoted.at": promoted_at},
    )  # fmt: skip
    client.set_registered_model_alias(name, "champion", mv.version)
    return str(mv.version)


def test_model_staleness_reads_the_champion_and_counts_bars_since_training(
    db: str, training_bars: pd.DataFrame, mlflow_tracking_uri: str, request: pytest.FixtureRequest
) -> None:
    name = f"stale-{request.node.name[-20:]}-{id(db) % 10_000}"
    version = _champion(mlflow_tracking_uri, name, "2021-06-01", "2021-07-01T00:00:00+00:00")
    bars = live_bars(training_bars)
    bars = bars[bars["ts"] < sorted(bars["ts"].unique())[40]]  # 40 bar times, 3 symbols
    stamps = write_journal(db, Journal("r1", bars))
    res = {
        **resources(db, model_name=name),
        "mlflow": MlflowResource(tracking_uri=mlflow_tracking_uri),
    }
    before = datetime.now(UTC)
    with dg.instance_for_test() as instance:
        out = dg.materialize([model_staleness], instance=instance, resources=res)
    after = datetime.now(UTC)
    meta = out.asset_materializations_for_node("model_staleness")[0].metadata
    assert meta["version"].value == version
    # the journal's 40 bar times all close after 2021-06-01
    trained = datetime(2021, 6, 1, tzinfo=UTC)
    assert meta["bars_since_training"].value == len(stamps) == 40
    lo, hi = ((t - trained).total_seconds() / 86_400 for t in (before, after))
    assert lo <= meta["data_age_days"].value <= hi
    assert meta["stale"].value is True  # far past the 90-day limit
    promoted = datetime(2021, 7, 1, tzinfo=UTC)
    assert (
        (before - promoted).days <= meta["champion_age_days"].value <= (after - promoted).days + 1
    )
