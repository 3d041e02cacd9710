"""The files source: documented schema in, canonical bars out, one clear error otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from rrr_pipelines.lib.quality.suite import failed, run_blocking_gates
from rrr_pipelines.lib.sources.base import BarSource
from rrr_pipelines.lib.sources.files import FilesSource, FilesSourceError

ALL = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))

GOOD_CSV = """ts,open,high,low,close,volume
2024-01-02T00:00:00Z,10,11,9,10.5,100
2024-01-03T00:00:00+00:00,10.5,12,10,11.5,120
2024-01-04,11.5,11.6,11,11.2,0
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_parses_to_canonical_frame(tmp_path: Path) -> None:
    _write(tmp_path, "ABC.csv", GOOD_CSV)
    src = FilesSource(tmp_path)
    assert isinstance(src, BarSource)
    bars = src.fetch(*ALL)
    assert list(bars["symbol"]) == ["ABC"] * 3
    assert list(bars["ts"]) == list(pd.date_range("2024-01-02", periods=3, tz="UTC"))
    assert list(bars["close"]) == [10.5, 11.5, 11.2]
    assert list(bars["adj_close"]) == list(bars["close"])
    assert list(bars["volume"]) == [100.0, 120.0, 0.0]
    assert set(bars["source"]) == {"files"} and set(bars["interval"]) == {"1d"}
    assert str(bars["ts"].dtype).endswith("UTC]")
    assert failed(run_blocking_gates(bars, calendar="24/7")) == []
    window = src.fetch(datetime(2024, 1, 3, tzinfo=UTC), datetime(2024, 1, 4, tzinfo=UTC))
    assert list(window["close"]) == [11.5]


def test_parquet_and_symbol_column(tmp_path: Path, bundled_bars: pd.DataFrame) -> None:
    frame = bundled_bars[["symbol", "ts", "open", "high", "low", "close", "adj_close", "volume"]]
    frame.to_parquet(tmp_path / "indices.parquet", index=False)
    src = FilesSource(tmp_path, calendar="XNYS", asset_class="index")
    bars = src.fetch(*ALL)
    assert bars.groupby("symbol").size().to_dict() == {"NASDAQ": 5031, "SP500": 5031}
    pd.testing.assert_frame_equal(
        bars.drop(columns=["source"]),
        bundled_bars.drop(columns=["source"]).reset_index(drop=True),
        check_dtype=False,
    )
    assert [i.symbol for i in src.instruments()] == ["NASDAQ", "SP500"]
    assert {i.calendar for i in src.instruments()} == {"XNYS"}


def test_missing_column_names_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "X.csv", "ts,open,high,low,volume\n2024-01-02,1,1,1,1\n")
    with pytest.raises(FilesSourceError) as err:
        FilesSource(tmp_path).fetch(*ALL)
    assert (err.value.file, err.value.line, err.value.column) == (path, 1, "close")
    assert str(err.value).startswith(f"{path}, line 1, column 'close': missing required column")


def test_non_numeric_price_names_file_line_and_column(tmp_path: Path) -> None:
    _write(tmp_path, "A.csv", GOOD_CSV)
    bad = GOOD_CSV.replace("10.5,12,10,11.5", "10.5,12,10,eleven")
    path = _write(tmp_path, "B.csv", bad)
    with pytest.raises(FilesSourceError) as err:
        FilesSource(tmp_path).fetch(*ALL)
    assert (err.value.file, err.value.line, err.value.column) == (path, 3, "close")
    assert "'eleven'" in str(err.value)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [("2024-13-40", "not an ISO 8601 timestamp"), ("2024-01-03 10:00", "without a UTC offset")],
)
def test_bad_timestamp_names_line(tmp_path: Path, cell: str, problem: str) -> None:
    path = _write(tmp_path, "T.csv", GOOD_CSV.replace("2024-01-03T00:00:00+00:00", cell))
    with pytest.raises(FilesSourceError, match=problem) as err:
        FilesSource(tmp_path).fetch(*ALL)
    assert (err.value.file, err.value.line, err.value.column) == (path, 3, "ts")


def test_naive_times_allowed_when_assumed_utc(tmp_path: Path) -> None:
    _write(tmp_path, "T.csv", GOOD_CSV.replace("2024-01-03T00:00:00+00:00", "2024-01-03 00:00"))
    bars = FilesSource(tmp_path, assume_utc=True).fetch(*ALL)
    assert bars["ts"].iloc[1] == pd.Timestamp("2024-01-03", tz="UTC")


def test_empty_cell_and_parquet_row_numbers(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=3, tz="UTC"),
            "open": [1.0, 2.0, 3.0],
            "high": [1.0, 2.0, 3.0],
            "low": [1.0, 2.0, 3.0],
            "close": [1.0, float("nan"), 3.0],
            "volume": [1.0, 1.0, 1.0],
        }
    )
    path = tmp_path / "P.parquet"
    frame.to_parquet(path)
    with pytest.raises(FilesSourceError) as err:
        FilesSource(tmp_path).fetch(*ALL)
    assert (err.value.line, err.value.column) == (2, "close")
    assert str(err.value).startswith(f"{path}, row 2, column 'close'")


def test_not_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not a directory"):
        FilesSource(tmp_path / "nope")
