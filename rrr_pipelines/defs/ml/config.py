"""Run configuration of the ML assets (typed, visible in the Dagster launchpad)."""

import dagster as dg
from pydantic import Field


class DataSelection(dg.Config):
    """Which bars the ML pipeline trains on (the same universe and interval it will trade)."""

    source: str = Field(default="bundled", description="market_bars source to train on")
    interval: str = Field(default="1d", description="bar interval")


class DatasetSettings(dg.Config):
    """Labels and segments."""

    horizon: int = Field(default=5, description="label horizon in bars")
    embargo: int = Field(default=5, description="bars dropped after each segment boundary")
    holdout_fraction: float = Field(
        default=0.15, description="final holdout share (never tuned on)"
    )


class TrainingSettings(dg.Config):
    """Ensemble training knobs (members come from rrr_pipelines.lib.ml.training_config)."""

    seed: int = Field(default=42, description="global seed")
    max_epochs: int = Field(
        default=30, description="epoch cap per member (early stopping ends sooner)"
    )
    accelerator: str = Field(default="auto", description="auto (CUDA when present) | cpu | gpu")
