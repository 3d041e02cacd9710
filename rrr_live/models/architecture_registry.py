"""Architecture registry: a name in configuration or a manifest -> a class in this repository.

Only classes listed here can be rebuilt by the loader, so a manifest can never make the live
side import or run arbitrary code.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from rrr_live.models.architectures import (
    MLP,
    CausalTCN,
    HARVolatility,
    InputKind,
    LSTMRegressor,
    RegressorNet,
    TransformerRegressor,
)
from rrr_live.models.errors import ArchitectureConfigError, UnknownArchitectureError
from rrr_live.models.linear import LinearRegressor

ARCHITECTURES: Mapping[str, type[RegressorNet]] = {
    "mlp": MLP,
    "lstm": LSTMRegressor,
    "tcn": CausalTCN,
    "transformer": TransformerRegressor,
    "har_vol": HARVolatility,
    "linear": LinearRegressor,
}

_SCHEMA_ARGS = ("n_features", "window")


def architecture_class(name: str) -> type[RegressorNet]:
    """Return the class registered under ``name``.

    Args:
        name: Registry name, e.g. ``"mlp"``.

    Returns:
        The ``RegressorNet`` subclass.

    Raises:
        UnknownArchitectureError: ``name`` is not registered.
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnknownArchitectureError(
            f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}"
        ) from None


def input_kind(name: str) -> InputKind:
    """Return ``"flat"`` or ``"window"`` for the architecture ``name``.

    Args:
        name: Registry name.

    Returns:
        The input kind of the architecture.
    """
    return architecture_class(name).input_kind


def hyperparameter_names(name: str) -> tuple[str, ...]:
    """Return the hyper-parameters ``name`` accepts (schema arguments excluded).

    Args:
        name: Registry name.

    Returns:
        Constructor argument names other than ``n_features`` and ``window``.
    """
    params = inspect.signature(architecture_class(name).__init__).parameters
    return tuple(p for p in params if p != "self" and p not in _SCHEMA_ARGS)


def build_network(
    name: str, hparams: Mapping[str, Any], n_features: int, window: int
) -> RegressorNet:
    """Build a fresh network from its registry name and hyper-parameters.

    Args:
        name: Registry name.
        hparams: Hyper-parameters (JSON-compatible values); unknown keys are an error.
        n_features: Width of the feature vector (from the input schema).
        window: Window length T (from the input schema; ignored by flat networks).

    Returns:
        A freshly initialised network (initialisation follows torch's global RNG).

    Raises:
        UnknownArchitectureError: ``name`` is not registered.
        ArchitectureConfigError: A hyper-parameter is unknown or invalid.
    """
    cls = architecture_class(name)
    allowed = hyperparameter_names(name)
    unknown = sorted(set(hparams) - set(allowed))
    if unknown:
        raise ArchitectureConfigError(
            f"architecture {name!r} does not accept {unknown}; allowed: {list(allowed)}"
        )
    kwargs: dict[str, Any] = dict(hparams)
    kwargs["n_features"] = n_features
    if cls.input_kind == "window":
        kwargs["window"] = window
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ArchitectureConfigError(f"architecture {name!r}: {exc}") from exc
