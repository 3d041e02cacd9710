"""The in-memory ensemble: networks, input standardization, stacking weights, inference.

Both the training pipeline (which builds an :class:`Ensemble`) and the loader (which rebuilds one
from a model directory) use this class, so batch evaluation, the backtest and the live batcher
run the same inference code.

Stacking: the return forecast is ``sum_i w_i * member_i`` over the return members, with
``w_i >= 0`` and ``sum_i w_i == 1`` (a convex combination, no intercept). Members left out of
``live_members`` are skipped live and the remaining weights are rescaled to sum to one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from rrr_live.models.architectures import InputKind, RegressorNet
from rrr_live.models.errors import InferenceInputError, ModelError
from rrr_live.models.fastpath import PlanCache

Role = Literal["return", "volatility"]
FloatArray = npt.NDArray[np.float32]


@dataclass
class Member:
    """One trained network of the ensemble.

    Attributes:
        name: Unique member name (e.g. ``"lstm"``).
        architecture: Registry name of the network class.
        hparams: Hyper-parameters the network was built with (JSON-compatible).
        network: The network itself.
        role: ``"return"`` (stacked forecast) or ``"volatility"`` (log realized vol, for sizing).
        target_mean: The network predicts ``(label - target_mean) / target_std``.
        target_std: See ``target_mean``.
    """

    name: str
    architecture: str
    hparams: dict[str, Any]
    network: RegressorNet
    role: Role = "return"
    target_mean: float = 0.0
    target_std: float = 1.0

    @property
    def input_kind(self) -> InputKind:
        """``"flat"`` or ``"window"``."""
        return self.network.input_kind


@dataclass
class Ensemble:
    """Members plus everything needed to turn raw feature values into a forecast.

    Attributes:
        feature_names: Names of the input columns, in order.
        window: Window length T of window members (0 when there are none).
        feature_mean: Per-feature mean used for standardization, shape ``(n_features,)``.
        feature_std: Per-feature scale used for standardization, shape ``(n_features,)``.
        members: The members.
        weights: Stacking weights of the return members (``>= 0``, summing to 1).
        live_members: Members used live (by default every member).
        device: Torch device the networks live on.
        fast_inference: Serve members through their exact inference fast paths
            (:mod:`rrr_live.models.fastpath`); ``False`` runs ``network(x)`` itself.
    """

    feature_names: tuple[str, ...]
    window: int
    feature_mean: FloatArray
    feature_std: FloatArray
    members: tuple[Member, ...]
    weights: dict[str, float]
    live_members: tuple[str, ...] = ()
    device: str = "cpu"
    fast_inference: bool = True
    _mean: Tensor = field(init=False, repr=False)
    _std: Tensor = field(init=False, repr=False)
    _mean_tiled: Tensor = field(init=False, repr=False)
    _std_tiled: Tensor = field(init=False, repr=False)
    _plans: PlanCache = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.feature_names = tuple(self.feature_names)
        self.feature_mean = np.ascontiguousarray(self.feature_mean, dtype=np.float32)
        self.feature_std = np.ascontiguousarray(self.feature_std, dtype=np.float32)
        if not self.live_members:
            self.live_members = tuple(m.name for m in self.members)
        self._plans = PlanCache()
        self._validate()
        self.to(self.device)
        for member in self.members:
            member.network.eval()

    def _validate(self) -> None:
        n = len(self.feature_names)
        if self.feature_mean.shape != (n,) or self.feature_std.shape != (n,):
            raise ModelError(f"feature_mean/feature_std must have shape ({n},)")
        if not (np.all(np.isfinite(self.feature_std)) and np.all(self.feature_std > 0)):
            raise ModelError("feature_std must be finite and > 0")
        self._validate_members()

    def _validate_members(self) -> None:
        names = [m.name for m in self.members]
        if len(set(names)) != len(names) or not names:
            raise ModelError(f"member names must be unique and non-empty, got {names}")
        if any(m.input_kind == "window" for m in self.members) and self.window < 1:
            raise ModelError("window members need window >= 1")
        returns = {m.name for m in self.members if m.role == "return"}
        if set(self.weights) != returns:
            raise ModelError(f"weights {sorted(self.weights)} must cover return members {returns}")
        if any(w < 0 or not math.isfinite(w) for w in self.weights.values()):
            raise ModelError(f"stacking weights must be finite and >= 0: {self.weights}")
        if not math.isclose(sum(self.weights.values()), 1.0, abs_tol=1e-6):
            raise ModelError(f"stacking weights must sum to 1: {self.weights}")
        if len([m for m in self.members if m.role == "volatility"]) > 1:
            raise ModelError("at most one volatility member is allowed")
        unknown = set(self.live_members) - set(names)
        if unknown:
            raise ModelError(f"live_members names unknown members {sorted(unknown)}")
        if returns and sum(self.weights[n] for n in self.live_members if n in returns) <= 0:
            raise ModelError("live members carry zero stacking weight; enable a weighted member")

    def to(self, device: str) -> Ensemble:
        """Move every network and the standardization constants to ``device``.

        Args:
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...

        Returns:
            ``self``.
        """
        self.device = device
        for member in self.members:
            member.network.to(device)
        self._mean = torch.from_numpy(self.feature_mean).to(device)
        self._std = torch.from_numpy(self.feature_std).to(device)
        self._mean_tiled = self._mean.repeat(max(self.window, 1))
        self._std_tiled = self._std.repeat(max(self.window, 1))
        self._plans.clear()  # plans hold device tensors (they would also notice the move)
        return self

    def build_plans(self) -> None:
        """Build every member's inference plan now (otherwise the first predict call does).

        Plans take about a millisecond; :func:`rrr_live.models.load_model` builds them so the
        first live call after a model promotion is not slower than the next ones.
        """
        if self.fast_inference:
            for member in self.members:
                self._plans.get(member.network)

    @contextmanager
    def plain_inference(self) -> Iterator[Ensemble]:
        """Run ``network(x)`` itself (no fast paths) inside the ``with`` block.

        The saver computes the canary reference outputs this way, so every load checks the fast
        paths against the trained networks' own forward passes.

        Yields:
            ``self``.
        """
        before = self.fast_inference
        self.fast_inference = False
        try:
            yield self
        finally:
            self.fast_inference = before

    @property
    def n_features(self) -> int:
        """Width of the feature vector."""
        return len(self.feature_names)

    def member(self, name: str) -> Member:
        """Return the member called ``name``.

        Args:
            name: Member name.

        Returns:
            The member.
        """
        for m in self.members:
            if m.name == name:
                return m
        raise ModelError(f"no member named {name!r}; members: {[m.name for m in self.members]}")

    @property
    def volatility_member(self) -> str | None:
        """Name of the volatility member, if any."""
        return next((m.name for m in self.members if m.role == "volatility"), None)

    def stacking_weights(self, names: Sequence[str] | None = None) -> dict[str, float]:
        """Weights restricted to the return members in ``names``, rescaled to sum to one.

        Args:
            names: Member names to keep (default: all members).

        Returns:
            ``{member: weight}``.
        """
        keep = [n for n in (names if names is not None else self.weights) if n in self.weights]
        total = sum(self.weights[n] for n in keep)
        if total <= 0:
            raise ModelError(f"members {keep} carry zero stacking weight")
        return {n: self.weights[n] / total for n in keep}

    def predict_members(
        self,
        features: npt.ArrayLike | None,
        windows: npt.ArrayLike | None,
        names: Sequence[str],
        *,
        check_finite: bool = True,
    ) -> dict[str, FloatArray]:
        """Run the named members on raw (unstandardized) inputs.

        Args:
            features: ``(n, n_features)`` feature vectors of the decision bar; when ``None`` the
                last row of each window is used.
            windows: ``(n, T, n_features)`` last T feature vectors per row, oldest first; needed
                only when a window member is named.
            names: Members to run.
            check_finite: Reject NaN/inf inputs (on by default).

        Returns:
            ``{member: predictions}`` in label units (log vol for the volatility member).
        """
        members = [self.member(n) for n in names]
        with torch.inference_mode():
            outs = self._member_tensors(features, windows, members, check_finite)
            return {n: t.cpu().numpy() for n, t in outs.items()}

    def predict(
        self,
        features: npt.ArrayLike | None,
        windows: npt.ArrayLike | None = None,
        *,
        members: Sequence[str] | None = None,
        check_finite: bool = True,
    ) -> FloatArray:
        """Stacked return forecast, shape ``(n,)``.

        Args:
            features: ``(n, n_features)`` raw features (or ``None`` to use ``windows[:, -1]``).
            windows: ``(n, T, n_features)`` raw windows, needed when a window member is used.
            members: Members to combine (default: every return member).
            check_finite: Reject NaN/inf inputs (on by default).

        Returns:
            The forecast in label units.
        """
        weights = {n: w for n, w in self.stacking_weights(members).items() if w > 0.0}
        with torch.inference_mode():  # members with zero stacking weight are not run
            outs = self._member_tensors(
                features, windows, [self.member(n) for n in weights], check_finite
            )
            total = sum(w * outs[n] for n, w in weights.items())
            assert isinstance(total, Tensor)  # weights sum to one: at least one member runs
            result: FloatArray = total.cpu().numpy()
            return result

    def predict_volatility(
        self, features: npt.ArrayLike | None, windows: npt.ArrayLike | None = None
    ) -> FloatArray:
        """Forecast volatility (not log) from the volatility member, shape ``(n,)``.

        Args:
            features: ``(n, n_features)`` raw features (or ``None``).
            windows: ``(n, T, n_features)`` raw windows.

        Returns:
            ``exp(predicted log realized vol)``.
        """
        name = self.volatility_member
        if name is None:
            raise ModelError("this ensemble has no volatility member")
        log_vol = self.predict_members(features, windows, [name])[name]
        return np.exp(log_vol).astype(np.float32)

    def _member_tensors(
        self,
        features: npt.ArrayLike | None,
        windows: npt.ArrayLike | None,
        members: Sequence[Member],
        check_finite: bool,
    ) -> dict[str, Tensor]:
        needs_window = any(m.input_kind == "window" for m in members)
        win = self._prepare(windows, 3, check_finite) if windows is not None else None
        if needs_window and win is None:
            raise InferenceInputError(
                f"members {[m.name for m in members if m.input_kind == 'window']} need windows"
            )
        if features is not None:
            flat = self._prepare(features, 2, check_finite)
        elif win is not None:
            flat = win[:, -1, :]
        else:
            raise InferenceInputError("give features, windows, or both")
        if win is not None and win.shape[0] != flat.shape[0]:
            raise InferenceInputError(f"features have {flat.shape[0]} rows, windows {win.shape[0]}")
        outs: dict[str, Tensor] = {}
        for m in members:
            x = win if m.input_kind == "window" else flat
            assert x is not None  # window members without windows were refused above
            run = self._plans.get(m.network) if self.fast_inference else m.network
            y: Tensor = run(x)
            outs[m.name] = y * m.target_std + m.target_mean
        return outs

    def _prepare(self, values: npt.ArrayLike, ndim: int, check_finite: bool) -> Tensor:
        arr = np.ascontiguousarray(values, dtype=np.float32)
        expected = (self.window, self.n_features) if ndim == 3 else (self.n_features,)
        if arr.ndim != ndim or arr.shape[1:] != expected:
            raise InferenceInputError(
                f"expected shape (n, {', '.join(map(str, expected))}), got {arr.shape}"
            )
        if check_finite and not np.isfinite(arr).all():
            raise InferenceInputError("inputs contain NaN or inf")
        t = torch.from_numpy(arr).to(self.device, non_blocking=True)
        if ndim == 3:  # (n, T*F) against T-tiled constants: same values, vectorizes better
            rows = t.view(t.shape[0], self._mean_tiled.numel())
            return torch.sub(rows, self._mean_tiled).div_(self._std_tiled).view(t.shape)
        return torch.sub(t, self._mean).div_(self._std)
