"""Configuration of ensemble training: members come from config, never from copied classes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from rrr_live.errors import ConfigError
from rrr_live.models.architecture_registry import architecture_class, hyperparameter_names

Role = Literal["return", "volatility"]


@dataclass(frozen=True)
class MemberConfig:
    """One ensemble member.

    Attributes:
        name: Unique member name.
        architecture: Registry name (``mlp``, ``lstm``, ``tcn``, ``transformer``, ``har_vol``).
        hparams: Architecture hyper-parameters.
        role: ``return`` (stacked forecast) or ``volatility`` (log realized vol for sizing).
        loss: ``mse`` or ``huber``.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        huber_delta: Huber transition (standardized label units).
        batch_size: Training batch size.
        max_epochs: Epoch cap (early stopping usually ends sooner).
        patience: Early-stopping patience in epochs on the validation loss.
    """

    name: str
    architecture: str
    hparams: dict[str, Any] = field(default_factory=dict)
    role: Role = "return"
    loss: Literal["mse", "huber"] = "mse"
    lr: float = 1e-3
    weight_decay: float = 0.0
    huber_delta: float = 1.0
    batch_size: int = 256
    max_epochs: int = 30
    patience: int = 4

    def __post_init__(self) -> None:
        architecture_class(self.architecture)
        unknown = set(self.hparams) - set(hyperparameter_names(self.architecture))
        if unknown:
            raise ConfigError(f"member {self.name}: {self.architecture} has no {sorted(unknown)}")
        if self.role not in ("return", "volatility"):
            raise ConfigError(f"member {self.name}: role must be return/volatility")
        if self.loss not in ("mse", "huber"):
            raise ConfigError(f"member {self.name}: loss must be mse/huber")
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1 or self.lr <= 0:
            raise ConfigError(f"member {self.name}: batch_size/max_epochs/patience/lr must be > 0")


@dataclass(frozen=True)
class EnsembleConfig:
    """The whole ensemble.

    Attributes:
        members: Member configurations.
        window: Window length T of window members.
        seed: Global seed (every member is trained from this seed).
        live_members: Members served live (default: all); the rest are batch-only.
        accelerator: ``auto`` (CUDA when present, else CPU), ``cpu`` or ``gpu``.
        num_threads: ``torch.set_num_threads`` during training (0 leaves it alone).
        return_feature: Feature holding the one-bar return (HAR input, vol label).
        vol_horizon: Bars ahead in the realized-volatility label.
        stacking_ridge: Relative ridge of the stacking fit.
    """

    members: tuple[MemberConfig, ...]
    window: int = 24
    seed: int = 42
    live_members: tuple[str, ...] = ()
    accelerator: str = "auto"
    num_threads: int = 2
    return_feature: str | None = None
    vol_horizon: int = 5
    stacking_ridge: float = 1e-3

    def __post_init__(self) -> None:
        names = [m.name for m in self.members]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"member names must be unique and non-empty: {names}")
        if not any(m.role == "return" for m in self.members):
            raise ConfigError("the ensemble needs at least one return member")
        if sum(m.role == "volatility" for m in self.members) > 1:
            raise ConfigError("at most one volatility member")
        if set(self.live_members) - set(names):
            raise ConfigError(f"live_members {self.live_members} not all in {names}")
        if (
            self.window < 1
            or self.vol_horizon < 1
            or self.accelerator not in ("auto", "cpu", "gpu")
        ):
            raise ConfigError("window/vol_horizon must be >= 1, accelerator auto/cpu/gpu")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EnsembleConfig:
        """Build from a plain dict (YAML/JSON/Dagster config); unknown keys are an error.

        Args:
            raw: ``{"members": [{"name": ..., "architecture": ..., "hparams": {...}}, ...], ...}``.

        Returns:
            The validated configuration.
        """
        known = {f.name for f in fields(cls)}
        member_known = {f.name for f in fields(MemberConfig)}
        if set(raw) - known:
            raise ConfigError(f"unknown ensemble config keys {sorted(set(raw) - known)}")
        members = []
        for m in raw.get("members", ()):
            if set(m) - member_known:
                raise ConfigError(f"unknown member config keys {sorted(set(m) - member_known)}")
            members.append(MemberConfig(**{**m, "hparams": dict(m.get("hparams", {}))}))
        rest = {k: v for k, v in raw.items() if k != "members"}
        if "live_members" in rest:
            rest["live_members"] = tuple(rest["live_members"])
        return cls(members=tuple(members), **rest)

    def resolved_members(self, feature_names: Sequence[str]) -> tuple[MemberConfig, ...]:
        """Members with ``har_vol.return_index`` filled in from ``return_feature``.

        Args:
            feature_names: Columns of the training matrix.

        Returns:
            Member configurations ready for :func:`rrr_live.models.build_network`.
        """
        out = []
        for m in self.members:
            if m.architecture == "har_vol" and "return_index" not in m.hparams:
                if self.return_feature is None or self.return_feature not in feature_names:
                    raise ConfigError(
                        f"member {m.name} needs return_feature ({self.return_feature!r}) "
                        "among the features, or hparams.return_index"
                    )
                hp = {**m.hparams, "return_index": list(feature_names).index(self.return_feature)}
                m = replace(m, hparams=hp)
            out.append(m)
        return tuple(out)

    def to_params(self) -> dict[str, Any]:
        """Flat ``{key: str|int|float}`` view for MLflow params.

        Returns:
            ``members.<name>.<key>`` entries plus the top-level settings.
        """
        params: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key == "members":
                continue
            params[key] = ",".join(value) if isinstance(value, tuple) else value
        for m in self.members:
            for key, value in asdict(m).items():
                if key != "name":
                    params[f"members.{m.name}.{key}"] = (
                        json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
                    )
        return params


def default_config(**overrides: Any) -> EnsembleConfig:
    """The demo ensemble: MLP, LSTM, transformer (return) and HAR (volatility).

    Sized for the bundled daily data on 2 CPU cores (a few minutes at most).

    Args:
        **overrides: ``EnsembleConfig`` fields to replace.

    Returns:
        The configuration.
    """
    members = (
        MemberConfig("mlp", "mlp", {"hidden": 64, "layers": 2, "dropout": 0.1}, weight_decay=1e-4),
        MemberConfig("lstm", "lstm", {"hidden": 32}),
        MemberConfig(
            "transformer",
            "transformer",
            {"d_model": 32, "heads": 4, "layers": 1, "ff": 64, "dropout": 0.1},
        ),
        MemberConfig("vol", "har_vol", {"lags": [1, 5, 20]}, role="volatility", lr=1e-2),
    )
    base: dict[str, Any] = {"members": members, "window": 24, "return_feature": "ret_1"}
    base.update(overrides)
    return EnsembleConfig(**base)
