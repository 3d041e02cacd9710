"""Feature spec: validation, defaults, JSON round trip, stable fingerprint."""

from __future__ import annotations

import hashlib
import json

import pytest

from rrr_live.features import ALGORITHM_REVISION, FeatureDef, FeatureSpec, FeatureSpecError
from rrr_live.features.spec import default_spec


def test_round_trip_and_fingerprint_are_stable() -> None:
    spec = default_spec()
    again = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert FeatureSpec.from_json(spec.to_json()) == spec
    canonical = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    assert spec.fingerprint() == hashlib.sha256(canonical.encode()).hexdigest()
    assert spec.to_dict()["algorithm_revision"] == ALGORITHM_REVISION


def test_fingerprint_changes_with_any_parameter_or_version() -> None:
    spec = default_spec()
    feats = list(spec.features)
    feats[1] = FeatureDef.of("ret_5", "log_return", window=6)
    assert FeatureSpec(spec.version, tuple(feats)).fingerprint() != spec.fingerprint()
    assert FeatureSpec("v2", spec.features).fingerprint() != spec.fingerprint()


def test_defaults_are_filled_and_params_sorted() -> None:
    fdef = FeatureDef.of("m", "macd")
    assert dict(fdef.params) == {"fast": 12, "slow": 26, "signal": 9, "output": "line"}
    assert [k for k, _ in fdef.params] == sorted(k for k, _ in fdef.params)
    assert FeatureDef("m", "macd", {"fast": 12}) == fdef  # type: ignore[arg-type]


def test_warmup_bars() -> None:
    spec = default_spec()
    by_name = {f.name: f.warmup_bars() for f in spec.features}
    assert by_name["ret_20"] == 21
    assert by_name["rv_cc_20"] == 21
    assert by_name["rv_parkinson_20"] == 20
    assert by_name["rsi_14"] == 15
    assert by_name["macd"] == 26
    assert by_name["macd_hist"] == 34
    assert by_name["mom_252_21"] == 253
    assert spec.warmup_bars() == 253
    assert spec.names[0] == "ret_1" and len(spec.names) == 22


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("nope", {}, "unknown kind"),
        ("log_return", {}, "required"),
        ("log_return", {"window": 0}, "int >= 1"),
        ("log_return", {"window": True}, "int >= 1"),
        ("log_return", {"window": 2, "extra": 1}, "unknown parameter"),
        ("realized_vol", {"estimator": "yang_zhang"}, "not one of"),
    ],
)
def test_invalid_definitions_are_rejected(
    kind: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(FeatureSpecError, match=message):
        FeatureDef("x", kind, params)  # type: ignore[arg-type]


def test_invalid_specs_are_rejected() -> None:
    ret = FeatureDef.of("r", "log_return", window=1)
    with pytest.raises(FeatureSpecError, match="duplicate"):
        FeatureSpec("v", (ret, ret))
    with pytest.raises(FeatureSpecError, match="earlier"):
        FeatureSpec("v", (FeatureDef.of("c", "cs_rank", base="r"), ret))
    rank = FeatureDef.of("c", "cs_rank", base="r")
    with pytest.raises(FeatureSpecError, match="non-cross-sectional"):
        FeatureSpec("v", (ret, rank, FeatureDef.of("cc", "cs_zscore", base="c")))
    with pytest.raises(FeatureSpecError, match="no features"):
        FeatureSpec("v", ())
    with pytest.raises(FeatureSpecError, match="revision"):
        FeatureSpec.from_dict({**default_spec().to_dict(), "algorithm_revision": "0"})
    with pytest.raises(FeatureSpecError, match="malformed"):
        FeatureSpec.from_dict({"version": "v"})
    with pytest.raises(FeatureSpecError, match="JSON"):
        FeatureSpec.from_json("{")
