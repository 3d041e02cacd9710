"""Out-of-sample report over the concatenated walk-forward test folds (Dagster-free).

The candidate's concatenated fold forecasts and every baseline (score baselines refitted per
fold, rule baselines) are evaluated by :func:`rrr_pipelines.lib.ml.evaluation.evaluate_holdout`
over the span the folds cover: the same IC metrics (IC, rank IC, ICIR, Newey-West t, bootstrap
CI, hit rate, decile spread) and the same cost-aware backtest through the trading core (the
evaluation's own limits: 60 % drawdown halt, so that the statistics describe the strategy; the
gate checks the drawdown, and the dynamic stress replays crises with the live 2 % halt). A
per-fold table gives IC and the candidate's return inside each fold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rrr_pipelines.lib.ml.evaluation import (
    EvaluationConfig,
    EvaluationReport,
    HoldoutPeriod,
    evaluate_holdout,
)
from rrr_pipelines.lib.ml.metrics import pooled_ic
from rrr_pipelines.lib.ml.walkforward import WalkForwardResult

LINEAGE_COLUMNS = ("ts", "symbol", "fold", "train_start", "train_end")


@dataclass(frozen=True)
class OOSReport:
    """The concatenated out-of-sample evaluation and its per-fold breakdown.

    Attributes:
        report: The evaluation over the concatenated span (candidate ``ensemble`` first).
        folds: One row per fold: test range, rows, IC of every scored name, candidate return.
        cumulative_ic: Cumulative pooled IC per block, per name (for the plot).
    """

    report: EvaluationReport
    folds: pd.DataFrame
    cumulative_ic: pd.DataFrame


def oos_period(scores: pd.DataFrame) -> HoldoutPeriod:
    """First and last test timestamp of the concatenated folds."""
    ts = pd.DatetimeIndex(scores["ts"])
    return HoldoutPeriod(ts.min(), ts.max())


def _fold_rows(
    scores: pd.DataFrame, labels: pd.Series, report: EvaluationReport, names: list[str]
) -> pd.DataFrame:
    equity = report.backtests["ensemble"].equity
    eq_ts = pd.DatetimeIndex(equity["ts"])
    rows: list[dict[str, Any]] = []
    for fold, part in scores.groupby("fold", sort=True):
        idx = pd.MultiIndex.from_frame(part[["ts", "symbol"]])
        target = labels.reindex(idx)
        row: dict[str, Any] = {
            "fold": int(fold),
            "train_start": str(part["train_start"].iloc[0]) if "train_start" in part else "",
            "train_end": str(part["train_end"].iloc[0]) if "train_end" in part else "",
            "test_start": str(part["ts"].min().date()),
            "test_end": str(part["ts"].max().date()),
            "rows": len(part),
        }
        for name in names:
            score = pd.Series(part[name].to_numpy(), index=idx)
            row[f"{name}_ic"] = pooled_ic(score, pd.Series(target.to_numpy(), index=idx))
        inside = equity.loc[(eq_ts > part["ts"].min()) & (eq_ts <= part["ts"].max()), "equity"]
        row["ensemble_return"] = (
            float(inside.iloc[-1] / inside.iloc[0] - 1.0) if len(inside) > 1 else math.nan
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _cumulative_ic(report: EvaluationReport) -> pd.DataFrame:
    return pd.DataFrame({n: s.cumsum() for n, s in report.ic_series.items()})


def evaluate_oos(
    bars: pd.DataFrame,
    walk_forward: WalkForwardResult | pd.DataFrame,
    labels: pd.DataFrame,
    config: EvaluationConfig | None = None,
) -> OOSReport:
    """Evaluate the candidate next to every baseline over the concatenated OOS span.

    Args:
        bars: Canonical bars through the end of the span.
        walk_forward: The walk-forward result, or its :meth:`WalkForwardResult.scores_frame`.
        labels: The training set (``ts``, ``symbol``, ``label``).
        config: Evaluation settings (default: the holdout evaluation's).

    Returns:
        The report, the per-fold table and the cumulative IC.
    """
    scores = (
        walk_forward.scores_frame() if isinstance(walk_forward, WalkForwardResult) else walk_forward
    )
    names = [c for c in scores.columns if c not in LINEAGE_COLUMNS]
    index = pd.MultiIndex.from_frame(scores[["ts", "symbol"]])
    series = {n: pd.Series(scores[n].to_numpy(np.float64), index=index, name=n) for n in names}
    report = evaluate_holdout(
        bars,
        {"ensemble": series["ensemble"]},
        labels,
        oos_period(scores),
        baseline_scores={n: s for n, s in series.items() if n != "ensemble"},
        config=config,
    )
    label = labels.set_index(["ts", "symbol"])["label"]
    return OOSReport(report, _fold_rows(scores, label, report, names), _cumulative_ic(report))
