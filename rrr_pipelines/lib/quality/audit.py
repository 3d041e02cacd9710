"""Write and audit one partition: fetch what the source can serve, stage it, judge it, record it.

This is the Dagster-free half of write-audit-publish (``rrr_pipelines.lib.bars_wap`` holds the
storage). The gates see the frame exactly as the source returned it, before any key could
collapse a duplicate or an ORDER BY could hide a row out of order; the same frame is what is
staged (``market_bars_staging`` keeps its row order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from rrr_pipelines.lib.bars_wap import record_audit, stage_bars
from rrr_pipelines.lib.quality.completeness import PartitionExpectation
from rrr_pipelines.lib.quality.result import CheckResult
from rrr_pipelines.lib.quality.suite import failed, run_blocking_gates
from rrr_pipelines.lib.sources.base import BarSource, empty_bars, servable_window

# An optional extra gate run on the same frame (the GX suite, whose import is slow).
ExtraGate = Callable[[pd.DataFrame], CheckResult]


@dataclass(frozen=True)
class PartitionAudit:
    """The outcome of staging and auditing one partition."""

    partition_key: str
    batch_id: int
    rows: int
    expected: PartitionExpectation
    results: dict[str, CheckResult]

    @property
    def failed_checks(self) -> list[str]:
        """Return the names of the gates that failed."""
        return failed(self.results)

    @property
    def passed(self) -> bool:
        """Whether every gate passed (the batch may be published)."""
        return not self.failed_checks


def expected_calendars(
    symbols: Sequence[str], known: Mapping[str, str], default: str
) -> dict[str, str]:
    """Return symbol -> calendar for the expected ``symbols``.

    Args:
        symbols: Symbols the partition should hold.
        known: Calendars on record (instruments table, then the source's instruments).
        default: Calendar of a symbol nobody knows (the source's default).
    """
    return {s: known.get(s, default) for s in symbols}


def stage_and_audit(
    url: str,
    source: BarSource,
    *,
    partition_key: str,
    window: tuple[datetime, datetime],
    calendars: Mapping[str, str],
    run_id: str,
    now: datetime,
    extra_gates: Sequence[tuple[str, ExtraGate]] = (),
) -> PartitionAudit:
    """Fetch the servable part of ``window``, stage it and record the audit verdict.

    Args:
        url: ``rrr`` database URL.
        source: The bar source.
        partition_key: Dagster partition key.
        window: The partition's time window ``[start, end)``.
        calendars: Expected symbol -> trading calendar.
        run_id: Dagster (root) run id, recorded on the batch.
        now: Current time (injected); bars not closed by then are not expected.
        extra_gates: More ``(name, gate)`` pairs to run on the same frame.
    """
    lo, hi = servable_window(source, window[0], window[1], now)
    bars = source.fetch(lo, hi) if lo < hi else empty_bars()
    expected = PartitionExpectation(
        partition_key=partition_key,
        interval=source.interval,
        start=pd.Timestamp(lo),
        end=pd.Timestamp(hi),
        calendars=dict(calendars),
    )
    results = run_blocking_gates(bars, expected=expected)
    for name, gate in extra_gates:
        results[name] = gate(bars)
    batch_id = stage_bars(
        url,
        bars,
        partition_key=partition_key,
        source=source.name,
        interval=source.interval,
        run_id=run_id,
        window=(lo, hi),
    )
    record_audit(url, batch_id, failed(results), audit_report(results, source))
    return PartitionAudit(partition_key, batch_id, len(bars), expected, results)


def audit_report(results: Mapping[str, CheckResult], source: BarSource) -> dict[str, Any]:
    """Return the JSON report stored with a batch: every gate's verdict and evidence.

    Args:
        results: Gate results by name.
        source: The source (its flags are recorded for the publish step).
    """
    return {
        "source": {
            "name": source.name,
            "interval": source.interval,
            "keeps_updating": bool(source.keeps_updating),
            "synthetic": bool(source.synthetic),
        },
        "checks": {
            name: {
                "passed": r.passed,
                "observed": r.observed,
                "thresholds": r.thresholds,
                "offending": r.offending_records(),
                "description": r.description,
            }
            for name, r in results.items()
        },
    }
