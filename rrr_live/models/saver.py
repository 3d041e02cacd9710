"""Write a model directory: safetensors weights, canary batch and the JSON manifest."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import safetensors.torch
import torch

from rrr_live.models.architecture_registry import build_network
from rrr_live.models.ensemble import Ensemble, FloatArray, Member
from rrr_live.models.errors import ModelError
from rrr_live.models.manifest import InputSchema, Manifest, MemberEntry, sha256_bytes

logger = logging.getLogger(__name__)

CANARY_ATOL = 1e-6
CANARY_FILE = "canary.safetensors"
NORMALIZER_FILE = "normalizer.safetensors"


def save_model(
    directory: Path | str,
    ensemble: Ensemble,
    *,
    feature_spec: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
    canary_features: npt.ArrayLike | None = None,
    canary_windows: npt.ArrayLike | None = None,
    n_canary: int = 8,
    seed: int = 0,
) -> Manifest:
    """Write ``ensemble`` to ``directory`` (created; must be empty if it exists).

    Args:
        directory: Target directory.
        ensemble: The ensemble to save.
        feature_spec: Opaque feature-spec description (version, fingerprint...), stored as is.
        metadata: Opaque extra JSON-compatible data (data range, metrics, git commit...).
        canary_features: Canary inputs ``(n, F)``; by default drawn from the standardization
            statistics with ``seed``.
        canary_windows: Canary windows ``(n, T, F)``; required iff ``canary_features`` is given
            and the ensemble has window members.
        n_canary: Rows of the generated canary batch.
        seed: Seed of the generated canary batch.

    Returns:
        The manifest written.
    """
    out = Path(directory)
    if out.exists() and any(out.iterdir()):
        raise ModelError(f"{out} is not empty; save into a fresh directory")
    (out / "members").mkdir(parents=True, exist_ok=True)
    cpu = _cpu_copy(ensemble)
    feats, wins = _canary_inputs(cpu, canary_features, canary_windows, n_canary, seed)
    files: dict[str, dict[str, Any]] = {}

    def put(rel: str, tensors: dict[str, torch.Tensor]) -> None:
        data = safetensors.torch.save(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        )
        (out / rel).write_bytes(data)
        files[rel] = {"sha256": sha256_bytes(data), "bytes": len(data)}

    put(
        NORMALIZER_FILE,
        {
            "feature_mean": torch.from_numpy(cpu.feature_mean),
            "feature_std": torch.from_numpy(cpu.feature_std),
        },
    )
    entries = []
    for m in cpu.members:
        rel = f"members/{m.name}.safetensors"
        put(rel, dict(m.network.state_dict()))
        entries.append(
            MemberEntry(
                m.name,
                m.architecture,
                dict(m.hparams),
                m.role,
                m.input_kind,
                rel,
                float(m.target_mean),
                float(m.target_std),
            )
        )
    canary = {"features": torch.from_numpy(feats)}
    if wins is not None:
        canary["windows"] = torch.from_numpy(wins)
    put(CANARY_FILE, canary)
    with cpu.plain_inference():  # the reference is the networks' own forward pass
        reference = canary_outputs(cpu, feats, wins)
    manifest = Manifest(
        members=entries,
        stacking={
            "method": "convex_least_squares",
            "constraints": "weights >= 0, sum(weights) == 1, no intercept",
            "weights": dict(cpu.weights),
            "live_weights": cpu.stacking_weights(cpu.live_members) if cpu.weights else {},
        },
        live_members=list(cpu.live_members),
        input_schema=InputSchema(list(cpu.feature_names), cpu.window, "float32"),
        output_schema=_output_schema(cpu),
        feature_spec=json.loads(json.dumps(dict(feature_spec))),
        normalizer_file=NORMALIZER_FILE,
        canary={
            "file": CANARY_FILE,
            "atol": CANARY_ATOL,
            "outputs": reference,
        },
        files=files,
        metadata=json.loads(json.dumps(dict(metadata or {}))),
    )
    manifest.write(out)
    logger.info("saved model", extra={"dir": str(out), "members": [m.name for m in cpu.members]})
    return manifest


def _cpu_copy(ensemble: Ensemble) -> Ensemble:
    if ensemble.device == "cpu":
        return ensemble
    members = []
    for m in ensemble.members:
        net = build_network(m.architecture, m.hparams, ensemble.n_features, ensemble.window)
        net.load_state_dict({k: v.cpu() for k, v in m.network.state_dict().items()})
        members.append(
            Member(m.name, m.architecture, m.hparams, net, m.role, m.target_mean, m.target_std)
        )
    return Ensemble(
        ensemble.feature_names,
        ensemble.window,
        ensemble.feature_mean,
        ensemble.feature_std,
        tuple(members),
        dict(ensemble.weights),
        ensemble.live_members,
        "cpu",
    )


def _canary_inputs(
    ens: Ensemble,
    features: npt.ArrayLike | None,
    windows: npt.ArrayLike | None,
    n: int,
    seed: int,
) -> tuple[FloatArray, FloatArray | None]:
    has_window = any(m.input_kind == "window" for m in ens.members)
    if features is None:
        rng = np.random.default_rng(seed)
        t = max(ens.window, 1)
        z = rng.standard_normal((n, t, ens.n_features))
        w = (ens.feature_mean + ens.feature_std * z).astype(np.float32)
        return np.ascontiguousarray(w[:, -1, :]), (w if has_window else None)
    feats = np.ascontiguousarray(features, dtype=np.float32)
    if has_window and windows is None:
        raise ModelError("canary_windows are required for an ensemble with window members")
    wins = np.ascontiguousarray(windows, dtype=np.float32) if has_window else None
    return feats, wins


def canary_outputs(ens: Ensemble, feats: FloatArray, wins: FloatArray | None) -> dict[str, Any]:
    """Reference outputs (members, full and live ensemble) for a canary batch.

    Args:
        ens: The ensemble.
        feats: ``(n, F)`` canary features.
        wins: ``(n, T, F)`` canary windows or ``None``.

    Returns:
        JSON-compatible ``{"members": {...}, "ensemble": [...], "ensemble_live": [...]}``.
    """
    names = [m.name for m in ens.members]
    outs = ens.predict_members(feats, wins, names)
    result: dict[str, Any] = {"members": {n: [float(v) for v in outs[n]] for n in names}}
    if ens.weights:
        result["ensemble"] = [float(v) for v in ens.predict(feats, wins)]
        live = ens.predict(feats, wins, members=ens.live_members)
        result["ensemble_live"] = [float(v) for v in live]
    return result


def _output_schema(ens: Ensemble) -> dict[str, Any]:
    schema: dict[str, Any] = {"return_forecast": {"shape": ["n"], "dtype": "float32"}}
    if ens.volatility_member:
        schema["volatility"] = {
            "member": ens.volatility_member,
            "shape": ["n"],
            "dtype": "float32",
            "units": "log realized vol",
        }
    return schema
