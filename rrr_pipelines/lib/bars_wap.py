"""Write-audit-publish for ``market_bars``: stage a partition, record its audit, publish it.

A partition's frame is staged in ``market_bars_staging`` exactly as the source returned it (row
order and duplicates kept, numbered by ``row_no``), under a ``bar_batches`` row. The audit's
verdict and report are recorded on that row: ``passed`` or ``quarantined``. Only a ``passed``
batch can be published: one transaction replaces the partition's rows in ``market_bars`` (the
table every reader uses) with the staged ones. Rows whose values did not change are left alone,
so re-publishing unchanged data changes nothing; corrected values replace old ones; bars the
corrected source no longer returns are deleted. A quarantined batch stays in staging with its
report and is never copied.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from rrr_live.domain.bars import BAR_COLUMNS
from rrr_live.errors import RRRError
from rrr_pipelines.lib.bars_store import COPY_CHUNK_ROWS, TEXT_COLUMNS, binary_copy_payload
from rrr_pipelines.lib.jsonsafe import json_safe
from rrr_pipelines.lib.pg import connect

_VALUE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
_BATCH_COLUMNS = (
    "batch_id", "source", "interval", "partition_key", "run_id", "window_start", "window_end",
    "rows", "status", "failed_checks", "report",
)  # fmt: skip


_COLS = ", ".join(BAR_COLUMNS)
# Unchanged rows are not rewritten (IS DISTINCT FROM), so re-publishing is a no-op.
_UPSERT = (
    f"INSERT INTO market_bars ({_COLS}) SELECT {_COLS} FROM market_bars_staging "
    "WHERE batch_id = %s ON CONFLICT (source, symbol, interval, ts) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _VALUE_COLUMNS)
    + ", loaded_at = now() WHERE ("
    + ", ".join(f"market_bars.{c}" for c in _VALUE_COLUMNS)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"EXCLUDED.{c}" for c in _VALUE_COLUMNS)
    + ")"
)


class PublishRefusedError(RRRError):
    """A batch may not be published (quarantined, unknown, or older than a published one)."""


@dataclass(frozen=True)
class Batch:
    """One staged partition (a ``bar_batches`` row)."""

    batch_id: int
    source: str
    interval: str
    partition_key: str
    run_id: str
    window_start: datetime
    window_end: datetime
    rows: int
    status: str
    failed_checks: list[str]
    report: dict[str, Any]


@dataclass(frozen=True)
class PublishStats:
    """What publishing one batch changed in ``market_bars``."""

    batch_id: int
    partition_key: str
    rows: int
    rows_written: int  # inserted or changed
    rows_deleted: int  # published before, no longer returned by the source


def stage_bars(
    url: str,
    bars: pd.DataFrame,
    *,
    partition_key: str,
    source: str,
    interval: str,
    run_id: str,
    window: tuple[datetime, datetime],
) -> int:
    """Stage ``bars`` as one batch, in the order given, and return its ``batch_id``.

    Args:
        url: ``rrr`` database URL.
        bars: The frame the source returned for this partition (canonical columns).
        partition_key: Dagster partition key.
        source: Source name.
        interval: Bar interval.
        run_id: Dagster (root) run id that staged it.
        window: Servable window ``[start, end)`` that was fetched.

    Raises:
        ValueError: if the frame lacks canonical columns.
    """
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bar frame lacks columns {missing}")
    frame = bars.loc[:, list(BAR_COLUMNS)]
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO bar_batches (source, interval, partition_key, run_id, window_start, "
                "window_end, rows) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING batch_id",
                (source, interval, partition_key, run_id, window[0], window[1], len(frame)),
            )
            batch_id = int(cur.fetchone()[0])
            cols = ", ".join(("batch_id", "row_no", *BAR_COLUMNS))
            # COPY into an unlogged temp table, then one INSERT that strips the text padding
            cur.execute("CREATE TEMP TABLE stage_in (LIKE market_bars_staging) ON COMMIT DROP")
            for start in range(0, len(frame), COPY_CHUNK_ROWS):
                chunk = frame.iloc[start : start + COPY_CHUNK_ROWS]
                payload = binary_copy_payload(chunk, batch_id=batch_id, first_row=start)
                cur.copy_expert(
                    f"COPY stage_in ({cols}) FROM STDIN WITH (FORMAT binary)", io.BytesIO(payload)
                )
            trimmed = ", ".join(f"rtrim({c})" if c in TEXT_COLUMNS else c for c in cols.split(", "))
            cur.execute(f"INSERT INTO market_bars_staging ({cols}) SELECT {trimmed} FROM stage_in")
    finally:
        conn.close()
    return batch_id


def load_staged(url: str, batch_id: int) -> pd.DataFrame:
    """Read a staged batch back in the source's row order (duplicates and all).

    Args:
        url: ``rrr`` database URL.
        batch_id: The batch.
    """
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(BAR_COLUMNS)} FROM market_bars_staging WHERE batch_id = %s "
                "ORDER BY row_no",
                (batch_id,),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    frame = pd.DataFrame(rows, columns=list(BAR_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for col in TEXT_COLUMNS:
        frame[col] = frame[col].astype("str")
    for col in _VALUE_COLUMNS:
        frame[col] = frame[col].astype("float64")
    return frame


def record_audit(url: str, batch_id: int, failed_checks: Sequence[str], report: Any) -> str:
    """Record the audit of a staged batch; return its status (``passed`` or ``quarantined``).

    Args:
        url: ``rrr`` database URL.
        batch_id: The batch.
        failed_checks: Names of the blocking checks that failed (empty: passed).
        report: JSON-serializable report (observed values, thresholds, offending rows).
    """
    status = "quarantined" if failed_checks else "passed"
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE bar_batches SET status = %s, failed_checks = %s, report = %s::jsonb, "
                "audited_at = now() WHERE batch_id = %s AND status = 'staged'",
                (status, list(failed_checks), json.dumps(json_safe(report), default=str), batch_id),
            )
            if cur.rowcount != 1:
                raise PublishRefusedError(f"batch {batch_id} is unknown or already audited")
    finally:
        conn.close()
    return status


def batches(
    url: str,
    *,
    run_id: str | None = None,
    source: str | None = None,
    partition_keys: Sequence[str] | None = None,
) -> list[Batch]:
    """Return batches (oldest first), filtered by run, source and partition keys.

    Args:
        url: ``rrr`` database URL.
        run_id: Only batches staged by this (root) run.
        source: Only this source's batches.
        partition_keys: Only these partitions.
    """
    clauses: list[str] = ["true"]
    params: list[object] = []
    for column, value in (("run_id", run_id), ("source", source)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if partition_keys is not None:
        clauses.append("partition_key = ANY(%s)")
        params.append(list(partition_keys))
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(_BATCH_COLUMNS)} FROM bar_batches "
                f"WHERE {' AND '.join(clauses)} ORDER BY batch_id",
                params,
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    return [Batch(*row) for row in rows]


def publish_batch(url: str, batch_id: int) -> PublishStats:
    """Atomically replace the batch's partition in ``market_bars`` with the staged rows.

    One transaction, under an advisory lock per (source, interval, partition): rows of the
    partition's window that the batch no longer holds are deleted; new or changed rows are
    upserted; unchanged rows are not touched. Publishing a batch again changes nothing. The
    staged rows of older passed/published batches of the partition are dropped (their records
    stay); quarantined batches keep their rows.

    Args:
        url: ``rrr`` database URL.
        batch_id: A ``passed`` (or already ``published``) batch.

    Raises:
        PublishRefusedError: if the batch is unknown, not audited, quarantined, or a newer batch
            of the same partition has been published.
    """
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            batch = _lock_publishable(cur, batch_id)
            cur.execute(
                "DELETE FROM market_bars m WHERE m.source = %(source)s "
                "AND m.interval = %(interval)s AND m.ts >= %(lo)s AND m.ts < %(hi)s "
                "AND NOT EXISTS (SELECT 1 FROM market_bars_staging s WHERE s.batch_id = %(b)s "
                "AND s.symbol = m.symbol AND s.ts = m.ts)",
                {
                    "source": batch.source,
                    "interval": batch.interval,
                    "lo": batch.window_start,
                    "hi": batch.window_end,
                    "b": batch_id,
                },
            )
            deleted = cur.rowcount
            cur.execute(_UPSERT, (batch_id,))
            written = cur.rowcount
            cur.execute(
                "UPDATE bar_batches SET status = 'published', published_at = now() "
                "WHERE batch_id = %s",
                (batch_id,),
            )
            # Older good batches of the partition can never be published again: drop their rows
            # (their bar_batches record stays). Quarantined rows stay as evidence.
            cur.execute(
                "DELETE FROM market_bars_staging WHERE batch_id IN (SELECT batch_id FROM "
                "bar_batches WHERE source = %s AND interval = %s AND partition_key = %s "
                "AND batch_id < %s AND status IN ('passed', 'published'))",
                (batch.source, batch.interval, batch.partition_key, batch_id),
            )
    finally:
        conn.close()
    return PublishStats(batch_id, batch.partition_key, batch.rows, written, deleted)


def _lock_publishable(cur: Any, batch_id: int) -> Batch:
    """Lock the batch's partition and return the batch, or refuse with the reason."""
    cur.execute(
        f"SELECT {', '.join(_BATCH_COLUMNS)} FROM bar_batches WHERE batch_id = %s FOR UPDATE",
        (batch_id,),
    )
    row = cur.fetchone()
    if row is None:
        raise PublishRefusedError(f"no staged batch {batch_id}")
    batch = Batch(*row)
    cur.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s))",
        (f"market_bars:{batch.source}:{batch.interval}:{batch.partition_key}",),
    )
    if batch.status == "quarantined":
        raise PublishRefusedError(
            f"partition {batch.partition_key} (batch {batch_id}) is quarantined: failed "
            f"{', '.join(batch.failed_checks)}"
        )
    if batch.status not in ("passed", "published"):
        raise PublishRefusedError(f"batch {batch_id} has not been audited (status {batch.status})")
    cur.execute(
        "SELECT max(batch_id) FROM bar_batches WHERE source = %s AND interval = %s "
        "AND partition_key = %s AND status = 'published'",
        (batch.source, batch.interval, batch.partition_key),
    )
    newest = cur.fetchone()[0]
    if newest is not None and newest > batch_id:
        raise PublishRefusedError(
            f"batch {batch_id} of partition {batch.partition_key} is older than the published "
            f"batch {newest}"
        )
    return batch
