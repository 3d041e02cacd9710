"""The JSON manifest of a model directory (pickle-free artifact format).

A model directory holds ``manifest.json`` plus safetensors files only::

    manifest.json               this schema (not hashed: it holds the hashes)
    normalizer.safetensors      feature_mean, feature_std
    members/<name>.safetensors  one state dict per member
    canary.safetensors          canary inputs: features (n, F) and, with window members, windows

The manifest records, per member, the registry architecture name and hyper-parameters; the
stacking weights; the feature spec (opaque, from the feature pipeline); the input/output schema;
the sha256 of every file; and reference outputs of the canary batch, which the loader reproduces
before it hands a model out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from rrr_live.models.errors import ManifestError

FORMAT = "rrr-ensemble"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``.

    Args:
        data: Bytes to hash.

    Returns:
        64 lowercase hex digits.
    """
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class MemberEntry:
    """Manifest entry of one member.

    Attributes:
        name: Member name.
        architecture: Registry name.
        hparams: Hyper-parameters for the registry.
        role: ``"return"`` or ``"volatility"``.
        input_kind: ``"flat"`` or ``"window"`` (informative; the registry is authoritative).
        weights_file: Relative path of the safetensors state dict.
        target_mean: Label de-standardization offset.
        target_std: Label de-standardization scale.
    """

    name: str
    architecture: str
    hparams: dict[str, Any]
    role: str
    input_kind: str
    weights_file: str
    target_mean: float
    target_std: float


@dataclass(frozen=True)
class InputSchema:
    """What the model consumes.

    Attributes:
        feature_names: Column names in order.
        window_length: T of window inputs (0 without window members).
        dtype: Element type of the inputs.
    """

    feature_names: list[str]
    window_length: int
    dtype: str = "float32"


@dataclass(frozen=True)
class Manifest:
    """The whole manifest; see the module docstring for the directory layout.

    Attributes:
        members: One entry per member.
        stacking: ``method``, ``weights`` (all return members), ``live_weights``.
        live_members: Members served live.
        input_schema: Inputs.
        output_schema: Outputs (``return_forecast`` and optional ``volatility``).
        feature_spec: Opaque feature-spec description (version, fingerprint, ...).
        normalizer_file: Relative path of the standardization tensors.
        canary: ``file``, ``atol``, ``outputs`` (``ensemble``, ``ensemble_live``, ``members``).
        files: ``{relative path: {"sha256": hex, "bytes": size}}`` for every file but the manifest.
        metadata: Opaque extra information (data range, metrics, git commit...).
        format: Always ``rrr-ensemble``.
        format_version: Schema version.
    """

    members: list[MemberEntry]
    stacking: dict[str, Any]
    live_members: list[str]
    input_schema: InputSchema
    output_schema: dict[str, Any]
    feature_spec: dict[str, Any]
    normalizer_file: str
    canary: dict[str, Any]
    files: dict[str, dict[str, Any]]
    metadata: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        """Serialize to indented, key-sorted JSON (floats round-trip exactly).

        Returns:
            The JSON text.
        """
        return json.dumps(asdict(self), indent=2, sort_keys=True, allow_nan=False)

    def write(self, directory: Path) -> Path:
        """Write ``manifest.json`` into ``directory``.

        Args:
            directory: The model directory.

        Returns:
            The path written.
        """
        path = directory / MANIFEST_NAME
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse and validate manifest JSON.

        Args:
            text: The JSON text.

        Returns:
            The manifest.

        Raises:
            ManifestError: Invalid JSON or schema.
        """
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
        return _parse(raw)

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """Read ``manifest.json`` from ``directory``.

        Args:
            directory: The model directory.

        Returns:
            The validated manifest.

        Raises:
            ManifestError: Missing, oversized, or invalid manifest.
        """
        path = directory / MANIFEST_NAME
        if not path.is_file():
            raise ManifestError(f"{path} does not exist")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes")
        return cls.from_json(path.read_text(encoding="utf-8"))


def check_relative_path(path: str) -> str:
    """Validate a file path from a manifest: relative, POSIX, no ``..``.

    Args:
        path: The path as written in the manifest.

    Returns:
        ``path`` unchanged.

    Raises:
        ManifestError: Absolute path, backslash or parent reference.
    """
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise ManifestError(f"file path {path!r} must be relative and stay inside the directory")
    return path


def _require(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in raw:
        raise ManifestError(f"manifest: {where} lacks {key!r}")
    value = raw[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ManifestError(f"manifest: {where}.{key} has type {type(value).__name__}")
    return value


def _parse_member(raw: Any, i: int) -> MemberEntry:
    where = f"members[{i}]"
    if not isinstance(raw, dict):
        raise ManifestError(f"manifest: {where} must be an object")
    return MemberEntry(
        name=_require(raw, "name", str, where),
        architecture=_require(raw, "architecture", str, where),
        hparams=_require(raw, "hparams", dict, where),
        role=_require(raw, "role", str, where),
        input_kind=_require(raw, "input_kind", str, where),
        weights_file=check_relative_path(_require(raw, "weights_file", str, where)),
        target_mean=float(_require(raw, "target_mean", (int, float), where)),
        target_std=float(_require(raw, "target_std", (int, float), where)),
    )


def _parse(raw: Any) -> Manifest:
    if not isinstance(raw, dict):
        raise ManifestError("manifest must be a JSON object")
    if raw.get("format") != FORMAT:
        raise ManifestError(f"manifest format is {raw.get('format')!r}, expected {FORMAT!r}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ManifestError(
            f"manifest format_version {raw.get('format_version')!r} is not {FORMAT_VERSION}"
        )
    schema = _require(raw, "input_schema", dict, "manifest")
    files = _require(raw, "files", dict, "manifest")
    for path, entry in files.items():
        check_relative_path(path)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ManifestError(f"manifest: files[{path!r}] needs a sha256 string")
    members = _require(raw, "members", list, "manifest")
    return Manifest(
        members=[_parse_member(m, i) for i, m in enumerate(members)],
        stacking=_require(raw, "stacking", dict, "manifest"),
        live_members=list(_require(raw, "live_members", list, "manifest")),
        input_schema=InputSchema(
            feature_names=list(_require(schema, "feature_names", list, "input_schema")),
            window_length=_require(schema, "window_length", int, "input_schema"),
            dtype=_require(schema, "dtype", str, "input_schema"),
        ),
        output_schema=_require(raw, "output_schema", dict, "manifest"),
        feature_spec=_require(raw, "feature_spec", dict, "manifest"),
        normalizer_file=check_relative_path(_require(raw, "normalizer_file", str, "manifest")),
        canary=_require(raw, "canary", dict, "manifest"),
        files=files,
        metadata=_require(raw, "metadata", dict, "manifest"),
    )
