"""Stacking: combine member forecasts with weights fitted on the stacking segment.

The combiner is a **convex combination**: weights ``w >= 0`` with ``sum(w) == 1`` and no
intercept, minimising ``mean((y - P w)^2) + ridge * s * |w|^2`` where ``s`` is the mean of
``diag(P'P)/n`` (so ``ridge`` is scale-free). Non-negativity keeps a useless member from being
used as a hedge; the simplex constraint keeps the forecast on the members' scale; the small
ridge splits weight between near-duplicate members instead of picking one at random. The QP is
solved exactly by enumerating supports (fine for the handful of members an ensemble has).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rrr_live.errors import RRRError

MAX_MEMBERS = 12


class StackingError(RRRError):
    """The stacking problem is ill-posed (too few rows, too many members, bad shapes)."""


@dataclass(frozen=True)
class StackingResult:
    """Fitted stacking weights and their in-sample quality.

    Attributes:
        weights: ``{member: weight}``, non-negative, summing to one.
        mse: Mean squared error of the combined forecast on the rows used.
        member_mse: Mean squared error of each member alone on the same rows.
        n_rows: Rows used (rows with any non-finite prediction or label are dropped).
    """

    weights: dict[str, float]
    mse: float
    member_mse: dict[str, float]
    n_rows: int


def fit_stacking_weights(
    predictions: npt.ArrayLike,
    y: npt.ArrayLike,
    names: Sequence[str],
    *,
    ridge: float = 1e-3,
) -> StackingResult:
    """Fit convex stacking weights (see module docstring).

    Args:
        predictions: ``(n, k)`` member forecasts on the stacking segment.
        y: ``(n,)`` labels.
        names: The ``k`` member names.
        ridge: Relative ridge penalty (``>= 0``).

    Returns:
        The weights and diagnostics.

    Raises:
        StackingError: Bad shapes, too few usable rows, or more than 12 members.
    """
    p = np.asarray(predictions, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    k = len(names)
    if p.ndim != 2 or p.shape[1] != k or target.shape != (p.shape[0],):
        raise StackingError(f"predictions {p.shape} / y {target.shape} / {k} names disagree")
    if not 1 <= k <= MAX_MEMBERS or ridge < 0:
        raise StackingError(f"need 1..{MAX_MEMBERS} members and ridge >= 0 (k={k})")
    ok = np.isfinite(p).all(axis=1) & np.isfinite(target)
    p, target = p[ok], target[ok]
    n = p.shape[0]
    if n < k + 1:
        raise StackingError(f"only {n} usable stacking rows for {k} members")
    gram = p.T @ p / n
    a = gram + ridge * float(np.mean(np.diag(gram))) * np.eye(k)
    b = p.T @ target / n
    w = _solve_simplex_qp(a, b)
    member_mse = {nm: float(np.mean((target - p[:, i]) ** 2)) for i, nm in enumerate(names)}
    return StackingResult(
        weights={nm: float(w[i]) for i, nm in enumerate(names)},
        mse=float(np.mean((target - p @ w) ** 2)),
        member_mse=member_mse,
        n_rows=n,
    )


def _solve_simplex_qp(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> np.ndarray:
    """Minimise ``w'Aw - 2b'w`` subject to ``w >= 0``, ``sum(w) == 1`` by support enumeration."""
    k = len(b)
    best_w, best_f = np.full(k, 1.0 / k), np.inf
    for size in range(1, k + 1):
        for support in itertools.combinations(range(k), size):
            s = list(support)
            kkt = np.zeros((size + 1, size + 1))
            kkt[:size, :size] = 2 * a[np.ix_(s, s)]
            kkt[:size, size] = 1.0
            kkt[size, :size] = 1.0
            rhs = np.concatenate([2 * b[s], [1.0]])
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:size]
            if np.any(sol < -1e-12) or not np.isclose(sol.sum(), 1.0):
                continue
            w = np.zeros(k)
            w[s] = np.clip(sol, 0.0, None)
            w /= w.sum()
            f = float(w @ a @ w - 2 * b @ w)
            if f < best_f - 1e-15:
                best_w, best_f = w, f
    return best_w
