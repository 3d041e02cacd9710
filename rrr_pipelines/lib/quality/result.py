"""The value every quality gate returns: verdict, observed values, thresholds, offending rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rrr_pipelines.lib.jsonsafe import json_safe

# Offending rows are a *sample* for people to read; the full count is in ``observed``.
MAX_OFFENDING_ROWS = 20


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one quality gate on one bar frame.

    Attributes:
        name: Stable gate name (also the Dagster check name).
        passed: Whether the frame satisfies the gate.
        observed: Measured values, e.g. ``{"violations": 1, "rows_checked": 5031}``.
        thresholds: Limits the observed values were compared to.
        offending: Up to ``MAX_OFFENDING_ROWS`` rows that break the gate; column ``row`` is the
            row's position in the frame that was checked (0-based), so a defect is named exactly.
        description: One line saying what the gate asserts.
    """

    name: str
    passed: bool
    observed: dict[str, Any]
    thresholds: dict[str, Any]
    offending: pd.DataFrame = field(default_factory=pd.DataFrame)
    description: str = ""

    @property
    def offending_rows(self) -> list[int]:
        """Return the frame positions of the offending rows shown (empty when none apply)."""
        if self.offending.empty or "row" not in self.offending.columns:
            return []
        return [int(r) for r in self.offending["row"].tolist() if not pd.isna(r)]

    def offending_records(self) -> list[dict[str, Any]]:
        """Return the offending rows as JSON-safe dicts (see ``json_safe``: ISO timestamps)."""
        records: list[dict[str, Any]] = []
        for rec in self.offending.to_dict(orient="records"):
            records.append(json_safe(rec))
        return records

    def summary(self) -> str:
        """Return a one-line human summary, e.g. for logs."""
        verdict = "PASS" if self.passed else "FAIL"
        return f"{self.name}: {verdict} observed={self.observed} thresholds={self.thresholds}"


def offending_frame(bars: pd.DataFrame, mask: pd.Series, columns: list[str]) -> pd.DataFrame:
    """Return the first ``MAX_OFFENDING_ROWS`` rows selected by ``mask`` with their positions.

    Args:
        bars: The frame that was checked (any index).
        mask: Boolean mask aligned with ``bars`` rows (by position).
        columns: Columns of ``bars`` to show next to ``row``, ``symbol`` and ``ts``.
    """
    positions = mask.to_numpy().nonzero()[0][:MAX_OFFENDING_ROWS]
    keep = [c for c in ("symbol", "ts", *columns) if c in bars.columns]
    keep = list(dict.fromkeys(keep))
    sample = bars.iloc[positions][keep].reset_index(drop=True)
    sample.insert(0, "row", positions)
    return sample
