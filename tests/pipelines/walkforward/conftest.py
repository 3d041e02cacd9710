"""Fixtures: eight years of bundled daily bars, their training set, a tiny seeded ensemble."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
import torch

from rrr_live.features import default_spec
from rrr_pipelines.lib.ml.dataset import DatasetConfig, build_training_set
from rrr_pipelines.lib.ml.training_config import EnsembleConfig, MemberConfig
from rrr_pipelines.lib.sources.bundled import BundledSource

START, END = datetime(2004, 1, 1, tzinfo=UTC), datetime(2012, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def bars() -> pd.DataFrame:
    return BundledSource().fetch(START, END)


@pytest.fixture(scope="package")
def built(bars):
    return build_training_set(bars, default_spec(), DatasetConfig(horizon=5, embargo=5))


def tiny() -> EnsembleConfig:
    """One small MLP, two epochs: the same trainer as the demo ensemble, at test speed."""
    member = MemberConfig("mlp", "mlp", {"hidden": 8, "layers": 1}, max_epochs=2, batch_size=256)
    return EnsembleConfig(members=(member,), seed=3, num_threads=1, accelerator="cpu")
