"""Model lifecycle against the real MLflow server: hot swap, refusals, rollback, outage."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import torch

from rrr_live.inference.lifecycle import LifecycleEvent, ModelLifecycle, RunningConfig
from rrr_live.inference.registry_client import RegistryClient
from rrr_live.inference.worker import InferenceWorker
from rrr_live.metrics import Metrics
from rrr_live.models import save_model
from rrr_live.models import verdict as rule
from rrr_live.models.manifest import sha256_bytes
from rrr_pipelines.lib.model_registry import ModelRegistry
from tests.live.models.conftest import FEATURE_NAMES, N_FEATURES, WINDOW, make_ensemble

pytestmark = pytest.mark.pg

SPEC = {"version": "fs-1", "fingerprint": "fp-live"}
META = {"universe": ["BTCUSDT", "ETHUSDT"], "bar_interval": "1m"}
CONFIG = RunningConfig("fp-live", FEATURE_NAMES, ("ETHUSDT", "BTCUSDT"), "1m")
PASSING = [
    rule.Criterion("sharpe", 1.1, 0.0),
    rule.Criterion("max_drawdown", 0.1, 0.25),
    rule.Criterion("var_99_1d", 0.03, 0.05),
    rule.Criterion("worst_stress_loss", 0.3, 0.5),
]
FAILING = [rule.Criterion("sharpe", -0.2, 0.0), *PASSING[1:]]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def registry(mlflow_tracking_uri, monkeypatch, request):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    return ModelRegistry(mlflow_tracking_uri, model_name=f"live-{request.node.name[:40]}")


def _windows(n: int = 6) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(n, WINDOW, N_FEATURES)).astype(np.float32)


def _edit_manifest(d: Path, edit) -> None:
    raw = json.loads((d / "manifest.json").read_text())
    edit(raw)
    (d / "manifest.json").write_text(json.dumps(raw))


def _register(registry, tmp_path, seed, *, passed=True, spec=SPEC, meta=META, tamper=None):
    d = tmp_path / f"model-{seed}-{len(list(tmp_path.iterdir()))}"
    save_model(d, make_ensemble(seed=seed), feature_spec=spec, metadata=meta)
    if tamper is not None:
        tamper(d)
    run_id = registry.log_training_run({"seed": seed}, {}, spec, {}, "abc", d)
    tags = rule.verdict_tags(
        f"c{seed}", rule.BASELINE_SET, f"e{seed}", PASSING if passed else FAILING
    )
    return registry.register(run_id, tags).version


def _force_alias(registry, version, alias="champion"):
    """Move an alias as someone bypassing the rule would (MLflow UI / raw client)."""
    registry.client.set_registered_model_alias(registry.model_name, alias, version)


CLIENTS: list[RegistryClient] = []


@pytest_asyncio.fixture(autouse=True)
async def _close_clients():
    yield
    while CLIENTS:
        await CLIENTS.pop().aclose()


def _lifecycle(registry, tmp_path, metrics):
    events: list[LifecycleEvent] = []
    client = RegistryClient(registry.tracking_uri, attempts=2, backoff_s=0.0)
    CLIENTS.append(client)
    life = ModelLifecycle(
        client, CONFIG, tmp_path / "cache", metrics, model_name=registry.model_name,
        on_event=events.append,
    )  # fmt: skip
    return life, events


def _predict(life, alias="champion"):
    return life.serving(alias).model.predict(None, _windows())


@pytest.mark.asyncio
async def test_hot_swap_within_one_poll_shadow_and_bit_identical_rollback(registry, tmp_path):
    v1 = _register(registry, tmp_path, 1)
    v2 = _register(registry, tmp_path, 2)
    v3 = _register(registry, tmp_path, 3, passed=False)
    registry.promote(v1, "first", "alice")
    registry.set_alias(v3, "shadow")  # a failed version may be scored, never traded
    metrics = Metrics()
    life, events = _lifecycle(registry, tmp_path, metrics)
    await life.poll()
    assert life.serving() is None  # staged, installed only between batches
    life.apply_pending()
    assert life.serving().version == v1 and life.serving("shadow").version == v3
    before = _predict(life)
    np.testing.assert_array_equal(before, make_ensemble(seed=1).predict(None, _windows()))

    registry.promote(v2, "better", "bob")
    await life.poll()
    assert life.serving().version == v1  # the batch in flight keeps its model
    worker = InferenceWorker(life, max_staleness_ns=60)
    try:
        w = _windows()
        scores = await worker.score(1_000, 990, w[:, -1], w)  # the next batch swaps first
        stale = await worker.score(2_000, 1_000, w[:, -1], w)
    finally:
        worker.close()
    assert [(e.alias, e.version) for e in scores.swaps] == [("champion", v2)]
    assert (scores.champion_version, scores.shadow_version) == (v2, v3)
    np.testing.assert_array_equal(scores.forecast, make_ensemble(seed=2).predict(None, w))
    np.testing.assert_array_equal(scores.shadow_forecast, make_ensemble(seed=3).predict(None, w))
    assert stale.forecast is None and stale.skipped == "stale features"  # data time, not wall
    assert not np.array_equal(_predict(life), before)

    registry.rollback("live drawdown", "carol")
    await life.poll()
    life.apply_pending()
    assert life.serving().version == v1
    np.testing.assert_array_equal(_predict(life), before)  # bit-identical
    seen = [e.version for e in events if e.alias == "champion" and e.kind == "alias_seen"]
    assert seen == [v1, v2, v1]
    assert metrics.model_swaps.labels(alias="champion")._value.get() == 3
    assert metrics.model_serving_version.labels(alias="champion")._value.get() == float(v1)


def _tamper_sha(d: Path) -> None:
    p = d / "members" / "mlp.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0x01
    p.write_bytes(bytes(data))


def _tamper_canary(d: Path) -> None:
    def edit(raw):
        out = raw["canary"]["outputs"]["ensemble"]
        out[0] = out[0] + 1.0

    _edit_manifest(d, edit)


def _tamper_architecture(d: Path) -> None:
    _edit_manifest(d, lambda raw: raw["members"][0].__setitem__("architecture", "nope"))


class _Boom:
    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _tamper_pickle(marker: Path):
    def tamper(d: Path) -> None:
        bomb = _Boom()
        bomb.marker = marker
        data = pickle.dumps({"net.0.weight": bomb})
        (d / "members" / "mlp.safetensors").write_bytes(data)

        def edit(raw):
            raw["files"]["members/mlp.safetensors"] = {"sha256": sha256_bytes(data), "bytes": 1}

        _edit_manifest(d, edit)

    return tamper


@pytest.mark.asyncio
async def test_every_refusal_keeps_the_old_model_serving(registry, tmp_path):
    marker = tmp_path / "unpickled.marker"
    v1 = _register(registry, tmp_path, 1)
    registry.promote(v1, "first", "alice")
    metrics = Metrics()
    life, events = _lifecycle(registry, tmp_path, metrics)
    await life.poll(["champion"])
    life.apply_pending()
    before = _predict(life)
    cases = {
        "verdict": dict(passed=False),
        "feature_spec": dict(spec={"version": "fs-2", "fingerprint": "other"}),
        "universe": dict(meta={**META, "universe": ["SOLUSDT"]}),
        "bar_interval": dict(meta={**META, "bar_interval": "1s"}),
        "sha256": dict(tamper=_tamper_sha),
        "canary": dict(tamper=_tamper_canary),
        "architecture": dict(tamper=_tamper_architecture),
        "pickle": dict(tamper=_tamper_pickle(marker)),
    }
    for reason, kwargs in cases.items():
        bad = _register(registry, tmp_path, 5, **kwargs)
        _force_alias(registry, bad)
        await life.poll(["champion"])
        assert life.apply_pending() == [], reason
        assert life.serving().version == v1, reason
        np.testing.assert_array_equal(_predict(life), before)
        assert metrics.model_refusals.labels(alias="champion", reason=reason)._value.get() == 1
        refused = [e for e in events if e.kind == "refused"]
        assert refused[-1].version == bad, reason
    assert not marker.exists()  # the pickle was never unpickled
    cached = [p.name for p in (tmp_path / "cache").iterdir()]
    assert len(cached) == 1 and cached[0].startswith(f"v{v1}-")  # refused downloads removed

    # a refused override: the same failed version with a recorded gate override may trade
    overridden = _register(registry, tmp_path, 6, passed=False)
    registry.promote(overridden, "demo", "dave", override_gate=True)
    await life.poll(["champion"])
    life.apply_pending()
    assert life.serving().version == overridden


@pytest.mark.asyncio
async def test_registry_outage_keeps_the_current_model(registry, tmp_path, unused_tcp_port):
    v1 = _register(registry, tmp_path, 1)
    registry.promote(v1, "first", "alice")
    metrics = Metrics()
    life, events = _lifecycle(registry, tmp_path, metrics)
    await life.poll(["champion"])
    life.apply_pending()
    life.client = RegistryClient(f"http://127.0.0.1:{unused_tcp_port}", attempts=2, backoff_s=0)
    CLIENTS.append(life.client)
    await life.poll(["champion"])
    assert life.apply_pending() == [] and life.serving().version == v1
    assert metrics.model_registry_errors._value.get() == 1
    assert events[-1].kind == "registry_error" and "ConnectError" in events[-1].detail
