"""Failed pipeline runs where the operator sees them: table ``pipeline_failures`` (0013).

Written by the ``record_failed_runs`` run-failure sensor, one row per run (a second report of
the same run changes nothing), read by whatever shows the operator the platform's state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rrr_pipelines.lib.pg import connect


@dataclass(frozen=True)
class PipelineFailure:
    """One failed run."""

    run_id: str
    job_name: str
    failed_at: datetime
    failed_steps: tuple[str, ...]
    message: str


def record_failure(
    url: str,
    *,
    run_id: str,
    job_name: str,
    failed_at: datetime,
    failed_steps: Sequence[str] = (),
    message: str = "",
    tags: Mapping[str, str] | None = None,
) -> bool:
    """Record a failed run; return whether it was new (False: already recorded)."""
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO pipeline_failures (run_id, job_name, failed_at, failed_steps,"
                " message, tags) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (run_id) DO NOTHING",
                (run_id, job_name, failed_at, list(failed_steps), message[:4000],
                 json.dumps(dict(tags or {}))),
            )  # fmt: skip
            return bool(cur.rowcount)
    finally:
        conn.close()


def recent_failures(url: str, limit: int = 20) -> list[PipelineFailure]:
    """The latest failed runs, newest first."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT run_id, job_name, failed_at, failed_steps, message FROM pipeline_failures"
                " ORDER BY failed_at DESC, run_id LIMIT %s",
                (limit,),
            )
            return [PipelineFailure(r[0], r[1], r[2], tuple(r[3]), r[4]) for r in cur.fetchall()]
    finally:
        conn.close()
