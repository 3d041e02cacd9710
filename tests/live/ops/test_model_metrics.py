"""The model lifecycle's monitoring signals against the real MLflow server: the last registry
answer, the serving version's training age, and the refusal flag the Observer derives."""

from __future__ import annotations

import time

import pytest

from rrr_live.inference.registry_client import RegistryClient
from rrr_live.metrics import Metrics
from rrr_live.service.runner_metrics import RunnerGauges
from rrr_pipelines.lib.model_registry import ModelRegistry
from tests.live.inference.test_lifecycle import CLIENTS, META, _lifecycle, _register

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]


@pytest.fixture
def registry(mlflow_tracking_uri, monkeypatch, request):
    """A registered model of this test on the session's MLflow server."""
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    return ModelRegistry(mlflow_tracking_uri, model_name=f"ops-{request.node.name[:40]}")


def _value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


async def test_lifecycle_exports_registry_answers_training_age_and_refusals(registry, tmp_path):
    trained = _register(
        registry, tmp_path, 1, meta={**META, "train_rows_last_ts": "2026-11-30 00:00:00+00:00"}
    )
    registry.promote(trained, "first", "alice")
    metrics = Metrics()
    life, events = _lifecycle(registry, tmp_path, metrics)
    try:
        await _exports(registry, tmp_path, life, events, metrics)
    finally:
        while CLIENTS:  # the registry clients the lifecycle helper opened
            await CLIENTS.pop().aclose()


async def _exports(registry, tmp_path, life, events, metrics):
    gauges = RunnerGauges(metrics)  # what the assembled runner's Observer feeds

    def observe(e):
        events.append(e)
        gauges.on_event(e)

    life.on_event = observe
    before = time.time()
    await life.poll()
    life.apply_pending()
    assert (
        before
        <= _value(metrics, "rrr_model_registry_last_success_timestamp_seconds")
        <= time.time()
    )
    assert (
        _value(metrics, "rrr_model_trained_until_timestamp_seconds", alias="champion")
        == 1_795_996_800
    )
    # a champion for another universe: refused, flagged until the alias moves back
    refused = _register(registry, tmp_path, 2, meta={**META, "universe": ["XRPUSDT"]})
    registry.promote(refused, "wrong universe", "bob")
    await life.poll()
    assert [e.kind for e in events][-2:] == ["alias_seen", "refused"]
    assert _value(metrics, "rrr_model_refused", alias="champion") == 1
    registry.rollback("back", "carol")
    await life.poll()
    assert _value(metrics, "rrr_model_refused", alias="champion") == 0
    # a registry outage leaves the last answer's time alone
    answered = _value(metrics, "rrr_model_registry_last_success_timestamp_seconds")
    life.client = RegistryClient("http://127.0.0.1:9", attempts=1, backoff_s=0.0)
    CLIENTS.append(life.client)
    await life.poll()
    assert _value(metrics, "rrr_model_registry_last_success_timestamp_seconds") == answered
    assert _value(metrics, "rrr_model_registry_errors_total") >= 1
