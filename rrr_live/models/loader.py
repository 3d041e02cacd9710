"""Load model directories without pickle: safetensors weights + a JSON manifest.

``load_model`` trusts nothing in the directory: it checks every path, refuses pickle-like
payloads, verifies every sha256, rebuilds members only from this repository's registry, loads
weights with ``strict=True`` and reproduces the canary outputs before returning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import safetensors.torch
import torch

from rrr_live.models.architecture_registry import build_network
from rrr_live.models.ensemble import Ensemble, FloatArray, Member, Role
from rrr_live.models.errors import (
    CanaryMismatchError,
    ChecksumMismatchError,
    ManifestError,
    ModelError,
    UnsafePayloadError,
    WeightsMismatchError,
)
from rrr_live.models.manifest import (
    MANIFEST_NAME,
    Manifest,
    sha256_bytes,
)
from rrr_live.models.saver import CANARY_ATOL, canary_outputs

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib", ".npy"})
_SAFE_DTYPES = frozenset({"F16", "BF16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "BOOL"})


@dataclass
class LoadedEnsemble:
    """A verified ensemble loaded from a model directory.

    Attributes:
        ensemble: The rebuilt ensemble (all members, on ``device``).
        manifest: The manifest it was built from.
        directory: Where it was loaded from.
        manifest_sha256: sha256 of ``manifest.json`` (identifies the artifact in logs).
    """

    ensemble: Ensemble
    manifest: Manifest
    directory: Path
    manifest_sha256: str

    @property
    def device(self) -> str:
        """The torch device inference runs on."""
        return self.ensemble.device

    @property
    def live_members(self) -> tuple[str, ...]:
        """Members used by :meth:`predict`."""
        return self.ensemble.live_members

    @property
    def window_length(self) -> int:
        """Window length T the window members expect (0 when none)."""
        return self.ensemble.window

    @property
    def needs_windows(self) -> bool:
        """Whether a live member reads windows (then ``predict`` needs ``windows``)."""
        return any(self.ensemble.member(n).input_kind == "window" for n in self.live_members)

    def predict(
        self, features: npt.ArrayLike | None, windows: npt.ArrayLike | None = None
    ) -> FloatArray:
        """Stacked return forecast of the live members, shape ``(n_symbols,)``.

        Args:
            features: ``(n_symbols, n_features)`` raw features of the decision bar; ``None``
                takes ``windows[:, -1]``.
            windows: ``(n_symbols, T, n_features)`` last T feature vectors, oldest first (e.g.
                :meth:`rrr_live.models.window.RingWindow.windows`); needed with window members.

        Returns:
            Forecast in label units.
        """
        return self.ensemble.predict(features, windows, members=self.live_members)

    def predict_volatility(
        self, features: npt.ArrayLike | None, windows: npt.ArrayLike | None = None
    ) -> FloatArray:
        """Volatility forecast of the volatility member, shape ``(n_symbols,)``.

        Args:
            features: Raw features (or ``None``).
            windows: Raw windows.

        Returns:
            ``exp(predicted log realized vol)``.
        """
        return self.ensemble.predict_volatility(features, windows)


def load_model(
    directory: Path | str,
    *,
    device: str = "cpu",
    live_members: Sequence[str] | None = None,
) -> LoadedEnsemble:
    """Load and verify a model directory written by :func:`save_model`.

    The canary batch is checked on the CPU (where the reference outputs were computed) before
    the networks move to ``device``.

    Args:
        directory: The model directory.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
        live_members: Override of the manifest's live members (e.g. to disable a slow member).

    Returns:
        The verified ensemble.

    Raises:
        ManifestError: Missing or invalid manifest.
        UnsafePayloadError: A pickle-like or non-safetensors file.
        ChecksumMismatchError: A file's sha256 differs from the manifest.
        UnknownArchitectureError: An architecture outside the registry.
        WeightsMismatchError: Tensors that do not fit the rebuilt network.
        CanaryMismatchError: Canary outputs not reproduced.
    """
    root = Path(directory)
    manifest = Manifest.read(root)
    manifest_sha = sha256_bytes((root / MANIFEST_NAME).read_bytes())
    _refuse_pickles(root, manifest)
    tensors = {rel: _read_tensors(root, rel, manifest) for rel in manifest.files}
    ensemble = _rebuild(manifest, tensors)
    _check_canary(ensemble, manifest, tensors)
    if live_members is not None:
        ensemble.live_members = tuple(live_members)
        ensemble.stacking_weights(ensemble.live_members)
        unknown = set(live_members) - {m.name for m in ensemble.members}
        if unknown:
            raise ModelError(f"live_members names unknown members {sorted(unknown)}")
    ensemble.to(resolve_device(device))
    ensemble.build_plans()
    logger.info(
        "loaded model",
        extra={"dir": str(root), "manifest_sha256": manifest_sha, "device": ensemble.device},
    )
    return LoadedEnsemble(ensemble, manifest, root, manifest_sha)


def resolve_device(device: str) -> str:
    """Map ``"auto"`` to ``"cuda"`` when available, else ``"cpu"``; check CUDA requests.

    Args:
        device: Requested device.

    Returns:
        A concrete torch device string.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available")
    return device


def _refuse_pickles(root: Path, manifest: Manifest) -> None:
    for rel in manifest.files:
        if not rel.endswith(".safetensors"):
            raise UnsafePayloadError(
                f"{rel}: only .safetensors files are accepted in a model directory (no pickles)"
            )
    for path in root.rglob("*"):
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafePayloadError(
                f"{path.relative_to(root)}: pickle-capable file in the model directory; refused"
            )


def _read_tensors(root: Path, rel: str, manifest: Manifest) -> dict[str, torch.Tensor]:
    path = root / rel
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ManifestError(f"{rel} points outside the model directory")
    if not resolved.is_file():
        raise ManifestError(f"{rel} is listed in the manifest but missing")
    data = resolved.read_bytes()
    expected = manifest.files[rel]["sha256"]
    actual = sha256_bytes(data)
    if actual != expected:
        raise ChecksumMismatchError(f"{rel}: sha256 {actual} != manifest {expected} (tampered?)")
    _check_safetensors_header(rel, data)
    try:
        return safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise UnsafePayloadError(f"{rel}: not a readable safetensors file: {exc}") from exc


def _check_safetensors_header(rel: str, data: bytes) -> None:
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    header: Any = None
    if 2 <= size <= len(data) - 8 and data[8:9] == b"{":
        try:
            header = json.loads(data[8 : 8 + size])
        except (UnicodeDecodeError, json.JSONDecodeError):
            header = None
    if not isinstance(header, dict):
        pickle_like = data[:2] == b"PK" or (
            data[:1] == b"\x80" and data[1:2] in b"\x02\x03\x04\x05"
        )
        kind = "a pickle / torch.save payload" if pickle_like else "not a safetensors file"
        raise UnsafePayloadError(f"{rel}: {kind} (bad safetensors header); refused")
    for name, info in header.items():
        if name != "__metadata__" and (
            not isinstance(info, dict) or info.get("dtype") not in _SAFE_DTYPES
        ):
            raise UnsafePayloadError(f"{rel}: tensor {name} has unsupported dtype {info}")


def _covered(manifest: Manifest, rel: str) -> str:
    if rel not in manifest.files:
        raise ManifestError(f"{rel} is referenced but has no sha256 in manifest.files")
    return rel


def _rebuild(manifest: Manifest, tensors: Mapping[str, dict[str, torch.Tensor]]) -> Ensemble:
    schema = manifest.input_schema
    n_features, window = len(schema.feature_names), schema.window_length
    members = []
    for entry in manifest.members:
        net = build_network(entry.architecture, entry.hparams, n_features, window)
        if net.input_kind != entry.input_kind:
            raise ManifestError(
                f"member {entry.name}: input_kind {entry.input_kind} "
                f"contradicts architecture {entry.architecture}"
            )
        if entry.role not in ("return", "volatility"):
            raise ManifestError(f"member {entry.name}: unknown role {entry.role!r}")
        try:
            net.load_state_dict(tensors[_covered(manifest, entry.weights_file)], strict=True)
        except RuntimeError as exc:
            raise WeightsMismatchError(f"member {entry.name}: {exc}") from exc
        role: Role = "return" if entry.role == "return" else "volatility"
        members.append(
            Member(
                entry.name,
                entry.architecture,
                entry.hparams,
                net,
                role,
                entry.target_mean,
                entry.target_std,
            )
        )
    norm = tensors[_covered(manifest, manifest.normalizer_file)]
    try:
        return Ensemble(
            tuple(schema.feature_names),
            window,
            norm["feature_mean"].numpy(),
            norm["feature_std"].numpy(),
            tuple(members),
            {k: float(v) for k, v in manifest.stacking.get("weights", {}).items()},
            tuple(manifest.live_members),
            "cpu",
        )
    except (KeyError, ModelError) as exc:
        raise ManifestError(f"inconsistent manifest: {exc}") from exc


def _check_canary(
    ens: Ensemble, manifest: Manifest, tensors: Mapping[str, dict[str, torch.Tensor]]
) -> None:
    rel = _covered(manifest, str(manifest.canary.get("file", "")))
    atol = float(manifest.canary.get("atol", CANARY_ATOL))
    batch = tensors[rel]
    feats = batch["features"].numpy()
    wins = batch["windows"].numpy() if "windows" in batch else None
    actual = canary_outputs(ens, feats, wins)
    expected = manifest.canary.get("outputs", {})
    for name, values in actual["members"].items():
        _compare(f"canary member {name}", values, expected.get("members", {}).get(name), atol)
    for key in ("ensemble", "ensemble_live"):
        _compare(f"canary {key}", actual.get(key), expected.get(key), atol)


def _compare(what: str, actual: Any, expected: Any, atol: float) -> None:
    if expected is None or actual is None:
        if expected is not actual:
            raise CanaryMismatchError(f"{what}: reference outputs missing or unexpected")
        return
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise CanaryMismatchError(f"{what}: shape {a.shape} != reference {e.shape}")
    err = float(np.max(np.abs(a - e))) if a.size else 0.0
    if not err <= atol:
        raise CanaryMismatchError(f"{what}: max abs error {err:.3g} > atol {atol:g}")
