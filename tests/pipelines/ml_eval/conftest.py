"""Shared real-data fixtures: bundled S&P 500 + NASDAQ daily bars, the training set, ridge."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pytest

from rrr_live.features import FeatureSpec, default_spec
from rrr_pipelines.lib.ml.baselines import LinearBaseline, fit_ridge_frame
from rrr_pipelines.lib.ml.dataset import DatasetConfig, build_training_set
from rrr_pipelines.lib.ml.evaluation import HoldoutPeriod
from rrr_pipelines.lib.sources.bundled import BundledSource


@dataclass(frozen=True)
class RealData:
    bars: pd.DataFrame
    spec: FeatureSpec
    frame: pd.DataFrame  # the training set (features, label, label_end, segment)
    period: HoldoutPeriod
    ridge: LinearBaseline

    @property
    def holdout(self) -> pd.Series:
        return self.frame["segment"] == "holdout"

    @property
    def labels(self) -> pd.Series:
        return self.frame.set_index(["ts", "symbol"])["label"]


@pytest.fixture(scope="session")
def real() -> RealData:
    bars = BundledSource().fetch(datetime(1999, 1, 1, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC))
    spec = default_spec()
    frame, _ = build_training_set(bars, spec, DatasetConfig(horizon=5, embargo=5))
    ridge = fit_ridge_frame(frame, list(spec.names))
    return RealData(bars, spec, frame, HoldoutPeriod.from_training_set(frame), ridge)


@pytest.fixture
def linear_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register the ``linear`` architecture for the test if the registry lacks it."""
    from rrr_live.models.architecture_registry import ARCHITECTURES
    from rrr_live.models.linear import LinearRegressor

    if "linear" not in ARCHITECTURES:
        monkeypatch.setitem(ARCHITECTURES, "linear", LinearRegressor)  # type: ignore[index]
    yield
