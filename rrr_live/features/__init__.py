"""One feature definition, two executions: batch (pandas) and incremental (numpy, live hot path).

The batch form (``compute_features``) and the replay helpers import pandas lazily, so importing
this package for the live engine costs numpy only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rrr_live.features.engine import BarLike, FeatureBar, FeatureEngine
from rrr_live.features.errors import FeatureInputError, FeatureSpecError
from rrr_live.features.spec import (
    ALGORITHM_REVISION,
    KINDS,
    FeatureDef,
    FeatureSpec,
    default_spec,
)

if TYPE_CHECKING:
    from rrr_live.features.batch import compute_features
    from rrr_live.features.replay import iter_decisions, replay_features

__all__ = [
    "ALGORITHM_REVISION",
    "KINDS",
    "BarLike",
    "FeatureBar",
    "FeatureDef",
    "FeatureEngine",
    "FeatureInputError",
    "FeatureSpec",
    "FeatureSpecError",
    "compute_features",
    "default_spec",
    "iter_decisions",
    "replay_features",
]

_LAZY = {
    "compute_features": "rrr_live.features.batch",
    "iter_decisions": "rrr_live.features.replay",
    "replay_features": "rrr_live.features.replay",
}


def __getattr__(name: str) -> Any:
    """Import the pandas-based entry points on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rrr_live.features' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
