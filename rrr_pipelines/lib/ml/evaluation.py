"""Honest holdout evaluation: models next to baselines, same period, same costs (Dagster-free).

Only the **final holdout** is evaluated. For every model (e.g. the ensemble) and every baseline:

* **IC metrics** of its score against the forward-return label on the holdout rows
  (:func:`rrr_pipelines.lib.ml.metrics.evaluate_scores`: pooled mode for 1-4 symbols, IC series
  over blocks of ``ic_block`` timestamps, Newey-West t-statistic, block-bootstrap CI, hit rate,
  decile spread). A constant score (buy-and-hold) has no IC: its IC columns are NaN.
* A **backtest with costs** through the trading core (``rrr_live.backtest.run_backtest``: fills
  at the next bar's open plus half-spread, impact and taker fee). The backtest is given
  ``history_bars`` bars before the holdout as history (volatility, ADV), but every score before
  the holdout is NaN, so nothing is traded there, and the statistics (Sharpe, drawdown, turnover,
  return, fees) are computed on the holdout part of the equity curve only.

Rule baselines (buy-and-hold, 20-day and 12-1 momentum) are the trading core's signal providers,
evaluated on all bars up to the holdout end (their look-back may reach before the holdout) and
traded only inside it. Score baselines (e.g. the ridge of :mod:`.baselines`) arrive as score
series, like the models. The best baseline is the one with the highest holdout Sharpe after
costs; the verdict says plainly whether the primary model beats it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.data import panel_from_bars
from rrr_live.backtest.engine import run_backtest
from rrr_live.backtest.stats import compute_stats
from rrr_live.domain.bars import interval_ns
from rrr_live.errors import RRRError
from rrr_live.strategy.signals import (
    BuyAndHold,
    PrecomputableSignal,
    PrecomputedScores,
    SignalProvider,
    momentum_12_1,
    momentum_20d,
)
from rrr_pipelines.lib.backtest.report import report_config
from rrr_pipelines.lib.ml.baselines import RULE_BASELINES
from rrr_pipelines.lib.ml.evaluation_render import (
    equity_plot_png,
    holdout_verdict,
    ic_plot_png,
)
from rrr_pipelines.lib.ml.metrics import evaluate_scores, pooled_ic_series
from rrr_pipelines.lib.ml.splits import Segment

IC_COLUMNS = (
    "ic_mean", "ic_t_nw", "ic_ci_low", "ic_ci_high", "ic_icir", "ic_n", "rank_ic_mean",
    "rank_ic_t_nw", "pooled_ic", "hit_rate", "quantile_spread",
)  # fmt: skip
BACKTEST_COLUMNS = (
    "sharpe", "sortino", "max_drawdown", "turnover", "total_return", "cagr", "fees",
    "n_fills", "exposure",
)  # fmt: skip
_RULE_SIGNALS: dict[str, Callable[[], SignalProvider]] = {
    "buy_and_hold": BuyAndHold,
    "momentum_20d": momentum_20d,
    "momentum_12_1": momentum_12_1,
}


class EvaluationError(RRRError, ValueError):
    """The evaluation inputs are unusable; the message names what is wrong."""


@dataclass(frozen=True)
class HoldoutPeriod:
    """The holdout: bar-open times ``start <= ts <= end`` (tz-aware UTC)."""

    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        start, end = pd.Timestamp(self.start), pd.Timestamp(self.end)
        if start.tzinfo is None or end.tzinfo is None or not start < end:
            raise EvaluationError(f"holdout needs tz-aware start < end, got {start}, {end}")
        object.__setattr__(self, "start", start.tz_convert("UTC"))
        object.__setattr__(self, "end", end.tz_convert("UTC"))

    @classmethod
    def of(cls, value: HoldoutPeriod | Segment | tuple[datetime, datetime]) -> HoldoutPeriod:
        """Coerce a period, a ``splits.Segment`` (its first/last kept ts) or a pair."""
        if isinstance(value, HoldoutPeriod):
            return value
        if isinstance(value, Segment):
            return cls(pd.Timestamp(value.start), pd.Timestamp(value.end))
        start, end = value
        return cls(pd.Timestamp(start), pd.Timestamp(end))

    @classmethod
    def from_training_set(cls, frame: pd.DataFrame) -> HoldoutPeriod:
        """First and last ``ts`` of the rows whose ``segment`` is ``holdout``."""
        ts = frame.loc[frame["segment"] == "holdout", "ts"]
        if ts.empty:
            raise EvaluationError("the training set has no holdout rows")
        return cls(ts.min(), ts.max())

    def mask(self, ts: pd.Index) -> npt.NDArray[np.bool_]:
        """Boolean mask of the timestamps inside the period."""
        index = pd.DatetimeIndex(ts)
        return np.asarray((index >= self.start) & (index <= self.end), dtype=bool)


def default_backtest_config() -> BacktestConfig:
    """Costs of the backtest report (2 bp taker fee, 1 bp half-spread, sqrt impact 0.1).

    The drawdown halt is 60 % (not the live 2 %) so that the holdout statistics describe the
    strategy rather than the halt; the gate checks the drawdown separately.
    """
    return report_config()


@dataclass(frozen=True)
class EvaluationConfig:
    """How the holdout is evaluated.

    Attributes:
        backtest: Costs, limits and sizing shared by every model and baseline.
        primary: Name of the model the verdict is about (``None``: the first model given).
        rule_baselines: Rule baselines to add (names from ``baselines.RULE_BASELINES``).
        hold_buy_and_hold: Buy-and-hold never rebalances (``rebalance_threshold = inf``);
            ``False`` rebalances it like every other strategy.
        history_bars: Bars per symbol before the holdout given to the backtest as history.
        ic_block: Timestamps per block of the pooled IC series.
        n_quantiles: Quantiles of the spread metric (10 = decile spread).
        seed: Bootstrap seed.
    """

    backtest: BacktestConfig = field(default_factory=default_backtest_config)
    primary: str | None = None
    rule_baselines: tuple[str, ...] = RULE_BASELINES
    hold_buy_and_hold: bool = True
    history_bars: int = 64
    ic_block: int = 21
    n_quantiles: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rule_baselines) - set(RULE_BASELINES))
        if unknown:
            raise EvaluationError(f"unknown rule baselines {unknown}; known {RULE_BASELINES}")
        if self.history_bars < 0 or self.ic_block < 2 or self.n_quantiles < 2:
            raise EvaluationError("need history_bars >= 0, ic_block >= 2, n_quantiles >= 2")


@dataclass(frozen=True)
class HoldoutBacktest:
    """A backtest restricted to the holdout: statistics, the holdout equity curve and the fills.

    Attributes:
        stats: ``compute_stats`` over the holdout equity points, plus ``n_fills``.
        equity: The trading core's equity rows (``ts`` = bar close) inside the holdout.
        fills: Every fill of the backtest run (the history bars before the holdout included;
            nothing trades there), so that cumulative fills give the position at any holdout
            time (``rrr_pipelines.lib.risk.portfolio.strategy_positions``).
    """

    stats: dict[str, float]
    equity: pd.DataFrame
    fills: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class EvaluationReport:
    """Models and baselines on the holdout.

    Attributes:
        table: One row per model/baseline (index ``name``): ``kind`` (``model`` /
            ``baseline``), the IC columns and the backtest columns.
        primary: The model the verdict is about (``None`` when only baselines were given).
        best_baseline: Baseline with the highest holdout Sharpe after costs.
        beats_best_baseline: Primary Sharpe strictly above the best baseline's.
        verdict: Plain-language conclusion.
        period: The holdout.
        metrics: Full ``evaluate_scores`` output per name.
        backtests: Holdout backtest per name.
        ic_series: Pooled IC per block, per name (non-constant scores only).
        ic_plot_png: IC-over-time plot.
        equity_plot_png: Cumulative-return (equity) plot.
    """

    table: pd.DataFrame
    primary: str | None
    best_baseline: str | None
    beats_best_baseline: bool
    verdict: str
    period: HoldoutPeriod
    metrics: dict[str, dict[str, float]]
    backtests: dict[str, HoldoutBacktest]
    ic_series: dict[str, pd.Series]
    ic_plot_png: bytes
    equity_plot_png: bytes

    def row(self, name: str) -> dict[str, float]:
        """Numbers of one row of the table (``kind`` left out)."""
        if name not in self.table.index:
            raise EvaluationError(f"no row {name!r}; rows: {list(self.table.index)}")
        return {k: float(v) for k, v in self.table.loc[name].drop("kind").items()}

    def to_dict(self) -> dict[str, float]:
        """Key floats for MLflow metrics / Dagster metadata (``"<name>.<column>"`` and totals).

        Non-finite values are left out (MLflow and JSON metadata dislike them).
        """
        out: dict[str, float] = {}
        for name in self.table.index:
            for key, value in self.row(str(name)).items():
                if math.isfinite(value):
                    out[f"{name}.{key}"] = value
        if self.best_baseline is not None:
            sharpe = self.row(self.best_baseline)["sharpe"]
            if math.isfinite(sharpe):
                out["best_baseline.sharpe"] = sharpe
        out["beats_best_baseline"] = float(self.beats_best_baseline)
        out["holdout_days"] = float((self.period.end - self.period.start).days)
        return out


def score_series(
    frame: pd.DataFrame, values: npt.ArrayLike, name: str, rows: npt.ArrayLike | None = None
) -> pd.Series:
    """Index predictions by ``(ts, symbol)`` from a frame with ``ts`` and ``symbol`` columns.

    Args:
        frame: E.g. the training set.
        values: One prediction per selected row.
        name: Series name.
        rows: Boolean row mask of ``frame`` the values belong to (all rows by default).
    """
    sel = frame if rows is None else frame.loc[np.asarray(rows, dtype=bool)]
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (len(sel),):
        raise EvaluationError(f"{name}: {arr.shape[0]} values for {len(sel)} rows")
    index = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(sel["ts"]), sel["symbol"].astype(str)], names=["ts", "symbol"]
    )
    return pd.Series(arr, index=index, name=name)


def _as_scores(values: pd.Series, what: str) -> pd.Series:
    names = list(values.index.names or [])
    if "ts" not in names or "symbol" not in names:
        raise EvaluationError(f"{what} must be indexed by (ts, symbol), got {names}")
    if getattr(values.index.get_level_values("ts").dtype, "tz", None) is None:
        raise EvaluationError(f"{what}: ts must be tz-aware UTC")
    return values.astype(np.float64)


def _label_series(labels: pd.Series | pd.DataFrame) -> pd.Series:
    if isinstance(labels, pd.DataFrame):
        if "label" not in labels.columns:
            raise EvaluationError("labels frame needs a 'label' column")
        if {"ts", "symbol"} <= set(labels.columns):
            labels = labels.set_index(["ts", "symbol"])
        labels = labels["label"]
    return _as_scores(labels, "labels")


def _in_period(values: pd.Series, period: HoldoutPeriod) -> pd.Series:
    return values[period.mask(values.index.get_level_values("ts"))]


def rule_scores(name: str, bars: pd.DataFrame) -> pd.Series:
    """Scores of rule baseline ``name`` (e.g. ``momentum_20d``) on every bar, by ``(ts, symbol)``.

    Raises:
        EvaluationError: for an unknown rule baseline.
    """
    if name not in _RULE_SIGNALS:
        raise EvaluationError(f"unknown rule baseline {name!r}; known {sorted(_RULE_SIGNALS)}")
    signal = _RULE_SIGNALS[name]()
    panel = panel_from_bars(bars)
    assert isinstance(signal, PrecomputableSignal)
    values = signal.precompute(panel)
    index = pd.MultiIndex.from_arrays(
        [
            pd.to_datetime(panel.ts_ns, unit="ns", utc=True),
            pd.Index(np.asarray(panel.symbols)[panel.symbol_id], dtype=str),
        ],
        names=["ts", "symbol"],
    )
    return pd.Series(values, index=index, name=name)


def _ic_metrics(score: pd.Series, label: pd.Series, cfg: EvaluationConfig) -> dict[str, float]:
    joined = pd.concat({"s": score, "y": label}, axis=1, join="inner").dropna()
    if len(joined) < 2 * cfg.n_quantiles or joined["s"].nunique() < 2:
        return {k: math.nan for k in IC_COLUMNS}  # a constant score has no IC
    out = evaluate_scores(
        joined["s"], joined["y"], n_quantiles=cfg.n_quantiles, block=cfg.ic_block, seed=cfg.seed
    )
    for prefix in ("ic", "rank_ic"):  # identical block ICs: zero standard error, infinite t
        mean, std = out[f"{prefix}_mean"], out[f"{prefix}_std"]
        if std == 0.0 and mean != 0.0 and out[f"{prefix}_n"] > 1:
            out[f"{prefix}_t_nw"] = math.copysign(math.inf, mean)
    return out


def _history_start(bars: pd.DataFrame, period: HoldoutPeriod, n: int) -> pd.Timestamp:
    before = pd.DatetimeIndex(bars.loc[bars["ts"] < period.start, "ts"]).unique().sort_values()
    return before[-n] if n and len(before) else period.start


def holdout_backtest(
    bars: pd.DataFrame,
    score: pd.Series,
    period: HoldoutPeriod,
    config: BacktestConfig,
    history_bars: int = 64,
) -> HoldoutBacktest:
    """Trade ``score`` inside ``period`` only and compute the statistics over ``period``.

    Args:
        bars: Canonical bars (one interval); bars before ``period`` serve as history.
        score: Scores indexed by ``(ts, symbol)``; rows outside ``period`` are ignored.
        period: The holdout.
        config: Costs, limits and sizing.
        history_bars: Bars before the period handed to the backtest (no trading there).

    Returns:
        Holdout statistics (``compute_stats`` over the holdout equity points) and equity.
    """
    lo = _history_start(bars, period, history_bars)
    window = bars.loc[(bars["ts"] >= lo) & (bars["ts"] <= period.end)]
    scores = _in_period(_as_scores(score, str(score.name)), period)
    result = run_backtest(window, PrecomputedScores(scores, str(score.name)), config)
    step = pd.Timedelta(interval_ns(str(window["interval"].iloc[0])), unit="ns")
    eq = result.equity.loc[result.equity["ts"] - step >= period.start].reset_index(drop=True)
    fills = result.fills.loc[result.fills["ts"] >= period.start]
    ts_ns = pd.DatetimeIndex(eq["ts"]).as_unit("ns").asi8
    stats = compute_stats(
        ts_ns,
        eq["equity"].to_numpy(np.float64),
        eq["gross_exposure"].to_numpy(np.float64),
        float(fills["notional"].sum()),
        float(fills["fee"].sum()),
        config.periods_per_year,
    )
    stats["n_fills"] = float(len(fills))
    return HoldoutBacktest(stats, eq, result.fills.reset_index(drop=True))


def _strategy_config(name: str, cfg: EvaluationConfig) -> BacktestConfig:
    if name == "buy_and_hold" and cfg.hold_buy_and_hold:
        return replace(
            cfg.backtest, strategy=replace(cfg.backtest.strategy, rebalance_threshold=math.inf)
        )
    return cfg.backtest


def evaluate_holdout(
    bars: pd.DataFrame,
    model_scores: Mapping[str, pd.Series],
    labels: pd.Series | pd.DataFrame,
    holdout: HoldoutPeriod | Segment | tuple[datetime, datetime],
    *,
    baseline_scores: Mapping[str, pd.Series] | None = None,
    config: EvaluationConfig | None = None,
) -> EvaluationReport:
    """Evaluate models and baselines on the holdout (see the module docstring).

    Args:
        bars: Canonical bars of every symbol (one interval), at least through the holdout.
        model_scores: Model predictions by name, indexed by ``(ts, symbol)``.
        labels: ``make_labels`` output (or its ``label`` Series, or a training set).
        holdout: The holdout period or segment.
        baseline_scores: Score baselines by name (e.g. ``{"ridge": ...}``).
        config: Evaluation settings.

    Returns:
        The report.

    Raises:
        EvaluationError: on unusable inputs (no holdout rows, clashing names, naive ts).
    """
    cfg = config or EvaluationConfig()
    period = HoldoutPeriod.of(holdout)
    label = _in_period(_label_series(labels), period).dropna()
    if label.empty:
        raise EvaluationError(f"no finite labels in the holdout {period.start}..{period.end}")
    primary = cfg.primary or next(iter(model_scores), None)
    if primary is not None and primary not in model_scores:
        raise EvaluationError(f"primary {primary!r} is not among the models {list(model_scores)}")
    upto = bars.loc[bars["ts"] <= period.end]
    entries: dict[str, tuple[str, pd.Series]] = {}
    sources = [("model", model_scores), ("baseline", baseline_scores or {})]
    sources.append(("baseline", {n: rule_scores(n, upto) for n in cfg.rule_baselines}))
    for kind, scores in sources:
        for name, values in scores.items():
            if name in entries:
                raise EvaluationError(f"name {name!r} is used twice")
            held = _in_period(_as_scores(values, name), period).rename(name)
            if held.dropna().empty:
                raise EvaluationError(f"{name} has no finite score inside the holdout")
            entries[name] = (kind, held)
    metrics: dict[str, dict[str, float]] = {}
    backtests: dict[str, HoldoutBacktest] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name, (kind, held) in entries.items():
        metrics[name] = _ic_metrics(held, label, cfg)
        backtests[name] = holdout_backtest(
            bars, held, period, _strategy_config(name, cfg), cfg.history_bars
        )
        rows[name] = {"kind": kind}
        rows[name].update({c: metrics[name].get(c, math.nan) for c in IC_COLUMNS})
        rows[name].update({c: backtests[name].stats.get(c, math.nan) for c in BACKTEST_COLUMNS})
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("name")
    best = _best_baseline(table)
    beats, verdict = holdout_verdict(table, primary, best)
    ic = {
        n: pooled_ic_series(h, label, "pearson", cfg.ic_block)
        for n, (_, h) in entries.items()
        if math.isfinite(metrics[n]["ic_mean"])
    }
    return EvaluationReport(
        table, primary, best, beats, verdict, period, metrics, backtests, ic,
        ic_plot_png(ic, period), equity_plot_png(backtests, period),
    )  # fmt: skip


def _best_baseline(table: pd.DataFrame) -> str | None:
    sharpe = table.loc[table["kind"] == "baseline", "sharpe"].astype(float).dropna()
    return None if sharpe.empty else str(sharpe.idxmax())
