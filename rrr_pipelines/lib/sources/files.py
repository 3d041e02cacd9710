"""User data: a directory of CSV or Parquet files in one documented schema (docs/data.md).

Schema, one row per bar, header names case-sensitive, extra columns ignored:

* ``ts`` (required) – bar open time: ISO 8601 with a UTC offset (``2024-01-02T14:30:00Z``,
  ``…+00:00``) or a plain date ``YYYY-MM-DD`` (daily bars, stamped 00:00 UTC); naive date-times
  are refused unless ``assume_utc=True``. Parquet may use a timestamp column instead.
* ``open``, ``high``, ``low``, ``close``, ``volume`` (required) – numbers.
* ``adj_close`` (optional, defaults to ``close``), ``symbol`` (optional, defaults to the file
  name without its suffix).

Any bad file fails the whole fetch with :class:`FilesSourceError` naming file, line and column;
nothing is returned. CSV lines count from 1 = the header, so the first bar is line 2; Parquet
rows count from 1.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from rrr_live.domain.bars import BAR_COLUMNS, interval_ns
from rrr_pipelines.lib.sources.base import SourceError, SourceInstrument, empty_bars, require_aware

REQUIRED_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")
NUMERIC_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close", "volume")
SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".parquet", ".pq")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HAS_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


class FilesSourceError(SourceError):
    """A user file is not in the documented schema.

    Attributes:
        file: Path of the offending file.
        line: CSV line (1 = header) or Parquet row (1-based); ``None`` for file-level errors.
        column: Offending column, if any.
    """

    def __init__(self, file: Path, line: int | None, column: str | None, problem: str) -> None:
        self.file, self.line, self.column = file, line, column
        where = f"{file}"
        if line is not None:
            where += f", {'line' if _is_csv(file) else 'row'} {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")


def _is_csv(path: Path) -> bool:
    return path.name.endswith((".csv", ".csv.gz"))


def _symbol_of(path: Path) -> str:
    name = path.name
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


class FilesSource:
    """Bars from a directory of CSV/Parquet files (see the module docstring for the schema)."""

    name = "files"
    synthetic = False

    def __init__(
        self,
        path: str | Path,
        interval: str = "1d",
        symbols: list[str] | None = None,
        calendar: str = "24/7",
        asset_class: str = "unknown",
        currency: str = "USD",
        keeps_updating: bool = False,
        assume_utc: bool = False,
    ) -> None:
        """Point the source at ``path``.

        Args:
            path: Directory holding ``*.csv``, ``*.csv.gz``, ``*.parquet`` or ``*.pq`` files.
            interval: Bar interval of every file.
            symbols: Optional subset of symbols to return.
            calendar: Trading calendar of the instruments (``"24/7"`` or e.g. ``"XNYS"``).
            asset_class: Asset class reported by :meth:`instruments`.
            currency: Quote currency reported by :meth:`instruments`.
            keeps_updating: Whether new files keep arriving (enables the freshness check).
            assume_utc: Read naive date-times as UTC instead of refusing them.

        Raises:
            SourceError: if the directory does not exist or the interval is unknown.
        """
        self.path = Path(path)
        if not self.path.is_dir():
            raise SourceError(f"files source: {self.path} is not a directory")
        try:
            interval_ns(interval)
        except ValueError as e:
            raise SourceError(str(e)) from e
        self.interval = interval
        self.symbols = list(symbols) if symbols else None
        self.calendar, self.asset_class, self.currency = calendar, asset_class, currency
        self.keeps_updating = keeps_updating
        self.span: tuple[datetime, datetime] | None = None
        self.assume_utc = assume_utc

    def files(self) -> list[Path]:
        """Return the data files in the directory, sorted by name."""
        return sorted(p for p in self.path.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))

    def instruments(self) -> list[SourceInstrument]:
        """Return one instrument per symbol found in the files."""
        found: set[str] = set()
        for file in self.files():
            frame = self._read(file)
            found |= set(frame["symbol"]) if "symbol" in frame else {_symbol_of(file)}
        chosen = sorted(found & set(self.symbols)) if self.symbols else sorted(found)
        return [
            SourceInstrument(s, self.name, self.asset_class, self.calendar, self.currency,
                       f"user file data from {self.path}")
            for s in chosen
        ]  # fmt: skip

    def fetch(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Parse and validate every file; return bars with ``start <= ts < end``.

        Raises:
            FilesSourceError: at the first file not in the schema (nothing is returned).
            SourceError: for a naive ``start`` or ``end``.
        """
        require_aware(self.name, start, end)
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        parts = [self.load_file(f) for f in self.files()]
        if not parts:
            return empty_bars()
        frame = pd.concat(parts, ignore_index=True)
        mask = (frame["ts"] >= lo) & (frame["ts"] < hi)
        if self.symbols:
            mask &= frame["symbol"].isin(self.symbols)
        out = frame.loc[mask].sort_values(["symbol", "ts"], kind="stable")
        return out.reset_index(drop=True)

    def _read(self, file: Path) -> pd.DataFrame:
        if _is_csv(file):
            try:
                return pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
            except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
                raise FilesSourceError(file, None, None, f"not a readable CSV file: {e}") from e
        try:
            return pd.read_parquet(file)
        except (OSError, ValueError) as e:
            raise FilesSourceError(file, None, None, f"not a readable Parquet file: {e}") from e

    def load_file(self, file: Path) -> pd.DataFrame:
        """Read one file into a canonical bar frame.

        Raises:
            FilesSourceError: naming file, line and column of the first problem.
        """
        raw = self._read(file)
        raw.columns = [str(c).strip() for c in raw.columns]
        for col in REQUIRED_COLUMNS:
            if col not in raw.columns:
                raise FilesSourceError(
                    file, 1 if _is_csv(file) else None, col,
                    f"missing required column; found {list(raw.columns)}, "
                    f"need {list(REQUIRED_COLUMNS)}",
                )  # fmt: skip
        n = len(raw)
        first_line = 2 if _is_csv(file) else 1
        if "symbol" in raw:
            symbol = raw["symbol"].astype("str").str.strip().reset_index(drop=True)
        else:
            symbol = pd.Series([_symbol_of(file)] * n, dtype="str")
        out = pd.DataFrame(
            {
                "source": pd.Series([self.name] * n, dtype="str"),
                "symbol": symbol,
                "interval": pd.Series([self.interval] * n, dtype="str"),
                "ts": self._timestamps(file, raw["ts"], first_line),
            }
        )
        for col in NUMERIC_COLUMNS:
            source_col = col if col in raw.columns else "close"
            out[col] = _numbers(file, raw[source_col], source_col, first_line)
        if "symbol" in raw:
            blank = (out["symbol"] == "").to_numpy()
            if blank.any():
                line = first_line + int(np.argmax(blank))
                raise FilesSourceError(file, line, "symbol", "empty symbol")
        return out.loc[:, list(BAR_COLUMNS)]

    def _timestamps(self, file: Path, col: pd.Series, first_line: int) -> pd.Series:
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            return col.dt.tz_convert("UTC").reset_index(drop=True)
        if pd.api.types.is_datetime64_dtype(col.dtype):
            if not self.assume_utc:
                raise FilesSourceError(
                    file, first_line, "ts", "timestamp column has no timezone (store UTC)"
                )
            return col.dt.tz_localize("UTC").reset_index(drop=True)
        text = col.astype("str").str.strip().reset_index(drop=True)
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        naive = ~text.str.contains(_DATE_ONLY) & ~text.str.contains(_HAS_OFFSET)
        bad = parsed.isna() | (naive & ~self.assume_utc)
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            why = ("not an ISO 8601 timestamp" if pd.isna(parsed.iloc[i])
                   else "date-time without a UTC offset (add 'Z' or '+00:00')")  # fmt: skip
            raise FilesSourceError(file, first_line + i, "ts", f"{why}: {text.iloc[i]!r}")
        return parsed


def _numbers(file: Path, col: pd.Series, name: str, first_line: int) -> np.ndarray:
    """Return ``col`` as float64, or raise naming the first cell that is not a finite number."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = col.to_numpy("float64", na_value=np.nan)
        text = None
    else:
        text = col.astype("str").str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy("float64", na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        shown = repr(text.iloc[i]) if text is not None else repr(values[i])
        raise FilesSourceError(file, first_line + i, name, f"not a finite number: {shown}")
    return np.asarray(values, dtype=np.float64)
