"""Typed failures of the model artifact format and loader."""

from __future__ import annotations

from rrr_live.errors import RRRError


class ModelError(RRRError):
    """Base class of model-side failures (bad architecture config, bad inference input)."""


class ArchitectureConfigError(ModelError):
    """An architecture got hyper-parameters it does not accept or values it cannot use."""


class InferenceInputError(ModelError):
    """Inputs given to ``predict`` have the wrong shape, dtype or contain non-finite values."""


class ModelLoadError(ModelError):
    """A model directory cannot be loaded; the message names the file and what is wrong."""


class ManifestError(ModelLoadError):
    """The manifest is missing, is not valid JSON, or does not follow the manifest schema."""


class ChecksumMismatchError(ModelLoadError):
    """A file's sha256 differs from the one recorded in the manifest (tampered or corrupt)."""


class UnknownArchitectureError(ModelLoadError):
    """The manifest names an architecture that is not in this repository's registry."""


class UnsafePayloadError(ModelLoadError):
    """A file is not plain safetensors/JSON (e.g. a pickle, ``.pt`` or ``.ckpt`` payload)."""


class WeightsMismatchError(ModelLoadError):
    """Stored tensors do not match the parameters of the rebuilt architecture."""


class CanaryMismatchError(ModelLoadError):
    """The rebuilt model does not reproduce the reference outputs of the canary batch."""
