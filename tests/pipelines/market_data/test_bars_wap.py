"""Staging and publishing in PostgreSQL: the frame as the source returned it, atomic publish."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from rrr_pipelines.lib.bars_store import bars_summary, load_bars
from rrr_pipelines.lib.bars_wap import (
    PublishRefusedError,
    batches,
    load_staged,
    publish_batch,
    record_audit,
)
from rrr_pipelines.lib.quality.audit import PartitionAudit, stage_and_audit
from rrr_pipelines.lib.sources.base import SourceInstrument
from rrr_pipelines.lib.sources.bundled import BundledSource

pytestmark = pytest.mark.pg

WINDOW = (datetime(2008, 1, 1, tzinfo=UTC), datetime(2009, 1, 1, tzinfo=UTC))
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CALENDARS = {"SP500": "XNYS", "NASDAQ": "XNAS"}


class FrameSource:
    """A source that returns a given frame as is (the real bundled bars, possibly reordered)."""

    name = "bundled"
    interval = "1d"
    synthetic = False
    keeps_updating = False
    span = BundledSource.span

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def instruments(self) -> list[SourceInstrument]:
        return [SourceInstrument(s, self.name, "index", c, "USD") for s, c in CALENDARS.items()]

    def fetch(self, start: datetime, end: datetime) -> pd.DataFrame:
        return self.frame.copy()


def _year() -> pd.DataFrame:
    return BundledSource().fetch(*WINDOW)


def _audit(url: str, frame: pd.DataFrame, run: str = "run-1") -> PartitionAudit:
    (audit,) = stage_and_audit(
        url, FrameSource(frame), partitions=[("2008", WINDOW)], calendars=CALENDARS,
        run_id=run, now=NOW,
    )  # fmt: skip
    return audit


def test_out_of_order_rows_fail_and_staging_keeps_the_source_order(rrr_db_url: str) -> None:
    bars = _year()
    swapped = bars.iloc[[*range(0, 10), 11, 10, *range(12, len(bars))]].reset_index(drop=True)
    audit = _audit(rrr_db_url, swapped)
    assert audit.failed_checks == ["bars_monotonic_ts"]
    monotonic = audit.results["bars_monotonic_ts"]
    assert monotonic.offending_rows == [11] and monotonic.observed["backward_steps"] == 1
    staged = load_staged(rrr_db_url, audit.batch_id)
    pd.testing.assert_frame_equal(staged, swapped, check_dtype=False)
    with pytest.raises(PublishRefusedError, match=r"2008 .* quarantined: failed bars_monotonic_ts"):
        publish_batch(rrr_db_url, audit.batch_id)
    assert load_bars(rrr_db_url, source="bundled", interval="1d").empty


def test_publish_replaces_the_partition_atomically_and_idempotently(rrr_db_url: str) -> None:
    bars = _year()
    first = _audit(rrr_db_url, bars)
    stats = publish_batch(rrr_db_url, first.batch_id)
    assert (stats.rows_written, stats.rows_deleted) == (len(bars), 0)
    assert publish_batch(rrr_db_url, first.batch_id).rows_written == 0  # again: no-op

    truncated = bars.iloc[:-1]  # the source corrected itself: one bar fewer
    second = _audit(rrr_db_url, truncated, run="run-2")
    assert second.failed_checks == ["bars_no_gaps"]  # ... which completeness catches
    revised = bars.copy()
    revised.loc[3, "volume"] = revised.loc[3, "volume"] + 1.0
    third = _audit(rrr_db_url, revised, run="run-3")
    assert third.passed
    stats = publish_batch(rrr_db_url, third.batch_id)
    assert (stats.rows_written, stats.rows_deleted) == (1, 0)
    back = load_bars(rrr_db_url, source="bundled", interval="1d")
    assert (
        back.loc[back["ts"] == bars.loc[3, "ts"]]
        .set_index("symbol")
        .loc[bars.loc[3, "symbol"], "volume"]
        == revised.loc[3, "volume"]
    )
    assert [b.status for b in batches(rrr_db_url, source="bundled")] == [
        "published", "quarantined", "published",
    ]  # fmt: skip
    assert load_staged(rrr_db_url, first.batch_id).empty  # superseded: rows dropped
    assert len(load_staged(rrr_db_url, second.batch_id)) == len(truncated)  # evidence kept
    with pytest.raises(PublishRefusedError, match="older than the published batch"):
        publish_batch(rrr_db_url, first.batch_id)
    with pytest.raises(PublishRefusedError, match="already audited"):
        record_audit(rrr_db_url, third.batch_id, [], {})


def test_publish_deletes_bars_the_source_no_longer_returns(rrr_db_url: str) -> None:
    bars = _year()
    publish_batch(rrr_db_url, _audit(rrr_db_url, bars).batch_id)
    stray = bars.iloc[[5]].assign(ts=pd.Timestamp("2008-01-05", tz="UTC"))  # a Saturday
    # a bar that should not exist, published by a bypassing loader, is removed by the next publish
    from rrr_pipelines.lib.bars_store import write_bars

    write_bars(rrr_db_url, stray)
    before = bars_summary(rrr_db_url, source="bundled", interval="1d")["rows"].sum()
    stats = publish_batch(rrr_db_url, _audit(rrr_db_url, bars, run="run-2").batch_id)
    assert before == len(bars) + 1 and (stats.rows_written, stats.rows_deleted) == (0, 1)
    assert bars_summary(rrr_db_url, source="bundled", interval="1d")["rows"].sum() == len(bars)
