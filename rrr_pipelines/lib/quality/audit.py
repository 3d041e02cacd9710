"""Write and audit one partition: fetch what the source can serve, stage it, judge it, record it.

This is the Dagster-free half of write-audit-publish (``rrr_pipelines.lib.bars_wap`` holds the
storage). The gates see the frame exactly as the source returned it, before any key could
collapse a duplicate or an ORDER BY could hide a row out of order; the same frame is what is
staged (``market_bars_staging`` keeps its row order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from rrr_pipelines.lib.bars_wap import record_audit, stage_bars
from rrr_pipelines.lib.quality.completeness import PartitionExpectation
from rrr_pipelines.lib.quality.result import CheckResult
from rrr_pipelines.lib.quality.suite import failed, run_blocking_gates
from rrr_pipelines.lib.sources.base import BarSource, empty_bars, servable_window

# A gate judged over several frames at once, one result per frame (the GX suite: its cost is
# mostly per call, so a run of 20 yearly partitions validates once, not 20 times).
BatchGate = Callable[[Sequence[pd.DataFrame]], list[CheckResult]]
CHUNK_ROWS = 500_000


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
    partitions: Sequence[tuple[str, tuple[datetime, datetime]]],
    calendars: Mapping[str, str],
    run_id: str,
    now: datetime,
    batch_gates: Sequence[tuple[str, BatchGate]] = (),
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[PartitionAudit]:
    """Fetch each partition's servable window, stage it and record its audit verdict.

    Partitions are handled in chunks of about ``chunk_rows`` rows: the per-partition gates run on
    each frame, the batch gates (e.g. the GX suite, whose fixed cost is per call) once per chunk.

    Args:
        url: ``rrr`` database URL.
        source: The bar source.
        partitions: ``(partition_key, (start, end))`` in order.
        calendars: Expected symbol -> trading calendar.
        run_id: Dagster (root) run id, recorded on each batch.
        now: Current time (injected); bars not closed by then are not expected.
        batch_gates: ``(name, gate)`` pairs; a gate takes the chunk's frames and returns one
            result per frame.
        chunk_rows: Rows fetched before the chunk is judged and staged.

    Yields:
        One audit per partition, in order, once its batch is staged and its verdict recorded.
    """
    chunk: list[tuple[str, pd.DataFrame, PartitionExpectation]] = []
    for key, window in partitions:
        lo, hi = servable_window(source, window[0], window[1], now)
        bars = source.fetch(lo, hi) if lo < hi else empty_bars()
        expected = PartitionExpectation(
            key, source.interval, pd.Timestamp(lo), pd.Timestamp(hi), dict(calendars)
        )
        chunk.append((key, bars, expected))
        if sum(len(b) for _, b, _ in chunk) >= chunk_rows:
            yield from _judge_and_stage(url, source, chunk, run_id, batch_gates)
            chunk = []
    if chunk:
        yield from _judge_and_stage(url, source, chunk, run_id, batch_gates)


def _judge_and_stage(
    url: str,
    source: BarSource,
    chunk: list[tuple[str, pd.DataFrame, PartitionExpectation]],
    run_id: str,
    batch_gates: Sequence[tuple[str, BatchGate]],
) -> Iterator[PartitionAudit]:
    results = [run_blocking_gates(bars, expected=expected) for _, bars, expected in chunk]
    for name, gate in batch_gates:
        for per_frame, result in zip(results, gate([b for _, b, _ in chunk]), strict=True):
            per_frame[name] = result
    for (key, bars, expected), res in zip(chunk, results, strict=True):
        batch_id = stage_bars(
            url,
            bars,
            partition_key=key,
            source=source.name,
            interval=source.interval,
            run_id=run_id,
            window=(expected.start.to_pydatetime(), expected.end.to_pydatetime()),
        )
        record_audit(url, batch_id, failed(res), audit_report(res, source))
        yield PartitionAudit(key, batch_id, len(bars), expected, res)


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
