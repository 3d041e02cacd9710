"""The declarative, versioned feature spec shared by the batch and the incremental executions.

A :class:`FeatureSpec` is an ordered tuple of :class:`FeatureDef` (one output column each) plus
a version string. Its :meth:`FeatureSpec.fingerprint` is a SHA-256 over the canonical JSON of
the spec and :data:`ALGORITHM_REVISION`, so a model trained on one spec can refuse features
computed with another. Every kind, its parameters and its warm-up are documented in
``docs/features.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from rrr_live.features.errors import FeatureSpecError

ParamValue = int | float | str

#: Bumped whenever the maths of any kind changes; part of every fingerprint.
ALGORITHM_REVISION: Final[str] = "1"

_POSITIVE_INT = "positive_int"


@dataclass(frozen=True)
class _Param:
    """Schema of one parameter: a positive int, or a string from a fixed set of choices."""

    kind: str
    default: ParamValue | None = None
    choices: tuple[str, ...] = ()


def _int(default: int | None = None) -> _Param:
    return _Param(_POSITIVE_INT, default)


def _choice(default: str | None, *choices: str) -> _Param:
    return _Param("choice", default, choices)


def _name() -> _Param:
    return _Param("name")


#: Every feature kind and its parameter schema.
KINDS: Final[Mapping[str, Mapping[str, _Param]]] = {
    "log_return": {"window": _int()},
    "momentum": {"long": _int(252), "skip": _int(21)},
    "realized_vol": {
        "window": _int(20),
        "estimator": _choice(None, "close_to_close", "parkinson", "garman_klass"),
    },
    "rsi": {"window": _int(14)},
    "macd": {
        "fast": _int(12),
        "slow": _int(26),
        "signal": _int(9),
        "output": _choice("line", "line", "signal", "hist"),
    },
    "bollinger_z": {"window": _int(20)},
    "volume_z": {"window": _int(20), "transform": _choice("log1p", "log1p", "none")},
    "calendar": {
        "field": _choice(None, "day_of_week", "month", "hour_of_day"),
        "component": _choice(None, "sin", "cos"),
    },
    "cs_rank": {"base": _name(), "min_count": _int(2)},
    "cs_zscore": {"base": _name(), "min_count": _int(2)},
}

CROSS_SECTIONAL_KINDS: Final[frozenset[str]] = frozenset({"cs_rank", "cs_zscore"})


def _check_value(feature: str, key: str, schema: _Param, value: Any) -> ParamValue:
    if schema.kind == _POSITIVE_INT:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FeatureSpecError(f"feature {feature!r}: {key} must be an int >= 1, got {value!r}")
        return value
    if not isinstance(value, str) or not value:
        raise FeatureSpecError(f"feature {feature!r}: {key} must be a non-empty str, got {value!r}")
    if schema.choices and value not in schema.choices:
        raise FeatureSpecError(
            f"feature {feature!r}: {key}={value!r} is not one of {list(schema.choices)}"
        )
    return value


def _normalize(
    name: str, kind: str, params: Mapping[str, Any]
) -> tuple[tuple[str, ParamValue], ...]:
    schema = KINDS.get(kind)
    if schema is None:
        raise FeatureSpecError(f"feature {name!r}: unknown kind {kind!r}; known: {sorted(KINDS)}")
    unknown = set(params) - set(schema)
    if unknown:
        raise FeatureSpecError(f"feature {name!r}: unknown parameter(s) {sorted(unknown)}")
    out: dict[str, ParamValue] = {}
    for key, sch in schema.items():
        value = params.get(key, sch.default)
        if value is None:
            raise FeatureSpecError(f"feature {name!r} ({kind}): parameter {key!r} is required")
        out[key] = _check_value(name, key, sch, value)
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class FeatureDef:
    """One output column: a unique ``name``, a ``kind`` from :data:`KINDS` and its parameters.

    ``params`` may be given as a mapping; it is validated, completed with defaults and stored as
    a sorted tuple of ``(key, value)`` pairs so that the definition is hashable.
    """

    name: str
    kind: str
    params: tuple[tuple[str, ParamValue], ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise FeatureSpecError(f"feature name must be a non-empty str, got {self.name!r}")
        raw = self.params if isinstance(self.params, Mapping) else dict(self.params)
        object.__setattr__(self, "params", _normalize(self.name, self.kind, raw))

    @classmethod
    def of(cls, name: str, kind: str, **params: ParamValue) -> FeatureDef:
        """Build a definition from keyword parameters.

        Example: ``FeatureDef.of("ret_5", "log_return", window=5)``.
        """
        return cls(name, kind, tuple(params.items()))

    @property
    def cross_sectional(self) -> bool:
        """Whether the feature is computed across the symbols of one timestamp."""
        return self.kind in CROSS_SECTIONAL_KINDS

    def param(self, key: str) -> ParamValue:
        """Return one parameter value.

        Raises:
            FeatureSpecError: if the kind has no such parameter.
        """
        for k, v in self.params:
            if k == key:
                return v
        raise FeatureSpecError(f"feature {self.name!r} ({self.kind}) has no parameter {key!r}")

    def int_param(self, key: str) -> int:
        """Return an integer parameter."""
        value = self.param(key)
        if not isinstance(value, int):
            raise FeatureSpecError(f"feature {self.name!r}: parameter {key!r} is not an int")
        return value

    def str_param(self, key: str) -> str:
        """Return a string parameter."""
        value = self.param(key)
        if not isinstance(value, str):
            raise FeatureSpecError(f"feature {self.name!r}: parameter {key!r} is not a str")
        return value

    def warmup_bars(self) -> int:
        """Return how many bars of one symbol are needed before the value is defined (>= 1)."""
        return _warmup(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form ``{"name", "kind", "params"}``."""
        return {"name": self.name, "kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDef:
        """Inverse of :meth:`to_dict`.

        Raises:
            FeatureSpecError: if a key is missing or a value is invalid.
        """
        try:
            return cls(str(data["name"]), str(data["kind"]), tuple(dict(data["params"]).items()))
        except (KeyError, TypeError) as e:
            raise FeatureSpecError(f"malformed feature definition {data!r}: {e}") from e


def _warmup(fdef: FeatureDef) -> int:
    kind = fdef.kind
    if kind == "log_return":
        return fdef.int_param("window") + 1
    if kind == "momentum":
        return fdef.int_param("long") + 1
    if kind == "realized_vol":
        extra = 1 if fdef.str_param("estimator") == "close_to_close" else 0
        return fdef.int_param("window") + extra
    if kind == "rsi":
        return fdef.int_param("window") + 1
    if kind == "macd":
        slow = fdef.int_param("slow")
        return slow if fdef.str_param("output") == "line" else slow + fdef.int_param("signal") - 1
    if kind in ("bollinger_z", "volume_z"):
        return fdef.int_param("window")
    return 1  # calendar; cross-sectional kinds report their base's warm-up via the spec


@dataclass(frozen=True)
class FeatureSpec:
    """An ordered, versioned list of feature definitions; column order is definition order."""

    version: str
    features: tuple[FeatureDef, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        if not self.version:
            raise FeatureSpecError("feature spec version must be a non-empty str")
        if not self.features:
            raise FeatureSpecError("feature spec has no features")
        seen: dict[str, FeatureDef] = {}
        for fdef in self.features:
            if fdef.name in seen:
                raise FeatureSpecError(f"duplicate feature name {fdef.name!r}")
            if fdef.cross_sectional:
                base = seen.get(fdef.str_param("base"))
                if base is None or base.cross_sectional:
                    raise FeatureSpecError(
                        f"feature {fdef.name!r}: base {fdef.param('base')!r} must name an "
                        "earlier, non-cross-sectional feature of the spec"
                    )
            seen[fdef.name] = fdef

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in spec order."""
        return tuple(f.name for f in self.features)

    def index(self, name: str) -> int:
        """Return the column position of a feature name."""
        for i, fdef in enumerate(self.features):
            if fdef.name == name:
                return i
        raise FeatureSpecError(f"no feature named {name!r} in spec {self.version!r}")

    def warmup_bars(self) -> int:
        """Bars of history one symbol needs before every feature of the spec is defined."""
        return max(f.warmup_bars() for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form ``{"version", "algorithm_revision", "features"}``."""
        return {
            "version": self.version,
            "algorithm_revision": ALGORITHM_REVISION,
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            FeatureSpecError: if the dict is malformed or was written by another algorithm
                revision (its features would not mean the same numbers).
        """
        revision = data.get("algorithm_revision", ALGORITHM_REVISION)
        if revision != ALGORITHM_REVISION:
            raise FeatureSpecError(
                f"feature spec written by algorithm revision {revision!r}; "
                f"this engine implements revision {ALGORITHM_REVISION!r}"
            )
        try:
            feats = tuple(FeatureDef.from_dict(f) for f in data["features"])
            return cls(str(data["version"]), feats)
        except (KeyError, TypeError) as e:
            raise FeatureSpecError(f"malformed feature spec: {e}") from e

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise FeatureSpecError(f"feature spec is not valid JSON: {e}") from e
        return cls.from_dict(data)

    def fingerprint(self) -> str:
        """Stable SHA-256 hex digest of the canonical JSON (version and revision included)."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()


def default_spec() -> FeatureSpec:
    """Return the standard RRR feature spec (version ``"v1"``, 22 features)."""
    f = FeatureDef.of
    feats = [
        f("ret_1", "log_return", window=1),
        f("ret_5", "log_return", window=5),
        f("ret_20", "log_return", window=20),
        f("rv_cc_20", "realized_vol", window=20, estimator="close_to_close"),
        f("rv_parkinson_20", "realized_vol", window=20, estimator="parkinson"),
        f("rv_gk_20", "realized_vol", window=20, estimator="garman_klass"),
        f("rsi_14", "rsi", window=14),
        f("macd", "macd", fast=12, slow=26, signal=9, output="line"),
        f("macd_hist", "macd", fast=12, slow=26, signal=9, output="hist"),
        f("bollinger_z_20", "bollinger_z", window=20),
        f("volume_z_20", "volume_z", window=20, transform="log1p"),
        f("mom_252_21", "momentum", long=252, skip=21),
        f("dow_sin", "calendar", field="day_of_week", component="sin"),
        f("dow_cos", "calendar", field="day_of_week", component="cos"),
        f("month_sin", "calendar", field="month", component="sin"),
        f("month_cos", "calendar", field="month", component="cos"),
        f("cs_rank_ret_5", "cs_rank", base="ret_5"),
        f("cs_rank_ret_20", "cs_rank", base="ret_20"),
        f("cs_rank_rv_cc_20", "cs_rank", base="rv_cc_20"),
        f("cs_z_ret_5", "cs_zscore", base="ret_5"),
        f("cs_z_mom_252_21", "cs_zscore", base="mom_252_21"),
        f("cs_z_volume_z_20", "cs_zscore", base="volume_z_20"),
    ]
    return FeatureSpec("v1", tuple(feats))
