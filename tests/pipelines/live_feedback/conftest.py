"""Training bars in market_bars and the live feedback resources over one fresh database."""

from __future__ import annotations

import pandas as pd
import pytest

from rrr_pipelines.defs.live.resources import LiveFeedbackResource
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.bars_store import write_bars
from tests.pipelines.live_feedback.kit import gbm_bars

REFERENCE = ("2020-01-01", "2021-05-15")  # 500 daily bars
LIVE_START = "2021-06-01"


@pytest.fixture
def training_bars() -> pd.DataFrame:
    """500 daily bars per symbol: the training window."""
    return gbm_bars(500, REFERENCE[0], seed=1)


@pytest.fixture
def db(rrr_db_url: str, training_bars: pd.DataFrame) -> str:
    """A fresh ``rrr`` database holding the training bars in market_bars."""
    write_bars(rrr_db_url, training_bars)
    return rrr_db_url


def live_bars(training: pd.DataFrame, *, vol: float = 0.01, seed: int = 3) -> pd.DataFrame:
    """500 live daily bars after the training window (``vol`` 0.01: the training process)."""
    last = training.sort_values("ts").groupby("symbol")["close"].last().to_dict()
    return gbm_bars(500, LIVE_START, vol=vol, seed=seed, first_close=last, source="live")


def resources(url: str, **settings: object) -> dict[str, object]:
    """``database`` and ``live_feedback`` bound to ``url`` and the test's training window."""
    base: dict[str, object] = {
        "source": "test",
        "interval": "1d",
        "window_bars": 300,
        "reference_start": REFERENCE[0],
        "reference_end": REFERENCE[1],
    }
    feedback = LiveFeedbackResource(**{**base, **settings})  # fmt: skip
    return {"database": DatabaseResource(url=url), "live_feedback": feedback}
