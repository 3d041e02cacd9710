"""Bars → one training frame: features, labels and the segment of every row (Dagster-free).

The frame is long (one row per (ts, symbol)) with the spec's feature columns, ``label``,
``label_end`` and ``segment`` ∈ {train, validation, stacking, holdout, ""} where "" marks rows
dropped by purging or embargo. Rows in feature warm-up or without a complete label are absent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from rrr_live.features import FeatureSpec, compute_features
from rrr_pipelines.lib.ml.labels import LabelConfig, make_labels
from rrr_pipelines.lib.ml.splits import Segments, SplitConfig, make_segments
from rrr_pipelines.lib.ml.training import TrainingData

SEGMENT_NAMES = ("train", "validation", "stacking", "holdout")


@dataclass(frozen=True)
class DatasetConfig:
    """Label horizon, embargo and segment shares of the training set."""

    horizon: int = 5
    embargo: int = 5
    label_kind: str = "log"
    validation_fraction: float = 0.15
    stacking_fraction: float = 0.15
    holdout_fraction: float = 0.15

    def to_dict(self) -> dict[str, Any]:
        """Plain values for metadata and MLflow params."""
        return asdict(self)


def build_training_set(
    bars: pd.DataFrame, spec: FeatureSpec, config: DatasetConfig
) -> tuple[pd.DataFrame, Segments]:
    """Compute features and labels, drop warm-up and unlabelled rows, assign segments."""
    features = compute_features(bars, spec)
    labels = make_labels(bars, LabelConfig(horizon=config.horizon, kind=config.label_kind))  # type: ignore[arg-type]
    frame = features.join(labels, how="inner")
    complete = np.isfinite(frame[list(spec.names)].to_numpy()).all(axis=1) & np.isfinite(
        frame["label"].to_numpy()
    )
    frame = frame.loc[complete]
    segments = make_segments(
        frame.index.get_level_values("ts"),
        SplitConfig(
            horizon=config.horizon,
            embargo=config.embargo,
            validation_fraction=config.validation_fraction,
            stacking_fraction=config.stacking_fraction,
            holdout_fraction=config.holdout_fraction,
        ),
        label_end=frame["label_end"],
    )
    segment = np.full(len(frame), "", dtype=object)
    for name in SEGMENT_NAMES:
        segment[getattr(segments, name).rows] = name
    out = frame.reset_index()
    out["segment"] = pd.array(segment, dtype="str")
    return out, segments


def to_training_data(frame: pd.DataFrame, feature_names: list[str]) -> TrainingData:
    """Turn a training frame into the arrays the trainer takes (segment masks included)."""
    seg = frame["segment"].to_numpy(dtype=str)
    return TrainingData(
        X=frame[feature_names].to_numpy(dtype=np.float64),
        y=frame["label"].to_numpy(dtype=np.float64),
        masks={name: seg == name for name in SEGMENT_NAMES},
        feature_names=feature_names,
        ts=frame["ts"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]"),
        symbols=frame["symbol"].to_numpy(dtype=str),
    )


def segment_ranges(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """First/last timestamp and row count per segment, for reports."""
    out: dict[str, dict[str, Any]] = {}
    for name in SEGMENT_NAMES:
        part = frame.loc[frame["segment"] == name, "ts"]
        if len(part):
            out[name] = {"rows": len(part), "start": str(part.min()), "end": str(part.max())}
    return out


def bar_interval(frame: pd.DataFrame) -> str | None:
    """The bar interval a training frame was built on (``"1m"``, ``"1d"`` …), from its stamps.

    The most common gap between a symbol's consecutive rows (weekends and purged rows only
    lengthen a few gaps). A model records it, so a runner on other bars refuses the model.

    Args:
        frame: Rows with ``ts`` and ``symbol`` columns.

    Returns:
        The interval's name, or ``None`` when the gap is no known interval (or no gap exists).
    """
    from rrr_live.domain.bars import INTERVAL_NS

    ordered = frame.sort_values(["symbol", "ts"])
    gaps = ordered.groupby("symbol", sort=False)["ts"].diff().dropna()
    if gaps.empty:
        return None
    common = int(gaps.mode().iloc[0].value)
    return next((name for name, ns in INTERVAL_NS.items() if ns == common), None)
