"""The spill buffer on its own: order, acknowledgement, segments, caps and crash recovery."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rrr_live.persistence.journal.rows import BOOK, TRADE, to_row
from rrr_live.persistence.journal.spill import SpillBuffer, encode_frame
from tests.live.journal.kit import make_records


def _rows(n: int, seed: int) -> list[tuple[str, tuple[object, ...]]]:
    return [to_row(r) for r in make_records(n, seed=seed)]


def _drain(spill: SpillBuffer, max_rows: int) -> list[tuple[str, tuple[object, ...]]]:
    out: list[tuple[str, tuple[object, ...]]] = []
    while (chunk := spill.read(max_rows)) is not None:
        for table, rows in chunk.rows.items():
            out.extend((table, r) for r in rows)
        spill.ack(chunk)
    return out


def test_replays_in_order_across_segments_and_deletes_them(tmp_path: Path) -> None:
    spill = SpillBuffer(tmp_path, hard_cap_bytes=1 << 30, segment_bytes=4_000)
    frames = [_rows(7, seed) for seed in range(40)]
    for frame in frames:
        by_table: dict[str, list[tuple[object, ...]]] = {}
        for table, row in frame:
            by_table.setdefault(table, []).append(row)
        assert spill.append(by_table)
    assert len(spill.segment_numbers()) > 3
    replayed = _drain(spill, max_rows=25)
    # A chunk groups its frames' rows per table (one COPY each): per table, the order is kept.
    for table in {t for frame in frames for t, _ in frame}:
        sent = [r for frame in frames for t, r in frame if t == table]
        assert [r for t, r in replayed if t == table] == sent
    assert len(replayed) == sum(map(len, frames))
    assert spill.empty and spill.segment_numbers() == []
    assert list(tmp_path.iterdir()) == []


def test_unfinished_segments_survive_a_restart(tmp_path: Path) -> None:
    spill = SpillBuffer(tmp_path, hard_cap_bytes=1 << 30)
    rows = [r for _, r in _rows(50, 3)]
    assert spill.append({TRADE: rows[:20]}) and spill.append({BOOK: rows[20:]})
    first = spill.read(10)
    assert first is not None and spill.read(10) == first  # reading does not consume
    spill.ack(first)
    spill.close()
    # The acknowledged position is not persisted: a restart replays the unfinished segment
    # from its start (the journal's ON CONFLICT DO NOTHING absorbs the repeats).
    reopened = SpillBuffer(tmp_path, hard_cap_bytes=1 << 30)
    assert [r for _, r in _drain(reopened, 1_000)] == rows


def test_torn_tail_is_cut_off_on_open(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spill = SpillBuffer(tmp_path, hard_cap_bytes=1 << 30)
    rows = [r for _, r in _rows(10, 4)]
    assert spill.append({TRADE: rows[:5]})
    spill.close()
    (seg,) = tmp_path.iterdir()
    torn = encode_frame(TRADE, rows[5:])
    with seg.open("ab") as fh:
        fh.write(torn[: len(torn) // 2])  # a crash in the middle of the next append
    with caplog.at_level(logging.ERROR):
        reopened = SpillBuffer(tmp_path, hard_cap_bytes=1 << 30)
    assert reopened.stats.corrupt_bytes == len(torn) // 2
    assert "torn or corrupt" in caplog.text
    assert [r for _, r in _drain(reopened, 100)] == rows[:5]


def test_hard_cap_refuses_and_frees_after_ack(tmp_path: Path) -> None:
    rows = [r for _, r in _rows(30, 5)]
    frame_bytes = len(encode_frame(TRADE, rows[:10]))
    spill = SpillBuffer(tmp_path, hard_cap_bytes=frame_bytes * 2)
    assert spill.append({TRADE: rows[:10]})
    assert spill.append({TRADE: rows[10:20]}) is (
        len(encode_frame(TRADE, rows[10:20])) <= frame_bytes
    )
    assert not spill.append({TRADE: rows * 3})
    chunk = spill.read(1_000)
    assert chunk is not None
    spill.ack(chunk)
    assert spill.pending_bytes == 0 and spill.append({TRADE: rows[20:]})


def test_out_of_order_ack_is_refused(tmp_path: Path) -> None:
    spill = SpillBuffer(tmp_path, hard_cap_bytes=1 << 30, segment_bytes=10)
    rows = [r for _, r in _rows(4, 6)]
    spill.append({TRADE: rows[:2]})
    spill.append({TRADE: rows[2:]})
    head = spill.read(1)
    assert head is not None
    spill.ack(head)
    with pytest.raises(ValueError, match="out of order"):
        spill.ack(head)
