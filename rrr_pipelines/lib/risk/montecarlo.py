"""Chunked Monte Carlo VaR/ES of a linear portfolio with Euler component ES.

Memory stays bounded: scenarios are drawn ``chunk_size`` at a time, and across chunks only the
worst ``k`` paths (enough for the largest tail probability, plus a margin for the VaR standard
error) are kept together with their per-asset P&L, from which the Euler components of ES are
read. The components sum to the total ES by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rrr_live.risk.ewma import RiskInputError
from rrr_live.risk.var import check_alpha, tail_weights
from rrr_pipelines.lib.risk.scenarios import FloatArray, ScenarioModel


@dataclass(frozen=True)
class McRisk:
    """Monte Carlo VaR and ES (positive losses in position currency) at one tail probability."""

    alpha: float
    var: float
    es: float
    component_es: FloatArray
    var_se: float
    es_se: float


@dataclass(frozen=True)
class McResult:
    """All tail figures of one Monte Carlo run."""

    n_paths: int
    mean_pnl: float
    sd_pnl: float
    risks: dict[float, McRisk]

    def __getitem__(self, alpha: float) -> McRisk:
        return self.risks[alpha]


class _TailKeeper:
    """Keeps the ``k`` lowest portfolio P&L values and their per-asset rows."""

    def __init__(self, k: int, n_assets: int) -> None:
        self.k = k
        self.pnl = np.empty(0, dtype=np.float64)
        self.rows = np.empty((0, n_assets), dtype=np.float64)

    def add(self, pnl: np.ndarray, rows: np.ndarray) -> None:
        if pnl.size > self.k:
            sel = np.argpartition(pnl, self.k - 1)[: self.k]
            pnl, rows = pnl[sel], rows[sel]
        self.pnl = np.concatenate([self.pnl, pnl])
        self.rows = np.concatenate([self.rows, rows])
        if self.pnl.size > self.k:
            sel = np.argpartition(self.pnl, self.k - 1)[: self.k]
            self.pnl, self.rows = self.pnl[sel], self.rows[sel]

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.pnl, kind="stable")
        return self.pnl[order], self.rows[order]


def _validate(
    positions: np.ndarray, n_assets: int, alphas: tuple[float, ...], n_paths: int
) -> None:
    if positions.shape != (n_assets,):
        raise RiskInputError(f"expected {n_assets} positions, got shape {positions.shape}")
    if not np.isfinite(positions).all():
        raise RiskInputError("positions must be finite")
    if not alphas:
        raise RiskInputError("give at least one tail probability")
    for a in alphas:
        check_alpha(a)
        if n_paths * a < 1:
            raise RiskInputError(f"{n_paths} paths leave no tail at alpha={a}")


def _keep_count(n_paths: int, alpha: float) -> int:
    mass = n_paths * alpha
    return min(n_paths, math.floor(mass + 3.0 * math.sqrt(mass)) + 3)


def _tail_figures(alpha: float, n: int, pnl_sorted: np.ndarray, rows_sorted: np.ndarray) -> McRisk:
    w = tail_weights(n, alpha)
    h = (n - 1) * alpha
    lo = math.floor(h)
    q = pnl_sorted[lo] + (h - lo) * (pnl_sorted[lo + 1] - pnl_sorted[lo])
    tail = pnl_sorted[: w.size]
    es = -float(w @ tail)
    components = -(w @ rows_sorted[: w.size])
    # standard errors: order-statistic spread for VaR, asymptotic formula for ES
    d = max(1, math.ceil(math.sqrt(n * alpha * (1 - alpha))))
    j_hi = min(lo + d, pnl_sorted.size - 1)
    var_se = float(pnl_sorted[j_hi] - pnl_sorted[max(lo - d, 0)]) / 2.0
    tail_var = float(w @ (tail + es) ** 2)
    es_se = math.sqrt(max(tail_var + (1 - alpha) * (es + q) ** 2, 0.0) / (n * alpha))
    return McRisk(
        alpha=alpha, var=-float(q), es=es, component_es=components, var_se=var_se, es_se=es_se
    )


def monte_carlo_var_es(
    model: ScenarioModel,
    positions: object,
    alphas: tuple[float, ...] = (0.05, 0.01),
    n_paths: int = 100_000,
    chunk_size: int | None = None,
    seed: int = 0,
) -> McResult:
    """Monte Carlo VaR/ES of ``P&L = returns @ positions`` with Euler component ES.

    Args:
        model: Scenario model drawing fractional returns.
        positions: Position value per asset (currency); P&L per path is ``r @ positions``.
        alphas: Tail probabilities.
        n_paths: Number of scenarios.
        chunk_size: Scenarios per chunk (default: about 4 million numbers per chunk).
        seed: Seed; the same seed and chunk size give the same scenarios (common random numbers).

    Returns:
        VaR (linear-interpolation quantile of the P&L, negated), ES (Acerbi-Tasche tail mean,
        negated) and per-asset components summing to ES, per alpha. All-zero positions give
        zero risk without simulating.

    Raises:
        RiskInputError: on a position count mismatch, NaN positions, or too few paths.
    """
    pos = np.asarray(positions, dtype=np.float64).reshape(-1)
    n_assets = model.n_assets
    _validate(pos, n_assets, alphas, n_paths)
    if not pos.any():
        zero = np.zeros(n_assets)
        risks = {a: McRisk(a, 0.0, 0.0, zero.copy(), 0.0, 0.0) for a in alphas}
        return McResult(n_paths=n_paths, mean_pnl=0.0, sd_pnl=0.0, risks=risks)
    if chunk_size is None:
        chunk_size = max(1_000, 4_000_000 // n_assets)
    keeper = _TailKeeper(_keep_count(n_paths, max(alphas)), n_assets)
    rng = np.random.default_rng(seed)
    total = total_sq = 0.0
    done = 0
    while done < n_paths:
        size = min(chunk_size, n_paths - done)
        rows = model.sample(rng, size).astype(np.float64, copy=False)
        rows *= pos
        pnl = rows.sum(axis=1)
        total += float(pnl.sum())
        total_sq += float(pnl @ pnl)
        keeper.add(pnl, rows)
        done += size
    pnl_sorted, rows_sorted = keeper.sorted()
    mean = total / n_paths
    sd = math.sqrt(max(total_sq / n_paths - mean * mean, 0.0) * n_paths / max(n_paths - 1, 1))
    risks = {a: _tail_figures(a, n_paths, pnl_sorted, rows_sorted) for a in alphas}
    return McResult(n_paths=n_paths, mean_pnl=mean, sd_pnl=sd, risks=risks)
