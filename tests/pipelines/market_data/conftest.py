"""Shared fixtures for the market-data tests: the real bundled frame."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from rrr_pipelines.lib.sources.bundled import BundledSource


@pytest.fixture(scope="session")
def bundled_bars() -> pd.DataFrame:
    """Both bundled series (S&P 500, NASDAQ), 5031 rows each, sorted by (symbol, ts)."""
    return BundledSource().fetch(datetime(1999, 1, 1, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC))


@pytest.fixture()
def sp500(bundled_bars: pd.DataFrame) -> pd.DataFrame:
    """A fresh copy of the S&P 500 series with a 0..n-1 index."""
    return bundled_bars[bundled_bars["symbol"] == "SP500"].reset_index(drop=True).copy()
