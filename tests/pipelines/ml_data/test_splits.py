"""Purged, embargoed segments: no label window reaches a later segment or its embargo."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_pipelines.lib.ml.labels import LabelConfig, make_labels
from rrr_pipelines.lib.ml.splits import SplitConfig, SplitError, make_segments
from tests.live.features.data import arch_bars, random_panel

ORDER = ("train", "validation", "stacking", "holdout")


def _grid_pos(segments, ts: pd.DatetimeIndex) -> np.ndarray:  # type: ignore[no-untyped-def]
    return segments.grid.get_indexer(ts)


def check_no_leakage(segments, ts: pd.DatetimeIndex, h: int, e: int) -> None:  # type: ignore[no-untyped-def]
    pos = _grid_pos(segments, ts)
    segs = [getattr(segments, name) for name in ORDER]
    for earlier, later in itertools.pairwise(segs):
        later_first = pos[later.rows].min()
        boundary = later.raw_range[0]
        assert later_first >= boundary + e, f"{later.name} starts inside the embargo"
        assert (pos[earlier.rows] + h < boundary).all(), f"{earlier.name} label crosses"
        # the whole label window of every earlier row ends before the embargoed later start
        assert (pos[earlier.rows] + h < later_first - e).all()
    for seg in segs:
        assert (pos[seg.rows] + h < len(segments.grid)).all()
    all_rows = np.concatenate([s.rows for s in segs])
    assert len(np.unique(all_rows)) == len(all_rows), "segments overlap"
    for fold in segments.folds:
        v_first = pos[fold.validation.rows].min()
        assert v_first >= fold.validation.raw_range[0] + e
        assert (pos[fold.train.rows] + h < fold.validation.raw_range[0]).all()
        assert pos[fold.validation.rows].max() + h < fold.validation.raw_range[1]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=120, max_value=600),
    n_symbols=st.integers(min_value=1, max_value=4),
    h=st.integers(min_value=1, max_value=10),
    e=st.integers(min_value=0, max_value=8),
    folds=st.integers(min_value=1, max_value=3),
)
def test_no_label_window_reaches_a_later_segment(
    n: int, n_symbols: int, h: int, e: int, folds: int
) -> None:
    grid = pd.date_range("2021-01-01", periods=n, freq="D", tz="UTC")
    ts = pd.DatetimeIndex(np.repeat(grid, n_symbols))
    segments = make_segments(ts, SplitConfig(horizon=h, embargo=e, n_folds=folds))
    check_no_leakage(segments, ts, h, e)
    assert segments.train.rows.size and segments.holdout.rows.size
    assert len(segments.folds) == folds
    np.testing.assert_array_equal(segments.folds[-1].train.rows, segments.train.rows)


def test_exact_boundaries_for_a_small_grid() -> None:
    grid = pd.date_range("2021-01-01", periods=100, freq="D", tz="UTC")
    cfg = SplitConfig(horizon=2, embargo=3, n_folds=2)
    s = make_segments(grid, cfg)
    assert s.holdout.raw_range == (85, 100) and s.stacking.raw_range == (70, 85)
    assert s.validation.raw_range == (55, 70) and s.train.raw_range == (0, 55)
    np.testing.assert_array_equal(s.train.rows, np.arange(0, 53))  # 52 + 2 < 55
    np.testing.assert_array_equal(s.validation.rows, np.arange(58, 68))
    np.testing.assert_array_equal(s.stacking.rows, np.arange(73, 83))
    np.testing.assert_array_equal(s.holdout.rows, np.arange(88, 98))
    np.testing.assert_array_equal(s.folds[0].train.rows, np.arange(0, 38))
    np.testing.assert_array_equal(s.folds[0].validation.rows, np.arange(43, 53))
    assert s.validation.mask(100).sum() == 10
    assert s.summary()["holdout"]["rows"] == 10


def test_explicit_dates_label_end_purging_and_rolling_window() -> None:
    bars = random_panel(n_symbols=6, n_bars=400, seed=4)
    labels = make_labels(bars, LabelConfig(horizon=5))
    ts = labels.index.get_level_values("ts")
    grid = ts.unique().sort_values()
    cfg = SplitConfig(
        horizon=5,
        embargo=2,
        n_folds=2,
        max_train_size=100,
        validation_start=grid[200].to_pydatetime(),
        stacking_start=grid[260].to_pydatetime(),
        holdout_start=grid[330].to_pydatetime(),
    )
    s = make_segments(ts, cfg, label_end=labels["label_end"])
    ends = pd.DatetimeIndex(labels["label_end"])
    for earlier, later in zip(
        (s.train, s.validation, s.stacking), (s.validation, s.stacking, s.holdout), strict=True
    ):
        assert (ends[earlier.rows] < grid[later.raw_range[0]]).all()
        assert ts[later.rows].min() >= grid[later.raw_range[0] + 2]
    assert ends[s.holdout.rows].notna().all()
    assert s.train.raw_range == (100, 200) and s.folds[0].train.raw_range == (40, 140)


def test_real_data_segments_with_labels() -> None:
    bars = arch_bars()
    labels = make_labels(bars, LabelConfig(horizon=20))
    ts = labels.index.get_level_values("ts")
    s = make_segments(ts, SplitConfig(horizon=20, embargo=5), label_end=labels["label_end"])
    check_no_leakage(s, ts, 20, 5)
    assert labels["label"].iloc[s.holdout.rows].notna().all()
    assert s.holdout.start is not None and s.holdout.start.year == 2016


def test_errors() -> None:
    grid = pd.date_range("2021-01-01", periods=30, freq="D", tz="UTC")
    with pytest.raises(SplitError, match="empty"):
        make_segments(grid, SplitConfig(horizon=10, embargo=0, n_folds=1))
    with pytest.raises(SplitError, match="fit"):
        make_segments(grid, SplitConfig(n_folds=8))
    with pytest.raises(SplitError, match="tz-aware"):
        make_segments(grid.tz_localize(None), SplitConfig())
    with pytest.raises(SplitError, match="together"):
        SplitConfig(holdout_start=datetime(2021, 1, 20, tzinfo=UTC))
    with pytest.raises(SplitError, match="fractions"):
        SplitConfig(validation_fraction=0.5, stacking_fraction=0.3, holdout_fraction=0.3)
    with pytest.raises(SplitError, match="later than"):
        make_segments(grid, SplitConfig(), label_end=grid)
