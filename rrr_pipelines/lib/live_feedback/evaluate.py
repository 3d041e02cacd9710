"""One judgement of the live journal, shared by the ``feature_drift`` asset and the drift sensor.

Drift: PSI per feature of the live features over the last ``window_bars`` bar times against the
training window's features (:mod:`~rrr_pipelines.lib.live_feedback.drift`). Live features are
computed by the same batch code as training (``rrr_live.features.compute_features``) on the
journal's bars, with the batches before the window as warm-up. Decay: the champion's live IC
(:mod:`~rrr_pipelines.lib.live_feedback.performance`) below ``ic_threshold`` over at least
``min_pairs`` pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from rrr_live.features import FeatureSpec
from rrr_pipelines.lib.live_feedback.drift import DriftReport, feature_drift
from rrr_pipelines.lib.live_feedback.journal import Batch, bars_frame
from rrr_pipelines.lib.live_feedback.performance import scored_pairs, version_scores


@dataclass(frozen=True)
class FeedbackSettings:
    """Thresholds of the live judgement (documented defaults).

    Attributes:
        window_bars: Bar times of the live window judged for drift.
        psi_threshold: PSI above which a feature has drifted.
        psi_bins: Quantile bins of the training window.
        min_count: Fewest finite values per side for a feature to be judged.
        skip_kinds: Feature kinds never judged (calendar features follow the date).
        ic_threshold: Champion live IC below this is decay.
        min_pairs: Fewest scored pairs before decay is judged.
    """

    window_bars: int = 200
    psi_threshold: float = 0.25
    psi_bins: int = 10
    min_count: int = 50
    skip_kinds: tuple[str, ...] = ("calendar",)
    ic_threshold: float = 0.0
    min_pairs: int = 100


@dataclass(frozen=True)
class LiveEvaluation:
    """What the journal says about the serving model.

    Attributes:
        runner: Runner name.
        version: Champion version of the last batch ("" when none).
        last_seq: Sequence of the last batch judged.
        drift: PSI per feature.
        scores: ``version_scores`` of the judged batches.
        decay: Champion live IC below the threshold (enough pairs).
        champion_ic: That IC (NaN when not computable).
        window: ``(first, last)`` bar start of the drift window.
    """

    runner: str
    version: str
    last_seq: int
    drift: DriftReport
    scores: pd.DataFrame
    decay: bool
    champion_ic: float
    window: tuple[str, str] = field(default=("", ""))

    @property
    def reasons(self) -> list[str]:
        """``drift`` and/or ``decay`` when breached."""
        return [r for r, hit in (("drift", bool(self.drift.drifted)), ("decay", self.decay)) if hit]

    def breach_key(self) -> str:
        """Identity of the breach: runner, version, reasons and drifted features ("" if none)."""
        if not self.reasons:
            return ""
        return (
            f"{self.runner}|{self.version}|{'+'.join(self.reasons)}|{','.join(self.drift.drifted)}"
        )


def live_features(batches: Sequence[Batch], spec: FeatureSpec, window_bars: int) -> pd.DataFrame:
    """Features of the journal's bars, rows of the last ``window_bars`` bar times only."""
    from rrr_live.features import compute_features

    bars = bars_frame(batches)
    if bars.empty:
        return pd.DataFrame(columns=list(spec.names))
    feats = compute_features(bars, spec).reset_index()
    times = feats["ts"].drop_duplicates().sort_values()
    return feats.loc[feats["ts"] >= times.iloc[-min(window_bars, len(times))]]


def evaluate(
    runner: str,
    batches: Sequence[Batch],
    reference: pd.DataFrame,
    spec: FeatureSpec,
    settings: FeedbackSettings = FeedbackSettings(),
) -> LiveEvaluation:
    """Judge drift and decay of ``runner`` from its journaled ``batches``.

    Args:
        runner: Runner name.
        batches: Its batches, oldest first (warm-up included).
        reference: Training-window features (``compute_features`` of the training bars).
        spec: The feature spec both were computed with.
        settings: Thresholds.
    """
    live = live_features(batches, spec, settings.window_bars)
    skip = [f.name for f in spec.features if f.kind in settings.skip_kinds]
    drift = feature_drift(
        reference, live, spec.names, threshold=settings.psi_threshold,
        bins=settings.psi_bins, min_count=settings.min_count, skip=skip,
    )  # fmt: skip
    scores = version_scores(scored_pairs(batches))
    version = batches[-1].champion if batches else ""
    champ = scores.loc[(scores["version"] == version) & (scores["role"] == "champion")]
    ic = float(champ["ic"].iloc[0]) if len(champ) else math.nan
    n = int(champ["n"].iloc[0]) if len(champ) else 0
    decay = n >= settings.min_pairs and math.isfinite(ic) and ic < settings.ic_threshold
    window = (str(live["ts"].min()), str(live["ts"].max())) if len(live) else ("", "")
    return LiveEvaluation(runner, version, batches[-1].seq if batches else 0, drift, scores,
                          decay, ic, window)  # fmt: skip
