"""The retraining signal: live decay/drift reports in table ``model_feedback``.

Contract (the live runner writes, Dagster reads): one row per measurement with ``kind`` =
``decay`` (e.g. rolling live IC below threshold) or ``drift`` (e.g. population stability index of
a feature above threshold), the value, its threshold and whether it was breached. A retrain is
due when a breached row newer than the last one handled exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rrr_pipelines.lib.pg import connect


@dataclass(frozen=True)
class FeedbackRow:
    """One breached decay/drift report."""

    id: int
    model_name: str
    model_version: str
    kind: str
    metric: str
    value: float
    threshold: float


def record_feedback(
    url: str,
    *,
    model_name: str,
    model_version: str,
    kind: str,
    metric: str,
    value: float,
    threshold: float,
    breached: bool,
    detail: dict[str, Any] | None = None,
) -> int:
    """Insert one measurement; return its id."""
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO model_feedback (model_name, model_version, kind, metric, value,"
                " threshold, breached, detail) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                (model_name, model_version, kind, metric, value, threshold, breached,
                 json.dumps(detail or {})),
            )  # fmt: skip
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def breached_since(url: str, after_id: int) -> list[FeedbackRow]:
    """Return breached reports with ``id > after_id``, oldest first."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id, model_name, model_version, kind, metric, value, threshold "
                "FROM model_feedback WHERE breached AND id > %s ORDER BY id",
                (after_id,),
            )
            return [FeedbackRow(*row) for row in cur.fetchall()]
    finally:
        conn.close()
