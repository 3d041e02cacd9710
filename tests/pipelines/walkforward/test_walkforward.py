"""Walk-forward folds: tiling, purge/embargo at every boundary, no look-ahead, one-shot parity."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from rrr_live.features import default_spec
from rrr_pipelines.lib.ml.dataset import DatasetConfig, build_training_set, to_training_data
from rrr_pipelines.lib.ml.training import train_ensemble
from rrr_pipelines.lib.ml.walkforward import (
    WalkForwardConfig,
    WalkForwardError,
    fold_frame,
    holdout_boundary,
    plan_folds,
    plan_from_segments,
    run_walk_forward,
    train_fold,
)
from tests.pipelines.walkforward.conftest import tiny

DATASET = DatasetConfig(horizon=5, embargo=5)


def _grid(frame: pd.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(frame["ts"]).unique().sort_values()


def test_folds_tile_the_span_before_the_holdout(built):
    frame, segments = built
    boundary = holdout_boundary(segments)
    plans = plan_folds(frame["ts"], boundary, WalkForwardConfig(min_train_periods=2))
    grid = _grid(frame)
    # the first test year is the first with two whole years of history before it
    first = pd.Timestamp(f"{grid[0].year + 2}-01-01", tz="UTC")
    assert plans[0].test_start == grid[grid.searchsorted(first)]
    assert plans[-1].test_end == boundary
    for a, b in itertools.pairwise(plans):
        # no grid step lies between one fold's end and the next fold's start
        assert grid.searchsorted(a.test_end) == grid.searchsorted(b.test_start)
        assert a.train_start == grid[0]  # expanding
        assert b.test_start.year == a.test_start.year + 1  # yearly


def test_sliding_window_and_retrain_every(built):
    frame, segments = built
    cfg = WalkForwardConfig(min_train_periods=2, window="sliding", max_train_periods=2)
    plans = plan_folds(frame["ts"], holdout_boundary(segments), cfg)
    assert all(p.test_start - p.train_start < pd.Timedelta(days=2 * 366 + 7) for p in plans)
    assert plans[-1].train_start > plans[0].train_start
    every2 = plan_folds(frame["ts"], holdout_boundary(segments), WalkForwardConfig(
        min_train_periods=2, retrain_every=2))  # fmt: skip
    assert len(every2) == (len(plans) + 1) // 2
    with pytest.raises(WalkForwardError, match="no test fold fits"):
        plan_folds(frame["ts"], holdout_boundary(segments), WalkForwardConfig(min_train_periods=30))


def test_purge_and_embargo_on_every_fold_boundary(built):
    frame, segments = built
    boundary = holdout_boundary(segments)
    grid = _grid(frame)
    for plan in plan_folds(frame["ts"], boundary, WalkForwardConfig(min_train_periods=2)):
        part, _ = fold_frame(frame, plan, DATASET.horizon, DATASET.embargo)
        seg, ts, end = part["segment"], part["ts"], part["label_end"]
        for name, nxt in (("train", plan.validation_start), ("validation", plan.stacking_start),
                          ("stacking", plan.test_start), ("holdout", plan.test_end)):  # fmt: skip
            rows = seg == name
            assert rows.any()
            assert (end[rows] < nxt).all(), (plan.index, name)  # purged: label ends before
        for name, lo in (("validation", plan.validation_start), ("stacking", plan.stacking_start),
                         ("holdout", plan.test_start)):  # fmt: skip
            first = grid.searchsorted(ts[seg == name].min())
            assert first >= grid.searchsorted(lo) + DATASET.embargo, (plan.index, name)
        assert ts.max() < boundary  # the holdout is never read by a fold


def test_one_fold_reproduces_the_one_shot_training(built):
    frame, segments = built
    names = list(default_spec().names)
    one_shot = train_ensemble(tiny(), to_training_data(frame, names))
    fold = train_fold(frame, plan_from_segments(segments), names, tiny(), 5, 5)
    assert fold.weights["mlp"] == one_shot.members["mlp"].weights_sha256
    assert fold.trained is not None
    assert fold.trained.stacking.weights == one_shot.stacking.weights


def test_no_look_ahead_across_folds(bars, built):
    frame, segments = built
    names = list(default_spec().names)
    plan = plan_folds(frame["ts"], holdout_boundary(segments), WalkForwardConfig())[0]
    cut = plan.test_start + pd.Timedelta(days=120)
    rng = np.random.default_rng(0)
    later = (bars["ts"] >= cut).to_numpy()
    shaken = bars.copy()
    factor = np.exp(rng.normal(0.0, 0.05, later.sum()))
    for col in ("open", "high", "low", "close"):
        shaken.loc[later, col] = shaken.loc[later, col].to_numpy() * factor
    shaken.loc[later, "volume"] = shaken.loc[later, "volume"].to_numpy() * 3.0
    frame2, _ = build_training_set(shaken, default_spec(), DATASET)
    a = train_fold(frame, plan, names, tiny(), 5, 5)
    b = train_fold(frame2, plan, names, tiny(), 5, 5)
    assert a.weights["mlp"] == b.weights["mlp"]
    before = a.predictions.index.get_level_values("ts") < cut
    assert before.sum() > 50
    pd.testing.assert_series_equal(a.predictions[before], b.predictions[before])
    assert not np.allclose(a.predictions[~before], b.predictions[~before])  # the data did change


def test_run_walk_forward_concatenates_and_logs(built):
    frame, segments = built
    plans = plan_folds(frame["ts"], holdout_boundary(segments), WalkForwardConfig())[:2]
    lines: list[str] = []
    result = run_walk_forward(frame, list(default_spec().names), tiny(), plans, horizon=5,
                              embargo=5, log=lines.append)  # fmt: skip
    assert len(lines) == 2 and lines[0].startswith("walk-forward fold 1/2")
    assert result.predictions.index.is_monotonic_increasing
    assert len(result.predictions) == sum(len(f.predictions) for f in result.folds)
    table = result.table()
    assert list(table["fold"]) == [0, 1]
    assert (pd.to_datetime(table["train_end"]) < pd.to_datetime(table["test_start"])).all()


def test_parallel_folds_equal_sequential_folds(built):
    frame, segments = built
    plans = plan_folds(frame["ts"], holdout_boundary(segments), WalkForwardConfig())[:2]
    names = list(default_spec().names)
    seq = run_walk_forward(frame, names, tiny(), plans, horizon=5, embargo=5)
    par = run_walk_forward(frame, names, tiny(), plans, horizon=5, embargo=5, workers=2)
    for a, b in zip(seq.folds, par.folds, strict=True):
        assert a.weights["mlp"] == b.weights["mlp"]
    pd.testing.assert_series_equal(seq.predictions, par.predictions)
