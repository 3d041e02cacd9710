"""Dynamic stress: crisis windows replayed through the trading core with the live risk limits.

A static stress (:mod:`rrr_pipelines.lib.risk.stress`) holds today's positions through a whole
crisis. A dynamic stress runs the candidate's own out-of-sample scores through each window with
:func:`rrr_live.backtest.engine.run_backtest`: the same sizing, costs and pre-trade checks as
the evaluation, but the **live** :class:`~rrr_live.risk.limits.RiskLimits` (2 % drawdown halt,
``on_halt="flatten"``), so the engine trades, halts and flattens as the runner would.

Window convention (the static one): a window ``(start, end)`` is the P&L from the close of the
bar dated ``start`` to the close of the bar dated ``end``. So that the book is in position at
that close, the scores of the window are used from the bar *before* ``start`` (its close
decides, the order fills at the open of ``start``); ``history_bars`` earlier bars give the
sizing its volatility and ADV history, with no score there (nothing trades). The loss is
``1 - equity(end) / equity(start)`` of the whole account. A window is **covered** only when
every score it needs (from the bar before ``start`` to ``end``) lies inside the out-of-sample
span; others are listed as not covered and never judged on in-sample predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.engine import run_backtest
from rrr_live.backtest.result import BacktestResult
from rrr_live.domain.bars import interval_ns
from rrr_live.risk.limits import RiskLimits
from rrr_live.strategy.signals import PrecomputedScores, SignalProvider
from rrr_pipelines.lib.backtest.report import report_config
from rrr_pipelines.lib.risk.stress import NAMED_CRISES, worst_windows

WORST_DAYS = (1, 5, 20)


@dataclass(frozen=True)
class StressWindow:
    """A window: P&L from the close of the bar dated ``start`` to the close of ``end``."""

    name: str
    start: pd.Timestamp
    end: pd.Timestamp


def live_stress_config(base: BacktestConfig | None = None) -> BacktestConfig:
    """The evaluation's costs and sizing with the live risk limits (2 % halt, flatten)."""
    return replace(base or report_config(), risk=RiskLimits())


def close_returns(bars: pd.DataFrame) -> pd.DataFrame:
    """Percent close-to-close returns, one column per symbol, indexed by bar ``ts``."""
    closes = bars.pivot(index="ts", columns="symbol", values="close").sort_index()
    return 100.0 * closes.pct_change().iloc[1:]


def crisis_windows(
    bars: pd.DataFrame, span: tuple[pd.Timestamp, pd.Timestamp], days: Sequence[int] = WORST_DAYS
) -> list[StressWindow]:
    """The named crises plus the worst ``days``-day windows of a long book inside ``span``.

    The worst windows are those of an equal-weight long book over the span's close-to-close
    returns (the moves a fully long index book fears most).
    """
    out = [
        StressWindow(s.name, pd.Timestamp(s.start, tz="UTC"), pd.Timestamp(s.end, tz="UTC"))
        for s in NAMED_CRISES
    ]
    returns = close_returns(bars)
    inside = returns.loc[(returns.index > span[0]) & (returns.index <= span[1])]
    book = {str(c): 1.0 / len(inside.columns) for c in inside.columns}
    for n in days:
        if len(inside) < n + 1:
            continue
        worst = worst_windows(inside, book, n, count=1).iloc[0]
        if worst["start"]:
            out.append(
                StressWindow(
                    f"worst {n}-day (OOS)",
                    pd.Timestamp(worst["start"], tz="UTC"),
                    pd.Timestamp(worst["end"], tz="UTC"),
                )
            )
    return out


def _uncovered(window: StressWindow) -> dict[str, Any]:
    return {"scenario": window.name, "start": str(window.start.date()),
            "end": str(window.end.date()), "covered": False}  # fmt: skip


def _state_path(
    result: BacktestResult, lo: pd.Timestamp, hi: pd.Timestamp, step: pd.Timedelta
) -> tuple[str, pd.Timestamp | None]:
    """States after the close of ``lo`` through the close of ``hi``, by bar date."""
    steps = ["ACTIVE"]
    halted_at = None
    for change in result.state_changes:
        when = pd.Timestamp(change.ts_ns, unit="ns", tz="UTC") - step  # mark at a bar's close
        if lo < when <= hi:
            steps.append(f"{change.new.name} {when.date()}")
            if change.new.name == "HALTED" and halted_at is None:
                halted_at = when
    return " → ".join(steps), halted_at


def replay_window(
    bars: pd.DataFrame,
    signal: SignalProvider,
    window: StressWindow,
    config: BacktestConfig,
    history_bars: int = 64,
) -> dict[str, Any]:
    """Run one window through the trading core and measure loss, halt and state path.

    Args:
        bars: Canonical bars (one interval) covering the window and its history.
        signal: Scores (e.g. ``PrecomputedScores`` of the candidate's OOS forecasts).
        window: The window.
        config: Costs, sizing and risk limits.
        history_bars: Bars before the decision bar given as history.

    Returns:
        ``scenario, start, end, covered, bars, loss, max_loss, halted, halt_date,
        bars_to_halt, state_path, fees, n_fills, static_loss, value_at_start, book_at_start``
        (losses as fractions of ``value_at_start``, the account value at the close of
        ``start``; ``static_loss``: ``book_at_start`` held, never traded, through the window).
    """
    grid = pd.DatetimeIndex(bars["ts"]).unique().sort_values()
    i_start = int(grid.searchsorted(window.start, side="right")) - 1
    i_end = int(grid.searchsorted(window.end, side="right")) - 1
    if i_start < 1 or i_end <= i_start:
        return _uncovered(window)
    lo = grid[max(0, i_start - 1 - history_bars)]
    part = bars.loc[(bars["ts"] >= lo) & (bars["ts"] <= grid[i_end])]
    result = run_backtest(part, signal, config)
    step = pd.Timedelta(interval_ns(str(part["interval"].iloc[0])), unit="ns")
    eq = result.equity.set_index(pd.DatetimeIndex(result.equity["ts"]) - step)
    path = eq.loc[grid[i_start] : grid[i_end], "equity"]
    e0 = float(path.iloc[0])
    fills = result.fills.loc[pd.DatetimeIndex(result.fills["ts"]) > grid[i_start]]  # bar opens
    states, halted_at = _state_path(result, grid[i_start], grid[i_end], step)
    held = _book_at(result, part, grid[i_start])
    closes = part.pivot(index="ts", columns="symbol", values="close")
    static = float((held * (closes.loc[grid[i_end]] / closes.loc[grid[i_start]] - 1.0)).sum())
    n_to_halt = math.nan
    if halted_at is not None:
        n_to_halt = float(int(grid.searchsorted(halted_at)) - i_start)
    return {
        "scenario": window.name, "start": str(grid[i_start].date()),
        "end": str(grid[i_end].date()), "covered": True, "bars": i_end - i_start,
        "loss": 1.0 - float(path.iloc[-1]) / e0, "max_loss": 1.0 - float(path.min()) / e0,
        "halted": halted_at is not None,
        "halt_date": "" if halted_at is None else str(halted_at.date()),
        "bars_to_halt": n_to_halt, "state_path": states, "fees": float(fills["fee"].sum()),
        "n_fills": len(fills), "static_loss": -static / e0, "value_at_start": e0,
        "book_at_start": {str(k): float(v) for k, v in held.items()},
    }  # fmt: skip


def _book_at(result: BacktestResult, bars: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    """Position values per symbol at the close of the bar dated ``at``."""
    fills = result.fills.loc[pd.DatetimeIndex(result.fills["ts"]) <= at]  # filled at bar opens
    signed = np.where(fills["side"].astype(str).str.lower() == "buy", 1.0, -1.0)
    qty = (
        pd.Series(signed * fills["qty"].to_numpy(np.float64))
        .groupby(fills["symbol"].to_numpy())
        .sum()
    )
    close = bars.loc[bars["ts"] == at].set_index("symbol")["close"]
    return (qty.reindex(close.index).fillna(0.0) * close).astype(np.float64)


def dynamic_stress(
    bars: pd.DataFrame,
    scores: pd.Series,
    windows: Sequence[StressWindow],
    config: BacktestConfig | None = None,
    history_bars: int = 64,
) -> pd.DataFrame:
    """Replay every window the scores cover; list the others as not covered.

    Args:
        bars: Canonical bars.
        scores: Out-of-sample scores indexed by ``(ts, symbol)``.
        windows: Windows to replay (:func:`crisis_windows`).
        config: Costs, sizing and limits (default :func:`live_stress_config`).
        history_bars: Bars of history before each window.

    Returns:
        One row per window (see :func:`replay_window`), covered ones first, worst loss first.
    """
    cfg = config or live_stress_config()
    ts = pd.DatetimeIndex(scores.index.get_level_values("ts"))
    first, last = ts.min(), ts.max()
    grid = pd.DatetimeIndex(bars["ts"]).unique().sort_values()
    rows = []
    for w in windows:
        i_start = int(grid.searchsorted(w.start, side="right")) - 1
        decide = grid[i_start - 1] if i_start >= 1 else None
        if decide is None or decide < first or w.end > last:
            rows.append(_uncovered(w))
            continue
        inside = (ts >= decide) & (ts <= w.end)
        signal = PrecomputedScores(scores[inside].rename("score"), "candidate")
        rows.append(replay_window(bars, signal, w, cfg, history_bars))
    table = pd.DataFrame(rows)
    if "loss" in table:
        table = table.sort_values(["covered", "loss"], ascending=[False, False], kind="stable")
    return table.reset_index(drop=True)


def worst_dynamic_loss(table: pd.DataFrame) -> float:
    """Largest loss among covered windows (NaN when none is covered)."""
    if "loss" not in table or not table["covered"].astype(bool).any():
        return math.nan
    return float(table.loc[table["covered"].astype(bool), "loss"].max())
