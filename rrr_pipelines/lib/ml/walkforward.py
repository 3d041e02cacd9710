"""Rolling walk-forward retraining over every out-of-sample period before the holdout.

The development part of a training frame (every row before the holdout boundary) is cut into
test folds that tile ``[first period with enough history, holdout start)``: one fold every
``retrain_every`` periods (``period`` is a pandas offset alias; the default ``YS`` with
``retrain_every=1`` retrains yearly on daily bars). Each fold is trained on the rows before its
test fold: an expanding window from the first row, or by config a sliding window of
``max_train_periods`` periods. Inside that window the last shares become the validation and
stacking segments, exactly as the one-shot training cuts its development part.

Every fold is cut by :func:`rrr_pipelines.lib.ml.splits.make_segments` on the rows of
``[train_start, test_end)`` with explicit boundaries, so purging and embargo hold at every fold
boundary: a kept training row's label window ends before the next raw boundary, the first
``embargo`` grid steps after each boundary are dropped, and test rows whose label window would
reach past the test fold (into the next fold or the holdout) are dropped too. Each fold is
trained by :func:`rrr_pipelines.lib.ml.training.train_ensemble` (the same Lightning code and
seed as the one-shot model); its test predictions are concatenated into one out-of-sample
score series. The holdout is never a test fold: the model that gets registered is the one-shot
model, trained on the purged rows before the holdout (:func:`plan_from_segments`).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from rrr_live.errors import RRRError
from rrr_pipelines.lib.ml.baselines import fit_ridge_frame
from rrr_pipelines.lib.ml.dataset import to_training_data
from rrr_pipelines.lib.ml.predict import predict_rows
from rrr_pipelines.lib.ml.splits import Segments, SplitConfig, SplitError, make_segments
from rrr_pipelines.lib.ml.training import TrainedEnsemble, train_ensemble
from rrr_pipelines.lib.ml.training_config import EnsembleConfig

logger = logging.getLogger(__name__)

FoldLog = Callable[[str], None]


class WalkForwardError(RRRError, ValueError):
    """The walk-forward cannot be planned as configured; the message names the numbers."""


@dataclass(frozen=True)
class WalkForwardConfig:
    """How folds are laid out.

    Attributes:
        period: pandas offset alias of one period (``YS`` = calendar year starts).
        retrain_every: Periods per test fold (retrain every K periods).
        min_train_periods: Periods of history before the first test fold.
        window: ``expanding`` (from the first row) or ``sliding``.
        max_train_periods: Periods in a sliding training window.
        validation_share: Share of a fold's training window used for early stopping.
        stacking_share: Share of a fold's training window used for the stacking fit.
        workers: Folds trained at once (processes; 1 = sequential, in this process).
    """

    period: str = "YS"
    retrain_every: int = 1
    min_train_periods: int = 3
    window: Literal["expanding", "sliding"] = "expanding"
    max_train_periods: int = 5
    validation_share: float = 0.15 / 0.85
    stacking_share: float = 0.15 / 0.85
    workers: int = 1

    def __post_init__(self) -> None:
        if self.retrain_every < 1 or self.min_train_periods < 1 or self.max_train_periods < 1:
            raise WalkForwardError("retrain_every, min_train_periods, max_train_periods >= 1")
        if self.window not in ("expanding", "sliding"):
            raise WalkForwardError(f"window must be expanding or sliding, got {self.window!r}")
        shares = (self.validation_share, self.stacking_share)
        if any(not 0.0 < s < 1.0 for s in shares) or sum(shares) >= 1.0:
            raise WalkForwardError(f"validation/stacking shares must be in (0, 1): {shares}")
        if self.workers < 1:
            raise WalkForwardError("workers must be >= 1")


@dataclass(frozen=True)
class FoldPlan:
    """Raw boundaries of one fold (tz-aware; ``test_end`` exclusive, ``None`` = end of data)."""

    index: int
    train_start: pd.Timestamp
    validation_start: pd.Timestamp
    stacking_start: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp | None

    def ranges(self) -> dict[str, str | None]:
        """JSON-ready boundaries (ISO timestamps)."""
        return {
            "train_start": self.train_start.isoformat(),
            "validation_start": self.validation_start.isoformat(),
            "stacking_start": self.stacking_start.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": None if self.test_end is None else self.test_end.isoformat(),
        }


@dataclass(frozen=True)
class FoldResult:
    """One trained fold.

    Attributes:
        plan: Its boundaries.
        segments: The purged, embargoed segments (row positions into the fold's rows).
        trained: The ensemble trained on the fold's training window (``None`` when the fold ran
            in a worker process: networks stay there; their hashes come back in ``weights``).
        predictions: Stacked forecasts of the kept test rows, indexed by ``(ts, symbol)``.
        seconds: Wall time of the fold.
        baselines: Score baselines refitted on the fold's training window (``ridge``), on the
            same test rows, so that they are judged out of sample like the model.
    """

    plan: FoldPlan
    segments: Segments
    trained: TrainedEnsemble | None
    predictions: pd.Series
    seconds: float
    baselines: dict[str, pd.Series] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Per-fold row of the fold table: boundaries, kept rows and weight hashes."""
        segs = {n: getattr(self.segments, n) for n in ("train", "validation", "stacking")}
        return {
            "fold": self.plan.index,
            **self.plan.ranges(),
            **{f"{n}_rows": len(s.rows) for n, s in segs.items()},
            "train_end": None if segs["stacking"].end is None else segs["stacking"].end.isoformat(),
            "test_rows": len(self.predictions),
            "test_first": str(self.predictions.index.get_level_values("ts").min()),
            "test_last": str(self.predictions.index.get_level_values("ts").max()),
            "seconds": round(self.seconds, 2),
            "weights_sha256": dict(self.weights),
        }


@dataclass(frozen=True)
class WalkForwardResult:
    """All folds and their concatenated out-of-sample forecasts (model and score baselines)."""

    folds: tuple[FoldResult, ...]
    predictions: pd.Series
    seconds: float
    baselines: dict[str, pd.Series] = field(default_factory=dict)

    def scores_frame(self) -> pd.DataFrame:
        """``ts, symbol, fold, train_start, train_end, ensemble, <baselines>`` of every test row.

        ``train_start``/``train_end`` are the first and last timestamps of the fold's kept
        training rows (train, validation and stacking), the fold's lineage.
        """
        parts = []
        for f in self.folds:
            part = pd.DataFrame({"ensemble": f.predictions, **f.baselines})
            part.insert(0, "fold", f.plan.index)
            part.insert(1, "train_start", str(f.segments.train.start))
            part.insert(2, "train_end", str(f.segments.stacking.end))
            parts.append(part)
        return pd.concat(parts).sort_index().reset_index()

    def table(self) -> pd.DataFrame:
        """One row per fold (weights hashes dropped)."""
        rows = [{k: v for k, v in f.summary().items() if k != "weights_sha256"} for f in self.folds]
        return pd.DataFrame(rows)


def holdout_boundary(segments: Segments) -> pd.Timestamp:
    """The raw holdout boundary (first grid timestamp of the holdout, before the embargo)."""
    return pd.Timestamp(segments.grid[segments.holdout.raw_range[0]])


def plan_from_segments(segments: Segments) -> FoldPlan:
    """The one-shot layout as a fold: train/validation/stacking before the holdout, test = holdout.

    Training this fold is training the model that gets registered.
    """
    grid = segments.grid
    return FoldPlan(
        -1,
        pd.Timestamp(grid[0]),
        pd.Timestamp(grid[segments.validation.raw_range[0]]),
        pd.Timestamp(grid[segments.stacking.raw_range[0]]),
        holdout_boundary(segments),
        None,
    )


def _window_cuts(
    grid: pd.DatetimeIndex, lo: int, hi: int, cfg: WalkForwardConfig
) -> tuple[pd.Timestamp, pd.Timestamp]:
    width = hi - lo
    n_stack = round(width * cfg.stacking_share)
    n_val = round(width * cfg.validation_share)
    if min(n_stack, n_val, width - n_stack - n_val) < 1:
        raise WalkForwardError(f"a training window of {width} steps is too short to cut")
    return pd.Timestamp(grid[hi - n_stack - n_val]), pd.Timestamp(grid[hi - n_stack])


def plan_folds(
    timestamps: Any, holdout_start: pd.Timestamp, config: WalkForwardConfig
) -> list[FoldPlan]:
    """Test folds tiling ``[first period with enough history, holdout_start)``.

    Args:
        timestamps: Row timestamps (tz-aware; repeated across symbols is fine).
        holdout_start: Raw holdout boundary; no fold reaches it.
        config: Layout.

    Returns:
        The fold plans in time order.

    Raises:
        WalkForwardError: when no test fold fits before the holdout.
    """
    grid = pd.DatetimeIndex(timestamps).unique().sort_values()
    holdout_start = pd.Timestamp(holdout_start)
    edges = pd.date_range(grid[0], holdout_start, freq=config.period, inclusive="right")
    starts = [e for e in edges[config.min_train_periods - 1 :: config.retrain_every]]
    starts = [s for s in starts if s < holdout_start]
    if not starts:
        raise WalkForwardError(
            f"no test fold fits: {config.min_train_periods} periods of {config.period} history "
            f"before {holdout_start.date()} are not available from {grid[0].date()}"
        )
    plans = []
    bounds = [*starts, holdout_start]
    for k, (lo_ts, hi_ts) in enumerate(itertools.pairwise(bounds)):
        test_lo = int(grid.searchsorted(lo_ts, side="left"))
        train_lo = 0
        if config.window == "sliding":
            offset = pd.tseries.frequencies.to_offset(config.period) * config.max_train_periods
            train_lo = int(grid.searchsorted(lo_ts - offset, side="left"))
        val_ts, stack_ts = _window_cuts(grid, train_lo, test_lo, config)
        plans.append(
            FoldPlan(k, pd.Timestamp(grid[train_lo]), val_ts, stack_ts, pd.Timestamp(grid[test_lo]),
                     pd.Timestamp(hi_ts))
        )  # fmt: skip
    return plans


def fold_frame(
    frame: pd.DataFrame, plan: FoldPlan, horizon: int, embargo: int
) -> tuple[pd.DataFrame, Segments]:
    """The fold's rows with its ``segment`` column (``holdout`` = the fold's test rows).

    Args:
        frame: Training frame (``ts``, ``symbol``, features, ``label``, ``label_end``).
        plan: The fold.
        horizon: Label horizon in grid steps (used when ``label_end`` is absent).
        embargo: Grid steps dropped after each boundary.

    Returns:
        ``(rows of [train_start, test_end) with segments, the Segments)``.
    """
    ts = frame["ts"]
    keep = ts >= plan.train_start
    if plan.test_end is not None:
        keep &= ts < plan.test_end
    part = frame.loc[keep.to_numpy()].reset_index(drop=True)
    split = SplitConfig(
        horizon=horizon, embargo=embargo, n_folds=1, validation_start=plan.validation_start,
        stacking_start=plan.stacking_start, holdout_start=plan.test_start,
    )  # fmt: skip
    label_end = part.get("label_end", None)
    try:
        segments = make_segments(part["ts"], split, label_end=label_end)
    except SplitError as exc:
        raise WalkForwardError(f"fold {plan.index}: {exc}") from exc
    segment = np.full(len(part), "", dtype=object)
    for name in ("train", "validation", "stacking", "holdout"):
        segment[getattr(segments, name).rows] = name
    part["segment"] = pd.array(segment, dtype="str")
    return part, segments


def train_fold(
    frame: pd.DataFrame,
    plan: FoldPlan,
    feature_names: Sequence[str],
    ens_config: EnsembleConfig,
    horizon: int,
    embargo: int,
) -> FoldResult:
    """Train one fold with the one-shot trainer and predict its test rows.

    Args:
        frame: The training frame.
        plan: The fold.
        feature_names: Feature columns.
        ens_config: Ensemble configuration (seeded; the same for every fold).
        horizon: Label horizon.
        embargo: Embargo in grid steps.

    Returns:
        The trained fold.
    """
    started = time.perf_counter()
    part, segments = fold_frame(frame, plan, horizon, embargo)
    data = to_training_data(part, list(feature_names))
    trained = train_ensemble(ens_config, data)
    test = data.masks["holdout"]
    preds = predict_rows(trained.ensemble, data, test)
    index = pd.MultiIndex.from_arrays(
        [part.loc[test, "ts"].to_numpy(), part.loc[test, "symbol"].to_numpy()],
        names=["ts", "symbol"],
    )
    series = pd.Series(preds, index=index, name="ensemble")
    ridge = fit_ridge_frame(part, list(feature_names)).predict_frame(part.loc[test])
    baselines = {"ridge": pd.Series(np.asarray(ridge, dtype=np.float64), index=index, name="ridge")}
    weights = {n: r.weights_sha256 for n, r in trained.members.items()}
    seconds = time.perf_counter() - started
    return FoldResult(plan, segments, trained, series, seconds, baselines, weights)


def _train_fold_args(args: tuple[Any, ...]) -> FoldResult:
    return train_fold(*args)


def _train_fold_in_worker(args: tuple[Any, ...]) -> FoldResult:
    """A fold for another process: everything but the networks (hashes stay in ``weights``)."""
    return replace(train_fold(*args), trained=None)


def run_walk_forward(
    frame: pd.DataFrame,
    feature_names: Sequence[str],
    ens_config: EnsembleConfig,
    plans: Sequence[FoldPlan],
    *,
    horizon: int,
    embargo: int,
    workers: int = 1,
    log: FoldLog | None = None,
) -> WalkForwardResult:
    """Train every fold (sequentially or in ``workers`` processes) and concatenate the forecasts.

    Args:
        frame: The training frame.
        feature_names: Feature columns.
        ens_config: Ensemble configuration.
        plans: Folds from :func:`plan_folds`.
        horizon: Label horizon.
        embargo: Embargo in grid steps.
        workers: Processes (capped at the core count; each fold uses ``num_threads`` threads).
        log: Progress line per finished fold (default: this module's logger).

    Returns:
        The folds and the concatenated out-of-sample forecasts.
    """
    say = log or logger.info
    started = time.perf_counter()
    workers = max(1, min(workers, os.cpu_count() or 1, len(plans)))
    if workers > 1:  # each process gets its share of the cores
        ens_config = replace(ens_config, num_threads=max(1, ens_config.num_threads // workers))
    jobs = [(frame, p, list(feature_names), ens_config, horizon, embargo) for p in plans]
    results: list[FoldResult] = []
    if workers == 1:
        iterator: Any = map(_train_fold_args, jobs)
        pool = None
    else:
        # spawn: a forked child would inherit torch's thread pools mid-state
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        iterator = pool.map(_train_fold_in_worker, jobs)
    try:
        for res in iterator:
            results.append(res)
            say(
                f"walk-forward fold {len(results)}/{len(plans)}: test "
                f"{res.plan.test_start.date()}..{res.predictions.index.get_level_values('ts').max().date()}"
                f", {len(res.predictions)} rows, trained in {res.seconds:.1f}s"
            )
    finally:
        if pool is not None:
            pool.shutdown()
    preds = pd.concat([r.predictions for r in results]).sort_index()
    if preds.index.duplicated().any():
        raise WalkForwardError("test folds overlap")  # plan_folds tiles; this guards misuse
    baselines = {
        name: pd.concat([r.baselines[name] for r in results]).sort_index()
        for name in results[0].baselines
    }
    return WalkForwardResult(tuple(results), preds, time.perf_counter() - started, baselines)
