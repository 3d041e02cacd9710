"""Settings of the live feedback (thresholds, reference window) and the one judgement helper.

The ``feature_drift`` asset and the ``live_drift_retrain`` sensor both call :func:`judge_runner`,
so they judge the journal by the same code and the same settings.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd
from pydantic import Field

from rrr_pipelines.defs.resources import DatabaseResource

if TYPE_CHECKING:
    from rrr_pipelines.lib.live_feedback.evaluate import FeedbackSettings, LiveEvaluation

TRAINING_SET = dg.AssetKey("training_set")


class LiveFeedbackResource(dg.ConfigurableResource):
    """Which journal to judge, against which training window, with which thresholds.

    The reference (training) window is ``[reference_start, reference_end)`` when both are set;
    otherwise it is read from the latest ``training_set`` materialization: from its first
    segment's start to its holdout start (the rows the model was trained on).
    """

    runners: list[str] = Field(default_factory=list, description="runners to judge ([]: all)")
    model_name: str = Field(default="rrr-ensemble", description="registered model name")
    source: str = Field(default="bundled", description="market_bars source of the training bars")
    interval: str = Field(default="1d", description="bar interval of the training bars")
    reference_start: str = Field(default="", description="training window start (ISO; '' auto)")
    reference_end: str = Field(default="", description="training window end, exclusive")
    window_bars: int = Field(default=200, description="live bar times judged for drift")
    psi_threshold: float = Field(default=0.25, description="PSI above this is drift")
    psi_bins: int = Field(default=10, description="quantile bins of the training window")
    min_count: int = Field(default=50, description="fewest values per side to judge a feature")
    ic_threshold: float = Field(default=0.0, description="champion live IC below this is decay")
    min_pairs: int = Field(default=100, description="fewest scored pairs before decay is judged")
    performance_bars: int = Field(
        default=50_000, description="latest batches live_performance reads"
    )
    half_spread_bps: float = Field(default=1.0, description="backtest half-spread (slippage ref)")
    max_data_age_days: float = Field(default=90.0, description="training data older is stale")

    def settings(self) -> FeedbackSettings:
        """The thresholds as the library's :class:`FeedbackSettings`."""
        from rrr_pipelines.lib.live_feedback.evaluate import FeedbackSettings

        return FeedbackSettings(
            window_bars=self.window_bars, psi_threshold=self.psi_threshold,
            psi_bins=self.psi_bins, min_count=self.min_count, ic_threshold=self.ic_threshold,
            min_pairs=self.min_pairs,
        )  # fmt: skip

    def reference_window(self, instance: dg.DagsterInstance) -> tuple[datetime, datetime] | str:
        """``(start, end)`` of the training window, or why it is unknown."""
        if self.reference_start and self.reference_end:
            return utc_time(self.reference_start), utc_time(self.reference_end)
        event = instance.get_latest_materialization_event(TRAINING_SET)
        mat = event.asset_materialization if event is not None else None
        meta = mat.metadata if mat is not None else {}
        if "segments" not in meta or not meta.get("holdout_start"):
            return "no training window: set reference_start/end or materialize training_set"
        segments: Any = meta["segments"].value
        if isinstance(segments, str):
            segments = json.loads(segments)
        starts = [s["start"] for s in segments.values() if isinstance(s, dict) and "start" in s]
        return min(utc_time(s) for s in starts), utc_time(str(meta["holdout_start"].value))

    def runner_list(self, database: DatabaseResource) -> list[str]:
        """The runners to judge: the configured ones, else every runner in the journal."""
        from rrr_pipelines.lib.live_feedback.journal import runner_names

        return list(self.runners) or runner_names(database.url)


def utc_time(text: str) -> datetime:
    """An ISO time as a tz-aware UTC datetime (a naive one is taken as UTC)."""
    ts = pd.Timestamp(text)
    out: datetime = (
        ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    ).to_pydatetime()
    return out


def reference_features(
    database: DatabaseResource, feedback: LiveFeedbackResource, window: tuple[datetime, datetime]
) -> pd.DataFrame:
    """Features of the training window's bars (the batch code the ``features`` asset runs)."""
    from rrr_live.features import compute_features, default_spec

    bars = database.load_bars(
        source=feedback.source, interval=feedback.interval, start=window[0], end=window[1]
    )
    if bars.empty:
        return pd.DataFrame(columns=list(default_spec().names))
    return compute_features(bars, default_spec()).reset_index()


def judge_runner(
    database: DatabaseResource,
    feedback: LiveFeedbackResource,
    runner: str,
    reference: pd.DataFrame,
) -> LiveEvaluation | str:
    """Judge one runner's journal against the reference features, or say why it cannot."""
    from rrr_live.features import default_spec
    from rrr_pipelines.lib.live_feedback.evaluate import evaluate
    from rrr_pipelines.lib.live_feedback.journal import read_batches

    if reference.empty:
        return f"no {feedback.source}/{feedback.interval} bars in the training window"
    spec = default_spec()
    batches = read_batches(database.url, runner, last=feedback.window_bars + spec.warmup_bars())
    if not batches:
        return f"runner {runner!r} journaled no batch"
    return evaluate(runner, batches, reference, spec, feedback.settings())
