"""Model architectures, the pickle-free artifact format and its loader (no training code)."""

from rrr_live.models.architecture_registry import ARCHITECTURES, build_network
from rrr_live.models.ensemble import Ensemble, Member
from rrr_live.models.errors import (
    CanaryMismatchError,
    ChecksumMismatchError,
    ManifestError,
    ModelError,
    ModelLoadError,
    UnknownArchitectureError,
    UnsafePayloadError,
    WeightsMismatchError,
)
from rrr_live.models.loader import LoadedEnsemble, load_model
from rrr_live.models.saver import save_model
from rrr_live.models.window import RingWindow

__all__ = [
    "ARCHITECTURES",
    "CanaryMismatchError",
    "ChecksumMismatchError",
    "Ensemble",
    "LoadedEnsemble",
    "ManifestError",
    "Member",
    "ModelError",
    "ModelLoadError",
    "RingWindow",
    "UnknownArchitectureError",
    "UnsafePayloadError",
    "WeightsMismatchError",
    "build_network",
    "load_model",
    "save_model",
]
