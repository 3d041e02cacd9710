"""OOS report over concatenated folds: candidate next to refitted and rule baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rrr_live.features import default_spec
from rrr_pipelines.lib.ml.metrics import pooled_ic
from rrr_pipelines.lib.ml.oos import evaluate_oos
from rrr_pipelines.lib.ml.walkforward import (
    WalkForwardConfig,
    holdout_boundary,
    plan_folds,
    run_walk_forward,
)
from tests.pipelines.walkforward.conftest import tiny


@pytest.fixture(scope="module")
def walk(built):
    frame, segments = built
    plans = plan_folds(frame["ts"], holdout_boundary(segments), WalkForwardConfig())[:2]
    return run_walk_forward(frame, list(default_spec().names), tiny(), plans, horizon=5, embargo=5)


def test_oos_report_covers_the_concatenated_span(bars, built, walk):
    frame, _ = built
    oos = evaluate_oos(bars, walk, frame)
    table = oos.report.table
    assert {"ensemble", "ridge", "buy_and_hold", "momentum_20d"} <= set(table.index)
    assert table.loc["ensemble", "kind"] == "model" and table.loc["ridge", "kind"] == "baseline"
    ts = walk.predictions.index.get_level_values("ts")
    assert oos.report.period.start == ts.min() and oos.report.period.end == ts.max()
    for col in ("ic_mean", "ic_t_nw", "rank_ic_mean", "ic_icir", "hit_rate", "sharpe",
                "sortino", "max_drawdown", "turnover"):  # fmt: skip
        assert np.isfinite(table.loc["ensemble", col]), col
    assert list(oos.folds["fold"]) == [0, 1]
    assert oos.folds["rows"].sum() == len(walk.predictions)
    # the per-fold IC is the pooled IC of that fold's own rows
    fold0 = walk.folds[0].predictions
    label = frame.set_index(["ts", "symbol"])["label"].reindex(fold0.index)
    assert oos.folds.loc[0, "ensemble_ic"] == pytest.approx(pooled_ic(fold0, label))
    assert list(oos.cumulative_ic.columns) == list(oos.report.ic_series)
    ridge_oos = walk.baselines["ridge"]
    assert ridge_oos.index.equals(walk.predictions.index)


def test_scores_frame_round_trips(bars, built, walk):
    frame, _ = built
    scores = walk.scores_frame()
    assert list(scores.columns[:2]) == ["ts", "symbol"]
    a = evaluate_oos(bars, scores, frame).report.table
    b = evaluate_oos(bars, walk, frame).report.table
    pd.testing.assert_frame_equal(a, b)
