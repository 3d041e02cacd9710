"""Population stability index (PSI) of live features against the training window.

Bins are fixed by the **reference** (training-window) sample: the interior edges are its
``k/bins`` quantiles (``k = 1 .. bins-1``), duplicates removed, so a value ``x`` falls in bin
``searchsorted(edges, x, side="right")`` (a left-closed layout: ``edge <= x`` goes right). A
reference with few distinct values (a constant feature) therefore gets fewer, still valid bins.
Non-finite values are dropped from both samples before binning.

PSI = ``sum_i (p_live_i - p_ref_i) * ln(p_live_i / p_ref_i)`` over the bins, with both
proportions floored at ``eps`` (default 1e-4) first: a bin empty on one side would make the
term infinite; the floor bounds it at ``(p - eps) * ln(p / eps)``, about ``p * 9.2`` for the
default. Read: < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant shift (the default breach).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.errors import RRRError

FloatArray = npt.NDArray[np.float64]
EPS = 1e-4


class DriftInputError(RRRError, ValueError):
    """Samples or settings a PSI cannot be computed from (the message names which)."""


def finite(values: npt.ArrayLike) -> FloatArray:
    """The finite values of ``values`` as a float64 array."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def quantile_edges(reference: npt.ArrayLike, bins: int = 10) -> FloatArray:
    """Interior bin edges: the reference's ``k/bins`` quantiles, duplicates removed."""
    if bins < 2:
        raise DriftInputError(f"PSI needs at least 2 bins, got {bins}")
    ref = finite(reference)
    if ref.size == 0:
        raise DriftInputError("the reference sample has no finite value")
    qs = np.quantile(ref, np.arange(1, bins) / bins)
    return np.unique(qs)


def bin_shares(values: npt.ArrayLike, edges: FloatArray, eps: float = EPS) -> FloatArray:
    """Share of ``values`` in each bin of ``edges`` (``len(edges) + 1`` bins), floored at eps."""
    arr = finite(values)
    if arr.size == 0:
        raise DriftInputError("the sample has no finite value")
    counts = np.bincount(np.searchsorted(edges, arr, side="right"), minlength=edges.size + 1)
    return np.maximum(counts / arr.size, eps)


def psi(reference: npt.ArrayLike, live: npt.ArrayLike, bins: int = 10, eps: float = EPS) -> float:
    """PSI of ``live`` against ``reference`` (see the module docstring for bins and eps)."""
    edges = quantile_edges(reference, bins)
    p_ref, p_live = bin_shares(reference, edges, eps), bin_shares(live, edges, eps)
    return float(np.sum((p_live - p_ref) * np.log(p_live / p_ref)))


@dataclass(frozen=True)
class FeatureDrift:
    """PSI of one feature (``psi`` is NaN when either side had too few values)."""

    feature: str
    psi: float
    n_reference: int
    n_live: int
    breached: bool


@dataclass(frozen=True)
class DriftReport:
    """PSI of every judged feature against one threshold.

    Attributes:
        threshold: PSI above which a feature has drifted.
        features: One entry per feature, in spec order.
        skipped: Features not judged, with the reason (excluded kind, too few values).
    """

    threshold: float
    features: tuple[FeatureDrift, ...]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        """Names of the features whose PSI exceeds the threshold, in spec order."""
        return [f.feature for f in self.features if f.breached]

    @property
    def max_psi(self) -> float:
        """The largest judged PSI (NaN when none was judged)."""
        values = [f.psi for f in self.features if math.isfinite(f.psi)]
        return max(values) if values else math.nan

    def table(self) -> pd.DataFrame:
        """One row per judged feature: feature, psi, n_reference, n_live, breached."""
        return pd.DataFrame(
            [(f.feature, f.psi, f.n_reference, f.n_live, f.breached) for f in self.features],
            columns=["feature", "psi", "n_reference", "n_live", "breached"],
        )


def feature_drift(
    reference: pd.DataFrame,
    live: pd.DataFrame,
    names: Iterable[str],
    *,
    threshold: float = 0.25,
    bins: int = 10,
    min_count: int = 50,
    skip: Sequence[str] = (),
) -> DriftReport:
    """PSI per feature column of ``live`` against ``reference``.

    Args:
        reference: Training-window feature rows (one column per feature).
        live: Live feature rows (same columns).
        names: Features to judge, in order.
        threshold: PSI above which a feature counts as drifted (strictly greater).
        bins: Quantile bins of the reference.
        min_count: Fewest finite values on each side for a feature to be judged.
        skip: Features left out on purpose (e.g. calendar features, whose "drift" is the date).
    """
    out: list[FeatureDrift] = []
    skipped: dict[str, str] = {}
    for name in names:
        if name in skip:
            skipped[name] = "excluded"
            continue
        ref, cur = finite(reference[name]), finite(live[name])
        if min(ref.size, cur.size) < max(min_count, 1):
            skipped[name] = f"too few values (reference {ref.size}, live {cur.size} < {min_count})"
            continue
        value = psi(ref, cur, bins)
        out.append(FeatureDrift(name, value, int(ref.size), int(cur.size), value > threshold))
    return DriftReport(threshold, tuple(out), skipped)
