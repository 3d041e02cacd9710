from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from rrr_live.models import (
    CanaryMismatchError,
    ChecksumMismatchError,
    ManifestError,
    ModelError,
    ModelLoadError,
    UnknownArchitectureError,
    UnsafePayloadError,
    WeightsMismatchError,
    load_model,
    save_model,
)
from rrr_live.models.errors import InferenceInputError
from rrr_live.models.manifest import sha256_bytes
from tests.live.models.conftest import FEATURE_NAMES, N_FEATURES, WINDOW, make_ensemble

SPEC = {"version": "fs-1", "fingerprint": "abc123", "features": list(FEATURE_NAMES)}


def _windows(n: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, WINDOW, N_FEATURES)).astype(np.float32)


def _edit_manifest(d: Path, edit) -> None:
    raw = json.loads((d / "manifest.json").read_text())
    edit(raw)
    (d / "manifest.json").write_text(json.dumps(raw))


def _replace_file(d: Path, rel: str, data: bytes, new_rel: str | None = None) -> None:
    """Swap a listed file for ``data`` and fix its sha256 so only the content check can object."""
    new_rel = new_rel or rel
    (d / rel).unlink()
    (d / new_rel).write_bytes(data)

    def edit(raw):
        raw["files"].pop(rel)
        raw["files"][new_rel] = {"sha256": sha256_bytes(data), "bytes": len(data)}
        for m in raw["members"]:
            if m["weights_file"] == rel:
                m["weights_file"] = new_rel

    _edit_manifest(d, edit)


@pytest.fixture
def saved(tmp_path, ensemble):
    d = tmp_path / "model"
    save_model(d, ensemble, feature_spec=SPEC, metadata={"git_commit": "deadbeef"})
    return d


def test_round_trip_reproduces_every_output(saved, ensemble):
    loaded = load_model(saved)
    canary = safetensors.torch.load_file(str(saved / "canary.safetensors"))
    feats, wins = canary["features"].numpy(), canary["windows"].numpy()
    np.testing.assert_array_equal(loaded.predict(feats, wins), ensemble.predict(feats, wins))
    names = [m.name for m in ensemble.members]
    want = ensemble.predict_members(feats, wins, names)
    got = loaded.ensemble.predict_members(feats, wins, names)
    for n in names:
        np.testing.assert_array_equal(got[n], want[n])
    outputs = loaded.manifest.canary["outputs"]
    np.testing.assert_allclose(loaded.predict(feats, wins), outputs["ensemble"], atol=1e-6)
    # fresh inputs too, not only the canary batch
    w = _windows(5)
    np.testing.assert_array_equal(loaded.predict(w[:, -1], w), ensemble.predict(w[:, -1], w))
    np.testing.assert_array_equal(
        loaded.predict_volatility(None, w), ensemble.predict_volatility(None, w)
    )


def test_manifest_records_schema_spec_and_hashes(saved):
    raw = json.loads((saved / "manifest.json").read_text())
    assert raw["feature_spec"] == SPEC
    assert raw["input_schema"] == {
        "feature_names": list(FEATURE_NAMES),
        "window_length": WINDOW,
        "dtype": "float32",
    }
    assert raw["metadata"] == {"git_commit": "deadbeef"}
    assert {m["architecture"] for m in raw["members"]} == {
        "mlp",
        "lstm",
        "tcn",
        "transformer",
        "har_vol",
    }
    files = {p.relative_to(saved).as_posix() for p in saved.rglob("*.safetensors")}
    assert set(raw["files"]) == files
    for rel, entry in raw["files"].items():
        assert entry["sha256"] == sha256_bytes((saved / rel).read_bytes())
    assert raw["stacking"]["weights"] == {"mlp": 0.4, "lstm": 0.3, "tcn": 0.2, "transformer": 0.1}


def test_tampered_weights_are_refused(saved):
    path = saved / "members" / "mlp.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match=r"members/mlp.safetensors: sha256"):
        load_model(saved)


def test_rewritten_weights_with_fixed_hash_fail_the_canary(saved):
    path = saved / "members" / "lstm.safetensors"
    tensors = safetensors.torch.load_file(str(path))
    tensors["head.bias"] = tensors["head.bias"] + 0.5
    _replace_file(saved, "members/lstm.safetensors", safetensors.torch.save(tensors))
    with pytest.raises(CanaryMismatchError, match="lstm"):
        load_model(saved)


def test_edited_canary_reference_is_refused(saved):
    _edit_manifest(saved, lambda raw: raw["canary"]["outputs"]["ensemble"].__setitem__(0, 1.0))
    with pytest.raises(CanaryMismatchError, match="canary ensemble"):
        load_model(saved)


def test_unknown_architecture_is_refused(saved):
    _edit_manifest(saved, lambda raw: raw["members"][0].__setitem__("architecture", "os_system"))
    with pytest.raises(UnknownArchitectureError, match="os_system"):
        load_model(saved)


def test_hparams_that_do_not_fit_the_weights_are_refused(saved):
    _edit_manifest(saved, lambda raw: raw["members"][0]["hparams"].__setitem__("hidden", 32))
    with pytest.raises(WeightsMismatchError, match="mlp"):
        load_model(saved)


class _Boom:
    """Unpickling this would create a marker file: the loader must never unpickle."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _pickle_bomb(tmp_path: Path) -> tuple[bytes, Path]:
    bomb = _Boom()
    bomb.marker = tmp_path / "unpickled.marker"
    return pickle.dumps({"net.0.weight": bomb}), bomb.marker


def test_pt_file_in_manifest_is_refused(saved, tmp_path):
    data, marker = _pickle_bomb(tmp_path)
    _replace_file(saved, "members/mlp.safetensors", data, "members/mlp.pt")
    with pytest.raises(UnsafePayloadError, match=r"members/mlp.pt: only .safetensors"):
        load_model(saved)
    assert not marker.exists()


def test_pickle_disguised_as_safetensors_is_refused(saved, tmp_path):
    data, marker = _pickle_bomb(tmp_path)
    _replace_file(saved, "members/mlp.safetensors", data)
    with pytest.raises(UnsafePayloadError, match="pickle"):
        load_model(saved)
    assert not marker.exists()


def test_torch_save_zip_is_refused(saved, ensemble, tmp_path):
    buf = tmp_path / "w.pt"
    torch.save(ensemble.member("mlp").network.state_dict(), buf)
    _replace_file(saved, "members/mlp.safetensors", buf.read_bytes())
    with pytest.raises(UnsafePayloadError, match="pickle"):
        load_model(saved)


def test_stray_pickle_file_in_directory_is_refused(saved, tmp_path):
    data, _ = _pickle_bomb(tmp_path)
    (saved / "members" / "extra.pkl").write_bytes(data)
    with pytest.raises(UnsafePayloadError, match=r"extra\.pkl"):
        load_model(saved)


def test_paths_outside_the_directory_are_refused(saved):
    _edit_manifest(saved, lambda raw: raw["files"].__setitem__("../x.safetensors", {"sha256": ""}))
    with pytest.raises(ManifestError, match="inside the directory"):
        load_model(saved)


@pytest.mark.parametrize("text", ["{not json", "[]", '{"format": "other"}'])
def test_invalid_manifest_is_refused(saved, text):
    (saved / "manifest.json").write_text(text)
    with pytest.raises(ManifestError):
        load_model(saved)


def test_missing_manifest_is_refused(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_model(tmp_path)


def test_all_load_errors_share_one_base(saved):
    (saved / "members" / "mlp.safetensors").write_bytes(b"x")
    with pytest.raises(ModelLoadError):
        load_model(saved)


def test_live_members_rescale_the_weights(tmp_path):
    ens = make_ensemble(live=("mlp", "lstm", "vol"))
    save_model(tmp_path / "m", ens, feature_spec=SPEC)
    loaded = load_model(tmp_path / "m")
    assert loaded.live_members == ("mlp", "lstm", "vol")
    assert loaded.manifest.stacking["live_weights"] == pytest.approx(
        {"mlp": 0.4 / 0.7, "lstm": 0.3 / 0.7}
    )
    w = _windows(6)
    outs = loaded.ensemble.predict_members(None, w, ["mlp", "lstm"])
    want = (0.4 * outs["mlp"] + 0.3 * outs["lstm"]) / 0.7
    np.testing.assert_allclose(loaded.predict(None, w), want, rtol=1e-6, atol=1e-9)
    flat_only = load_model(tmp_path / "m", live_members=["mlp"])
    assert not flat_only.needs_windows
    np.testing.assert_array_equal(flat_only.predict(w[:, -1]), outs["mlp"])


def test_predict_rejects_bad_inputs(saved):
    loaded = load_model(saved)
    w = _windows(3)
    with pytest.raises(InferenceInputError, match="need windows"):
        loaded.predict(w[:, -1], None)
    with pytest.raises(InferenceInputError, match="expected shape"):
        loaded.predict(w[:, -1, :3], w)
    w[1, 2, 0] = np.nan
    with pytest.raises(InferenceInputError, match="NaN"):
        loaded.predict(None, w)


def test_save_refuses_a_non_empty_directory(tmp_path, ensemble):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(ModelError, match="not empty"):
        save_model(tmp_path, ensemble, feature_spec=SPEC)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error path")
def test_cuda_request_without_cuda_is_a_clear_error(saved):
    with pytest.raises(ModelError, match="CUDA is not available"):
        load_model(saved, device="cuda")
    assert load_model(saved, device="auto").device == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_outputs_match_cpu(saved):
    cpu, gpu = load_model(saved), load_model(saved, device="cuda")
    assert gpu.device == "cuda"
    w = _windows(64)
    np.testing.assert_allclose(gpu.predict(None, w), cpu.predict(None, w), atol=1e-5)


def test_loader_side_imports_no_training_stack():
    code = (
        "import sys, rrr_live.models; "
        "bad = [m for m in ('lightning', 'mlflow', 'dagster', 'rrr_pipelines') "
        "if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
