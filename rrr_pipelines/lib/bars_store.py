"""Bars in PostgreSQL: reads of the published table, the binary COPY encoder, a direct loader.

Readers (risk, backtest, ML, via ``DatabaseResource.load_bars``) read ``market_bars``, which
only ``rrr_pipelines.lib.bars_wap.publish_batch`` fills in the pipeline (write-audit-publish).
:func:`write_bars` loads without an audit: for benches and test fixtures only.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from rrr_live.domain.bars import BAR_COLUMNS
from rrr_pipelines.lib.pg import connect

log = logging.getLogger(__name__)

COPY_CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class LoadStats:
    """What one load did."""

    rows_in: int
    rows_inserted: int
    bytes_copied: int


_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
TEXT_COLUMNS = ("source", "symbol", "interval")
_FLOAT_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")


def binary_copy_payload(
    frame: pd.DataFrame, batch_id: int | None = None, first_row: int = 0
) -> bytes:
    """Encode a canonical bar frame in PostgreSQL's binary COPY format, vectorized.

    Every row has the same layout, so the rows are one numpy structured array: text fields are
    space-padded to the column's longest value (the INSERT … SELECT strips them with ``rtrim``),
    ``ts`` is microseconds since 2000-01-01 UTC, numbers are big-endian float8.

    Args:
        frame: Canonical bar frame.
        batch_id: When given, each row starts with ``batch_id`` (int8) and ``row_no`` (int4,
            ``first_row`` + position): the layout of ``market_bars_staging``.
        first_row: Row number of the frame's first row.
    """
    n = len(frame)
    prefix = 0 if batch_id is None else 2
    fields: list[tuple[str, str]] = [("nfields", ">i2")]
    values: dict[str, np.ndarray] = {"nfields": np.full(n, len(BAR_COLUMNS) + prefix, dtype=">i2")}
    if batch_id is not None:
        fields += [("batch_len", ">i4"), ("batch_id", ">i8"), ("row_len", ">i4"), ("row_no", ">i4")]
        values["batch_len"], values["batch_id"] = np.full(n, 8, ">i4"), np.full(n, batch_id, ">i8")
        values["row_len"] = np.full(n, 4, dtype=">i4")
        values["row_no"] = np.arange(first_row, first_row + n, dtype=">i4")
    for col in TEXT_COLUMNS:
        raw = frame[col].to_numpy(dtype=str).astype(np.bytes_)
        width = max(1, raw.dtype.itemsize)
        fields += [(f"{col}_len", ">i4"), (col, f"S{width}")]
        values[f"{col}_len"] = np.full(n, width, dtype=">i4")
        values[col] = np.char.ljust(raw, width, b" ")
    ts = frame["ts"].to_numpy(dtype="datetime64[us]").astype(np.int64) - _PG_EPOCH_US
    fields += [("ts_len", ">i4"), ("ts", ">i8")]
    values["ts_len"], values["ts"] = np.full(n, 8, dtype=">i4"), ts
    for col in _FLOAT_COLUMNS:
        fields += [(f"{col}_len", ">i4"), (col, ">f8")]
        values[f"{col}_len"] = np.full(n, 8, dtype=">i4")
        values[col] = frame[col].to_numpy(dtype=np.float64)
    rows = np.empty(n, dtype=np.dtype(fields))
    for name, arr in values.items():
        rows[name] = arr
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return header + rows.tobytes() + (-1).to_bytes(2, "big", signed=True)


def write_bars(
    url: str, bars: pd.DataFrame, progress: Callable[[int, int], None] | None = None
) -> LoadStats:
    """Load a canonical bar frame directly (no audit); rows whose key exists are left untouched.

    Bypasses write-audit-publish: for benches and test fixtures. The pipeline publishes through
    ``rrr_pipelines.lib.bars_wap``.

    Binary COPY goes into a temporary staging table, then one ``INSERT … ON CONFLICT DO
    NOTHING`` on (source, symbol, interval, ts): a plain COPY into the keyed table would fail the
    whole batch on a single duplicate. The load is one transaction: all rows or none.
    """
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bar frame lacks columns {missing}")
    frame = bars.loc[:, list(BAR_COLUMNS)]
    conn = connect(url)
    copied = 0
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE bars_stage (LIKE market_bars INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            for start in range(0, len(frame), COPY_CHUNK_ROWS):
                payload = binary_copy_payload(frame.iloc[start : start + COPY_CHUNK_ROWS])
                copied += len(payload)
                cur.copy_expert(
                    f"COPY bars_stage ({', '.join(BAR_COLUMNS)}) FROM STDIN WITH (FORMAT binary)",
                    io.BytesIO(payload),
                )
                if progress is not None:
                    progress(min(start + COPY_CHUNK_ROWS, len(frame)), len(frame))
            trimmed = ", ".join(f"rtrim({c})" if c in TEXT_COLUMNS else c for c in BAR_COLUMNS)
            cur.execute(
                f"INSERT INTO market_bars ({', '.join(BAR_COLUMNS)}) "
                f"SELECT {trimmed} FROM bars_stage "
                "ON CONFLICT (source, symbol, interval, ts) DO NOTHING"
            )
            inserted = cur.rowcount
    finally:
        conn.close()
    return LoadStats(rows_in=len(frame), rows_inserted=inserted, bytes_copied=copied)


def load_bars(
    url: str,
    *,
    source: str,
    interval: str,
    symbols: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Read bars with ``start <= ts < end`` as a canonical frame sorted by (symbol, ts)."""
    clauses = ["source = %(source)s", "interval = %(interval)s"]
    params: dict[str, object] = {"source": source, "interval": interval}
    if symbols is not None:
        clauses.append("symbol = ANY(%(symbols)s)")
        params["symbols"] = list(symbols)
    if start is not None:
        clauses.append("ts >= %(start)s")
        params["start"] = start
    if end is not None:
        clauses.append("ts < %(end)s")
        params["end"] = end
    query = (
        f"SELECT {', '.join(BAR_COLUMNS)} FROM market_bars WHERE {' AND '.join(clauses)} "
        "ORDER BY symbol, ts"
    )
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
    finally:
        conn.close()
    frame = pd.DataFrame(rows, columns=list(BAR_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for col in ("source", "symbol", "interval"):
        frame[col] = frame[col].astype("str")
    for col in ("open", "high", "low", "close", "adj_close", "volume"):
        frame[col] = frame[col].astype("float64")
    return frame


def bars_summary(url: str, *, source: str, interval: str) -> pd.DataFrame:
    """Per-symbol row count, first/last ts and a content checksum (md5 of the ordered rows)."""
    query = (
        "SELECT symbol, count(*) AS rows, min(ts) AS first_ts, max(ts) AS last_ts, "
        "md5(string_agg(concat_ws(',', ts, open, high, low, close, adj_close, volume), ';' "
        "ORDER BY ts)) AS checksum FROM market_bars WHERE source = %s AND interval = %s "
        "GROUP BY symbol ORDER BY symbol"
    )
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query, (source, interval))
            rows = cur.fetchall()
    finally:
        conn.close()
    return pd.DataFrame(rows, columns=["symbol", "rows", "first_ts", "last_ts", "checksum"])
