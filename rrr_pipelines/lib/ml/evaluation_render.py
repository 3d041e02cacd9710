"""What a holdout evaluation shows a person: the verdict sentence and the PNG plots.

Split from :mod:`rrr_pipelines.lib.ml.evaluation`, which computes the numbers; this module only
turns them into text and pictures (matplotlib Agg, no pyplot state).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from rrr_pipelines.lib.charts import agg_figure, figure_png

if TYPE_CHECKING:
    from rrr_pipelines.lib.ml.evaluation import HoldoutBacktest, HoldoutPeriod


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def holdout_verdict(table: pd.DataFrame, primary: str | None, best: str | None) -> tuple[bool, str]:
    """Return whether ``primary`` beats the best baseline, and the sentence that says so.

    Args:
        table: The evaluation table (one row per model or baseline, IC and backtest columns).
        primary: The model the verdict is about (``None``: no model was evaluated).
        best: The baseline with the highest holdout Sharpe (``None``: no baseline).
    """
    parts: list[str] = []
    beats = False
    if primary is None:
        parts.append("no model was evaluated")
    else:
        row = table.loc[primary]
        ic, t, lo, hi = (float(row[c]) for c in ("ic_mean", "ic_t_nw", "ic_ci_low", "ic_ci_high"))
        significant = t >= 2.0 and lo > 0.0
        parts.append(
            f"{primary} holdout IC {_fmt(ic, 4)} (Newey-West t {_fmt(t)}, 95 % CI "
            f"[{_fmt(lo, 4)}, {_fmt(hi, 4)}]): "
            + ("significantly above zero" if significant else "NOT significantly above zero")
        )
        sharpe = float(row["sharpe"])
        if best is None:
            parts.append(f"{primary} Sharpe {_fmt(sharpe)} after costs; no baseline to compare")
        else:
            b_sharpe = float(table.loc[best, "sharpe"])
            beats = math.isfinite(sharpe) and sharpe > b_sharpe
            sign = ">" if beats else ("<=" if math.isfinite(sharpe) else "vs")
            parts.append(
                f"{primary} Sharpe {_fmt(sharpe)} {sign} {best} Sharpe {_fmt(b_sharpe)} after "
                f"costs: the {primary} "
                + ("beats the best baseline" if beats else "does NOT beat the best baseline")
            )
    if best is not None and primary is None:
        parts.append(f"best baseline {best} Sharpe {_fmt(float(table.loc[best, 'sharpe']))}")
    return beats, "; ".join(parts) + "."


def _figure(title: str, ylabel: str) -> tuple[Any, Any]:
    fig = agg_figure((10, 4.5))
    ax = fig.subplots()
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def ic_plot_png(ic_series: Mapping[str, pd.Series], period: HoldoutPeriod) -> bytes:
    """PNG of each pooled-IC series over the holdout (matplotlib Agg, no pyplot state).

    Args:
        ic_series: Name -> IC per block, indexed by tz-aware block time.
        period: The holdout period (for the title).
    """
    fig, ax = _figure(f"Holdout IC per block, {period.start:%Y-%m-%d}..{period.end:%Y-%m-%d}", "IC")
    for name, series in ic_series.items():
        ax.plot(pd.DatetimeIndex(series.index).tz_convert(None), series.to_numpy(), label=name)
    ax.axhline(0.0, color="black", linewidth=0.8)
    if ic_series:
        ax.legend(loc="best")
    return figure_png(fig)


def equity_plot_png(backtests: Mapping[str, HoldoutBacktest], period: HoldoutPeriod) -> bytes:
    """PNG of each holdout equity curve, rebased to 1 (cumulative return after costs).

    Args:
        backtests: Name -> holdout backtest (its ``equity`` frame has ``ts`` and ``equity``).
        period: The holdout period (for the title).
    """
    fig, ax = _figure(
        f"Holdout equity after costs, {period.start:%Y-%m-%d}..{period.end:%Y-%m-%d}",
        "equity / initial",
    )
    for name, bt in backtests.items():
        eq = bt.equity
        if len(eq):
            rebased = eq["equity"].to_numpy() / float(eq["equity"].iloc[0])
            ax.plot(pd.DatetimeIndex(eq["ts"]).tz_convert(None), rebased, label=name)
    ax.legend(loc="best")
    return figure_png(fig)


def cumulative_ic_png(cumulative: pd.DataFrame) -> bytes:
    """PNG of the cumulative pooled IC per block of every scored name (OOS span).

    Args:
        cumulative: One column per name, indexed by tz-aware block time.
    """
    fig, ax = _figure("Cumulative out-of-sample IC (sum over blocks)", "cumulative IC")
    for name in cumulative.columns:
        series = cumulative[name].dropna()
        ax.plot(pd.DatetimeIndex(series.index).tz_convert(None), series.to_numpy(), label=name)
    ax.axhline(0.0, color="black", linewidth=0.8)
    if len(cumulative.columns):
        ax.legend(loc="best")
    return figure_png(fig)
