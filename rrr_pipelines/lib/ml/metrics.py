"""Evaluation metrics for scores against forward returns (Dagster-free).

Inputs are Series indexed by ``(ts, symbol)`` (the layout of ``compute_features`` and
``make_labels``); they are aligned on the index and rows with a NaN in either are dropped.

* **Cross-sectional IC** - per timestamp, Pearson (IC) or Spearman (rank IC) correlation of score
  and return across symbols; the usual choice with many symbols.
* **Pooled IC** - one time-series correlation over all rows; with 1-2 symbols (the bundled data)
  the cross-section is meaningless, so the IC *series* is the pooled IC of consecutive blocks of
  ``block`` timestamps (:func:`pooled_ic_series`).
* **ICIR** = mean / std (ddof=1) of the IC series; **t-statistic** = mean / Newey-West standard
  error (Bartlett kernel; default lags ``floor(4 (T/100)^(2/9))``, Newey-West 1994);
  **confidence interval** of the mean IC by a seeded circular block bootstrap (percentile).
* **Hit rate** - share of rows where score and return have the same sign (zeros excluded).
* **Quantile spread** - mean return of the top minus the bottom score quantile.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.errors import RRRError

Method = Literal["pearson", "spearman"]
FloatArray = npt.NDArray[np.float64]


class MetricError(RRRError, ValueError):
    """Inputs a metric cannot be computed from; the message names what is wrong."""


def _align(score: pd.Series, target: pd.Series) -> pd.DataFrame:
    if "ts" not in (score.index.names or []) or "ts" not in (target.index.names or []):
        raise MetricError("score and target need an index with a 'ts' level, e.g. (ts, symbol)")
    frame = pd.concat({"s": score, "y": target}, axis=1, join="inner").dropna()
    return frame.astype(np.float64)


def _demeaned_corr(frame: pd.DataFrame, key: pd.Series | None) -> pd.Series | float:
    if key is None:
        dx, dy = frame["s"] - frame["s"].mean(), frame["y"] - frame["y"].mean()
        den = math.sqrt(float((dx**2).sum() * (dy**2).sum()))
        return float((dx * dy).sum()) / den if den > 0 else math.nan
    groups = frame.groupby(key, sort=True)
    dx = frame["s"] - groups["s"].transform("mean")
    dy = frame["y"] - groups["y"].transform("mean")
    parts = pd.DataFrame({"xy": dx * dy, "xx": dx * dx, "yy": dy * dy}).groupby(key, sort=True)
    sums = parts.sum()
    den = np.sqrt(sums["xx"] * sums["yy"])
    return (sums["xy"] / den).where(den > 0)


def _ranked(frame: pd.DataFrame, key: pd.Series | None) -> pd.DataFrame:
    if key is None:
        return frame.rank(method="average")
    return frame.groupby(key, sort=False).rank(method="average")


def cross_sectional_ic(
    score: pd.Series, target: pd.Series, method: Method = "pearson", min_count: int = 3
) -> pd.Series:
    """Per-timestamp correlation across symbols, indexed by ts.

    Timestamps with fewer than ``min_count`` symbols or a constant score/target are left out.
    """
    frame = _align(score, target)
    ts = pd.Series(frame.index.get_level_values("ts"), index=frame.index)
    counts = ts.map(ts.value_counts())
    frame, ts = frame[counts >= min_count], ts[counts >= min_count]
    if method == "spearman":
        frame = _ranked(frame, ts)
    ic = cast(pd.Series, _demeaned_corr(frame, ts))
    return ic.dropna().rename(f"ic_{method}")


def pooled_ic(score: pd.Series, target: pd.Series, method: Method = "pearson") -> float:
    """One correlation over all rows (all timestamps and symbols pooled)."""
    frame = _align(score, target)
    if method == "spearman":
        frame = _ranked(frame, None)
    return cast(float, _demeaned_corr(frame, None))


def pooled_ic_series(
    score: pd.Series, target: pd.Series, method: Method = "pearson", block: int = 21
) -> pd.Series:
    """Pooled IC of consecutive blocks of ``block`` timestamps, indexed by each block's first ts.

    Spearman ranks are taken within each block.
    """
    if block < 2:
        raise MetricError(f"block must be >= 2 timestamps, got {block}")
    frame = _align(score, target)
    ts = frame.index.get_level_values("ts")
    grid = ts.unique().sort_values()
    block_start = grid[(grid.get_indexer(ts) // block) * block]
    key = pd.Series(block_start, index=frame.index)
    if method == "spearman":
        frame = _ranked(frame, key)
    ic = cast(pd.Series, _demeaned_corr(frame, key))
    return ic.dropna().rename(f"pooled_ic_{method}")


def newey_west_lags(n: int) -> int:
    """Newey-West (1994) rule of thumb: ``floor(4 * (n / 100) ** (2 / 9))``."""
    return math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)) if n > 0 else 0


def newey_west_se(x: npt.ArrayLike, lags: int | None = None) -> float:
    """HAC (Bartlett-kernel) standard error of the mean of ``x``, no small-sample correction."""
    arr = np.asarray(x, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = arr.shape[0]
    if n < 2:
        return math.nan
    lag = newey_west_lags(n) if lags is None else min(lags, n - 1)
    u = arr - arr.mean()
    s = float(u @ u) / n
    for j in range(1, lag + 1):
        s += 2.0 * (1.0 - j / (lag + 1.0)) * float(u[j:] @ u[:-j]) / n
    return math.sqrt(max(s, 0.0) / n)


def t_stat_newey_west(x: npt.ArrayLike, lags: int | None = None) -> float:
    """Mean of ``x`` divided by its Newey-West standard error."""
    arr = np.asarray(x, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    se = newey_west_se(arr, lags)
    return float(arr.mean()) / se if se > 0 else math.nan


def block_bootstrap_ci(
    x: npt.ArrayLike,
    n_boot: int = 2000,
    block: int | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile CI of the mean by a circular block bootstrap.

    Args:
        x: the series (NaN dropped), in time order.
        n_boot: bootstrap resamples.
        block: block length; default ``ceil(n ** (1/3))``.
        alpha: two-sided level; ``0.05`` gives a 95 % interval.
        seed: seed of ``numpy.random.default_rng``; same seed, same interval.
    """
    arr = np.asarray(x, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = arr.shape[0]
    if n < 2:
        return math.nan, math.nan
    b = max(1, math.ceil(n ** (1.0 / 3.0))) if block is None else max(1, min(block, n))
    n_blocks = math.ceil(n / b)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(b)).reshape(n_boot, n_blocks * b)[:, :n] % n
    means = arr[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def hit_rate(score: pd.Series, target: pd.Series) -> float:
    """Share of rows where ``sign(score) == sign(target)``, rows with a zero left out."""
    frame = _align(score, target)
    s, y = np.sign(frame["s"].to_numpy()), np.sign(frame["y"].to_numpy())
    nonzero = (s != 0) & (y != 0)
    return float((s[nonzero] == y[nonzero]).mean()) if nonzero.any() else math.nan


@dataclass(frozen=True)
class QuantileSpread:
    """Mean forward return per score quantile (0 = lowest) and top-minus-bottom spread."""

    by_quantile: pd.Series
    spread: float
    spread_series: pd.Series | None


def quantile_spread(
    score: pd.Series, target: pd.Series, n_quantiles: int = 10, cross_sectional: bool = True
) -> QuantileSpread:
    """Bucket rows by score quantile and compare the mean returns of the buckets.

    With ``cross_sectional`` buckets are formed per timestamp (timestamps with fewer symbols
    than quantiles are skipped), bucket means are averaged over timestamps and the spread
    series is per timestamp; otherwise buckets are formed over all rows pooled.
    Buckets are ``floor((rank - 1) * q / n)`` with ties broken by order of appearance.
    """
    frame = _align(score, target)
    if cross_sectional:
        ts = pd.Series(frame.index.get_level_values("ts"), index=frame.index)
        frame = frame[ts.map(ts.value_counts()) >= n_quantiles]
        if frame.empty:
            raise MetricError(f"no timestamp has {n_quantiles} symbols; use cross_sectional=False")
        ts = pd.Series(frame.index.get_level_values("ts"), index=frame.index)
        groups = frame.groupby(ts, sort=True)
        rank = groups["s"].rank(method="first")
        bucket = ((rank - 1) * n_quantiles // groups["s"].transform("count")).astype(int)
        per_ts = frame["y"].groupby([ts, bucket]).mean().unstack()
        by_q = per_ts.mean(axis=0)
        series = (per_ts[n_quantiles - 1] - per_ts[0]).rename("spread")
        return QuantileSpread(by_q, float(series.mean()), series)
    if len(frame) < n_quantiles:
        raise MetricError(f"{len(frame)} rows cannot fill {n_quantiles} quantiles")
    rank = frame["s"].rank(method="first")
    bucket = ((rank - 1) * n_quantiles // len(frame)).astype(int)
    by_q = frame["y"].groupby(bucket).mean()
    return QuantileSpread(by_q, float(by_q.iloc[-1] - by_q.iloc[0]), None)


@dataclass(frozen=True)
class ICSummary:
    """Summary statistics of one IC series."""

    mean: float
    std: float
    icir: float
    t_nw: float
    nw_lags: int
    ci_low: float
    ci_high: float
    n: int


def summarize_ic(
    ic: pd.Series, lags: int | None = None, n_boot: int = 2000, seed: int = 0
) -> ICSummary:
    """Mean, std, ICIR, Newey-West t-statistic and bootstrap CI of an IC series."""
    arr = ic.dropna().to_numpy(dtype=np.float64)
    n = arr.shape[0]
    std = float(arr.std(ddof=1)) if n > 1 else math.nan
    mean = float(arr.mean()) if n else math.nan
    lag = newey_west_lags(n) if lags is None else lags
    lo, hi = block_bootstrap_ci(arr, n_boot=n_boot, seed=seed)
    icir = mean / std if std > 0 else math.nan
    return ICSummary(mean, std, icir, t_stat_newey_west(arr, lag), lag, lo, hi, n)


def evaluate_scores(
    score: pd.Series,
    target: pd.Series,
    n_quantiles: int = 10,
    min_cross_section: int = 5,
    block: int = 21,
    seed: int = 0,
) -> dict[str, float]:
    """All metrics in one flat dict of floats (ready for MLflow/Dagster metadata).

    The mode is ``cross_sectional`` when the median number of symbols per timestamp is at
    least ``min_cross_section``, else ``pooled`` (IC series over blocks of ``block`` timestamps,
    quantiles over all rows). Keys: ``mode_cross_sectional`` (1.0/0.0), ``ic_*`` and
    ``rank_ic_*`` (mean, std, icir, t_nw, nw_lags, ci_low, ci_high, n), ``pooled_ic``,
    ``pooled_rank_ic``, ``hit_rate``, ``quantile_spread``.
    """
    frame = _align(score, target)
    per_ts = frame.index.get_level_values("ts").value_counts()
    cross = bool(len(per_ts) and per_ts.median() >= min_cross_section)
    out: dict[str, float] = {"mode_cross_sectional": float(cross)}
    methods: tuple[tuple[str, Method], ...] = (("ic", "pearson"), ("rank_ic", "spearman"))
    for prefix, method in methods:
        if cross:
            series = cross_sectional_ic(frame["s"], frame["y"], method)
        else:
            series = pooled_ic_series(frame["s"], frame["y"], method, block)
        for key, value in asdict(summarize_ic(series, seed=seed)).items():
            out[f"{prefix}_{key}"] = float(value)
    out["pooled_ic"] = pooled_ic(frame["s"], frame["y"], "pearson")
    out["pooled_rank_ic"] = pooled_ic(frame["s"], frame["y"], "spearman")
    out["hit_rate"] = hit_rate(frame["s"], frame["y"])
    out["quantile_spread"] = quantile_spread(frame["s"], frame["y"], n_quantiles, cross).spread
    return out
