"""Baselines as linear models over the feature vector, and their packaging for the live side.

Every baseline here is a :class:`LinearBaseline`: ``score = ((x - mean) / std) @ coef + b`` on
the raw feature vector ``x`` of the decision bar. That covers

* **ridge** regression on the features (:func:`fit_ridge`): standardized with the statistics of
  the rows it is fitted on, penalty chosen by validation MSE after fitting on the train segment,
  then refitted on train + validation; the stacking and holdout segments are never touched;
* **time-series momentum** (:func:`rule_baseline`): weight 1 on the spec's matching feature with
  mean 0 and std 1 (the raw feature passes through); ``momentum_20d`` reads the 20-bar log return
  and ``momentum_12_1`` the 252/21 momentum feature. They have the sign of the trading core's
  ``TimeSeriesMomentum`` score (log vs. simple return of the same prices), so a ``sign``-mode
  strategy trades them identically when ``adj_close == close`` (true for the bundled indices);
* **buy-and-hold**: zero weights and a constant positive bias (1.0); it reads no feature.

:func:`save_baseline` writes any of them in the ensemble's pickle-free format
(:func:`rrr_live.models.save_model`: safetensors + JSON manifest) as a one-member ensemble of the
``linear`` architecture (:class:`rrr_live.models.linear.LinearRegressor`), so the live runner
loads a baseline exactly like the ensemble. All parameters are rounded to float32 when a
baseline is built, so the in-memory baseline and the loaded artifact use the same numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.errors import RRRError
from rrr_live.features import FeatureSpec

if TYPE_CHECKING:  # torch is imported only when a baseline is packaged
    from rrr_live.models import Ensemble
    from rrr_live.models.manifest import Manifest

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

LINEAR_ARCHITECTURE = "linear"
RULE_BASELINES: tuple[str, ...] = ("buy_and_hold", "momentum_20d", "momentum_12_1")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# rule baseline -> (feature kind, params that identify the feature in a spec)
_MOMENTUM_FEATURES: dict[str, tuple[str, dict[str, int]]] = {
    "momentum_20d": ("log_return", {"window": 20}),
    "momentum_12_1": ("momentum", {"long": 252, "skip": 21}),
}


class BaselineError(RRRError, ValueError):
    """A baseline cannot be built, fitted or packaged; the message names the problem."""


def _f32(values: npt.ArrayLike) -> F64:
    return np.asarray(np.asarray(values, dtype=np.float32), dtype=np.float64)


@dataclass(frozen=True)
class LinearBaseline:
    """A linear score over the raw feature vector: ``((x - mean) / std) @ coef + intercept``.

    Attributes:
        name: Baseline name (also the member name in a packaged model): letters, digits, ``_.-``.
        feature_names: Input columns, in order.
        coef: ``(F,)`` weights on the standardized features.
        intercept: Constant term.
        feature_mean: ``(F,)`` standardization mean.
        feature_std: ``(F,)`` standardization scale (> 0).
        info: JSON-ready record of how the baseline was made (kind, penalty, rows...).
    """

    name: str
    feature_names: tuple[str, ...]
    coef: F64
    intercept: float
    feature_mean: F64
    feature_std: F64
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise BaselineError(f"baseline name {self.name!r} must match {_NAME.pattern}")
        n = len(self.feature_names)
        object.__setattr__(self, "feature_names", tuple(str(f) for f in self.feature_names))
        for attr in ("coef", "feature_mean", "feature_std"):
            arr = _f32(getattr(self, attr))
            if arr.shape != (n,) or not np.isfinite(arr).all():
                raise BaselineError(f"{self.name}: {attr} must be {n} finite values, got {arr}")
            object.__setattr__(self, attr, arr)
        if not np.all(self.feature_std > 0):
            raise BaselineError(f"{self.name}: feature_std must be > 0")
        intercept = float(np.float32(self.intercept))
        if not math.isfinite(intercept):
            raise BaselineError(f"{self.name}: intercept must be finite, got {self.intercept}")
        object.__setattr__(self, "intercept", intercept)

    def predict(self, features: npt.ArrayLike) -> F64:
        """Score raw feature rows (NaN in a used feature gives NaN).

        Args:
            features: ``(n, F)`` raw features in ``feature_names`` order.

        Returns:
            ``(n,)`` scores (float64).
        """
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise BaselineError(
                f"{self.name}: expected (n, {len(self.feature_names)}) features, got {x.shape}"
            )
        z = (x - self.feature_mean) / self.feature_std
        used = self.coef != 0
        out = z[:, used] @ self.coef[used] + self.intercept
        return np.asarray(out, dtype=np.float64)

    def predict_frame(self, frame: pd.DataFrame) -> pd.Series:
        """Score a feature frame and index the scores by ``(ts, symbol)``.

        Args:
            frame: A frame with the feature columns, indexed by ``(ts, symbol)`` (the layout of
                ``compute_features``) or with ``ts`` and ``symbol`` columns (a training set).

        Returns:
            Scores named after the baseline, indexed by ``(ts, symbol)``.
        """
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise BaselineError(f"{self.name}: frame lacks feature columns {missing}")
        values = self.predict(frame.loc[:, list(self.feature_names)].to_numpy(np.float64))
        if {"ts", "symbol"} <= set(frame.columns):
            index = pd.MultiIndex.from_arrays(
                [pd.DatetimeIndex(frame["ts"]), frame["symbol"].astype(str)],
                names=["ts", "symbol"],
            )
        else:
            index = frame.index
        return pd.Series(values, index=index, name=self.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (coefficients by feature, intercept, fitting record)."""
        return {
            "name": self.name,
            "intercept": self.intercept,
            "coef": {f: float(c) for f, c in zip(self.feature_names, self.coef, strict=True)},
            "info": dict(self.info),
        }


@dataclass(frozen=True)
class RidgeConfig:
    """Ridge penalty grid and selection.

    The objective per fit is ``mean((y - Z b - c)^2) + alpha * |b|^2`` on standardized
    features ``Z``, so ``alpha`` is comparable across data sizes (``alpha = 1`` halves the
    coefficient of an uncorrelated unit-variance feature).

    Attributes:
        alphas: Candidate penalties (> 0); the one with the lowest validation MSE wins, ties
            going to the larger penalty.
    """

    alphas: tuple[float, ...] = tuple(float(10.0**k) for k in np.arange(-4.0, 3.01, 0.5))

    def __post_init__(self) -> None:
        if not self.alphas or any(not (a > 0 and math.isfinite(a)) for a in self.alphas):
            raise BaselineError(f"ridge alphas must be finite and > 0, got {self.alphas}")


def _standardization(x: F64) -> tuple[F64, F64]:
    mean = _f32(x.mean(axis=0))
    std = x.std(axis=0)
    return mean, _f32(np.where(std > 1e-12, std, 1.0))


def _solve_ridge(z: F64, y: F64, alpha: float) -> tuple[F64, float]:
    n = z.shape[0]
    zc = z - z.mean(axis=0)
    y_mean = float(y.mean())
    gram = zc.T @ zc / n + alpha * np.eye(z.shape[1])
    coef = np.linalg.solve(gram, zc.T @ (y - y_mean) / n)
    return coef, y_mean - float(z.mean(axis=0) @ coef)


def fit_ridge(
    features: npt.ArrayLike,
    label: npt.ArrayLike,
    train: npt.ArrayLike,
    validation: npt.ArrayLike,
    feature_names: Sequence[str],
    config: RidgeConfig | None = None,
    name: str = "ridge",
) -> LinearBaseline:
    """Fit the ridge baseline: penalty chosen on validation, refitted on train + validation.

    Only rows in ``train`` or ``validation`` with finite features and label are used; any other
    row (stacking, holdout) cannot influence the result.

    Args:
        features: ``(n, F)`` raw features.
        label: ``(n,)`` forward-return label.
        train: ``(n,)`` boolean mask of the train segment.
        validation: ``(n,)`` boolean mask of the validation segment.
        feature_names: The F column names.
        config: Penalty grid.
        name: Baseline name.

    Returns:
        The fitted baseline; ``info`` records the penalty, the validation curve and row counts.

    Raises:
        BaselineError: on mismatched shapes or overlapping/empty segments.
    """
    cfg = config or RidgeConfig()
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(label, dtype=np.float64)
    tr, va = np.asarray(train, dtype=bool), np.asarray(validation, dtype=bool)
    if x.ndim != 2 or x.shape[1] != len(feature_names) or y.shape != (x.shape[0],):
        raise BaselineError(f"features {x.shape} / label {y.shape} / {len(feature_names)} names")
    if tr.shape != y.shape or va.shape != y.shape or (tr & va).any():
        raise BaselineError("train/validation masks must be disjoint (n,) boolean arrays")
    usable = np.isfinite(x).all(axis=1) & np.isfinite(y)
    tr, va = tr & usable, va & usable
    if tr.sum() <= x.shape[1] or not va.any():
        raise BaselineError(f"ridge needs rows: {tr.sum()} train, {va.sum()} validation usable")
    mean, std = _standardization(x[tr])
    z_tr, z_va = (x[tr] - mean) / std, (x[va] - mean) / std
    curve: dict[str, float] = {}
    best_alpha, best_mse = math.nan, math.inf
    for alpha in sorted(cfg.alphas):
        coef, b = _solve_ridge(z_tr, y[tr], alpha)
        mse = float(np.mean((z_va @ coef + b - y[va]) ** 2))
        curve[f"{alpha:.6g}"] = mse
        if mse <= best_mse:  # ties go to the larger penalty (alphas ascend)
            best_alpha, best_mse = alpha, mse
    fit = tr | va
    mean, std = _standardization(x[fit])
    coef, intercept = _solve_ridge((x[fit] - mean) / std, y[fit], best_alpha)
    info = {
        "kind": "ridge",
        "alpha": best_alpha,
        "validation_mse": best_mse,
        "validation_curve": curve,
        "n_train": int(tr.sum()),
        "n_validation": int(va.sum()),
        "fit_segments": ["train", "validation"],
    }
    return LinearBaseline(name, tuple(feature_names), coef, intercept, mean, std, info)


def fit_ridge_frame(
    training_set: pd.DataFrame,
    feature_names: Sequence[str],
    config: RidgeConfig | None = None,
    name: str = "ridge",
) -> LinearBaseline:
    """:func:`fit_ridge` on a training-set frame (``segment`` and ``label`` columns).

    Args:
        training_set: The frame of ``rrr_pipelines.lib.ml.dataset.build_training_set``.
        feature_names: Feature columns to use.
        config: Penalty grid.
        name: Baseline name.

    Returns:
        The fitted baseline.
    """
    missing = [c for c in (*feature_names, "label", "segment") if c not in training_set.columns]
    if missing:
        raise BaselineError(f"training set lacks columns {missing}")
    segment = training_set["segment"].to_numpy(dtype=str)
    return fit_ridge(
        training_set.loc[:, list(feature_names)].to_numpy(np.float64),
        training_set["label"].to_numpy(np.float64),
        segment == "train",
        segment == "validation",
        feature_names,
        config,
        name,
    )


def _find_feature(spec: FeatureSpec, kind: str, params: Mapping[str, int]) -> str:
    for fdef in spec.features:
        if fdef.kind == kind and all(fdef.param(k) == v for k, v in params.items()):
            return fdef.name
    raise BaselineError(f"feature spec {spec.version!r} has no {kind} feature with {params}")


def rule_baseline(name: str, spec: FeatureSpec, bias: float = 1.0) -> LinearBaseline:
    """The linear form of a rule baseline over ``spec``'s feature vector.

    Args:
        name: ``buy_and_hold``, ``momentum_20d`` or ``momentum_12_1``.
        spec: The feature spec the live side computes.
        bias: Buy-and-hold's constant score (> 0).

    Returns:
        The baseline (standardization mean 0, std 1: raw features pass through).
    """
    n = len(spec.names)
    coef = np.zeros(n)
    if name == "buy_and_hold":
        if not bias > 0:
            raise BaselineError(f"buy-and-hold needs a positive bias, got {bias}")
        info: dict[str, Any] = {"kind": "buy_and_hold", "bias": bias}
        intercept = bias
    elif name in _MOMENTUM_FEATURES:
        kind, params = _MOMENTUM_FEATURES[name]
        feature = _find_feature(spec, kind, params)
        coef[spec.index(feature)] = 1.0
        info, intercept = {"kind": "momentum", "feature": feature}, 0.0
    else:
        raise BaselineError(f"unknown rule baseline {name!r}; known: {list(RULE_BASELINES)}")
    return LinearBaseline(name, spec.names, coef, intercept, np.zeros(n), np.ones(n), info)


def baseline_ensemble(baseline: LinearBaseline) -> Ensemble:
    """Build the one-member :class:`rrr_live.models.Ensemble` that computes ``baseline``.

    Args:
        baseline: The baseline.

    Returns:
        The ensemble (member ``baseline.name``, architecture ``linear``, weight 1).
    """
    import torch

    from rrr_live.models import Ensemble, Member
    from rrr_live.models.linear import LinearRegressor

    net = LinearRegressor(len(baseline.feature_names))
    with torch.no_grad():
        net.linear.weight.copy_(torch.tensor(baseline.coef, dtype=torch.float32)[None, :])
        net.linear.bias.fill_(baseline.intercept)
    member = Member(baseline.name, LINEAR_ARCHITECTURE, {}, net, "return", 0.0, 1.0)
    return Ensemble(
        baseline.feature_names,
        0,
        baseline.feature_mean.astype(np.float32),
        baseline.feature_std.astype(np.float32),
        (member,),
        {baseline.name: 1.0},
    )


def save_baseline(
    directory: Path | str,
    baseline: LinearBaseline,
    *,
    feature_spec: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
    canary_features: npt.ArrayLike | None = None,
) -> Manifest:
    """Write ``baseline`` as a model directory the live side loads with ``load_model``.

    Args:
        directory: Fresh (or empty) target directory.
        baseline: The baseline.
        feature_spec: Feature-spec description stored in the manifest (as for the ensemble:
            ``{**spec.to_dict(), "fingerprint": spec.fingerprint()}``).
        metadata: Extra JSON-compatible metadata; ``baseline`` (its description) is added.
        canary_features: Canary rows ``(n, F)`` (e.g. real holdout features); default random.

    Returns:
        The manifest written.

    Raises:
        BaselineError: the ``linear`` architecture is not registered, so the artifact could not
            be loaded.
    """
    from rrr_live.models import save_model
    from rrr_live.models.architecture_registry import ARCHITECTURES
    from rrr_live.models.linear import LinearRegressor

    if ARCHITECTURES.get(LINEAR_ARCHITECTURE) is not LinearRegressor:
        raise BaselineError(
            "architecture 'linear' is not registered; add "
            '"linear": LinearRegressor to ARCHITECTURES in rrr_live/models/architecture_registry.py'
        )
    meta = {**dict(metadata or {}), "baseline": baseline.to_dict()}
    return save_model(
        directory,
        baseline_ensemble(baseline),
        feature_spec=feature_spec,
        metadata=meta,
        canary_features=canary_features,
    )
