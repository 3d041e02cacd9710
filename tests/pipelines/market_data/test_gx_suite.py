"""The Great Expectations suite agrees with the pandas gates on the real bundled bars."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rrr_pipelines.lib.quality.gx_suite import run_gx_suite, run_gx_suite_split


def test_gx_suite_passes_clean_data_and_names_defect_rows(bundled_bars: pd.DataFrame) -> None:
    clean = run_gx_suite(bundled_bars)
    assert clean.passed, clean.observed
    assert clean.observed["success_percent"] == 100.0
    assert clean.observed["evaluated_expectations"] == 17

    bad = bundled_bars.reset_index(drop=True).copy()
    bad.loc[10, "close"] = np.nan
    bad.loc[20, "low"] = -1.0
    bad.loc[30, "volume"] = -5.0
    bad.loc[40, "high"] = bad.loc[40, "low"] - 1.0
    bad = pd.concat([bad, bad.iloc[[50]]], ignore_index=True)  # duplicate key -> rows 50 and last
    res = run_gx_suite(bad)
    assert not res.passed
    assert res.thresholds == {"success_percent": 100.0}
    by_row = dict(zip(res.offending["row"], res.offending["expectations"], strict=True))
    assert set(by_row) == {10, 20, 30, 40, 50, len(bad) - 1}
    assert "close not null" in by_row[10]
    assert "low>0" in by_row[20]
    assert by_row[30] == "volume>=0"
    assert {"high>=open", "high>=close"} <= set(by_row[40].split(","))
    assert by_row[50] == "unique(source,symbol,ts)"
    assert "close not null" in res.observed["failed_expectations"]


def test_one_gx_run_judges_each_partition_apart(bundled_bars: pd.DataFrame) -> None:
    years = [
        bundled_bars[bundled_bars["ts"].dt.year == y].reset_index(drop=True) for y in (2007, 2008)
    ]
    years[1].loc[3, "low"] = -1.0
    clean, bad = run_gx_suite_split(years)
    assert clean.passed and clean.observed["rows_checked"] == len(years[0])
    assert not bad.passed and bad.offending_rows == [3]  # row in its own partition's frame
    assert bad.observed["failed_expectations"] == ["low>0"]
    assert bad.observed["successful_expectations"] == 16
