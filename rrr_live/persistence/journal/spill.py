"""Spill-to-disk buffer: append-only, fsync'd segment files replayed in order.

While PostgreSQL is unavailable the journal writer appends its batches here; when the database
returns it replays them oldest first and acknowledges what was committed. A segment is deleted
once everything in it is acknowledged. A crash between commit and acknowledgement replays some
rows twice, which the journal's ``ON CONFLICT DO NOTHING`` absorbs.

Frame: ``<u32 payload length><u32 crc32><u8 table index><payload>``, where the CRC covers the
table byte and the payload, and the payload is the MessagePack array of the rows (ints, strings
and bytes; no pickle). Segments written before the packed book levels hold JSON payloads with
the old row shape; they are still read (``rows.upgrade_legacy_row``). A torn frame at the end
of a segment (a crash mid-write) is cut off on open.

The class is synchronous and thread-safe: the writer calls it through ``asyncio.to_thread`` so
an fsync never stalls the event loop.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from rrr_live.persistence.journal.rows import TABLES, Row, upgrade_legacy_row

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IIB")
_MAX_PAYLOAD = 1 << 30
_SUFFIX = ".seg"
_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder().decode


@dataclass
class _Segment:
    number: int
    path: Path
    size: int  # bytes of complete frames


@dataclass(frozen=True)
class SpillChunk:
    """Rows read from the head of the spill, in order, with the position to acknowledge."""

    rows: dict[str, list[Row]]
    count: int
    end: tuple[int, int]  # (segment number, offset after the last frame read)
    nbytes: int = 0


@dataclass
class SpillStats:
    """Counters of one :class:`SpillBuffer`."""

    frames_written: int = 0
    rows_written: int = 0
    rows_acked: int = 0
    corrupt_bytes: int = 0
    deleted_segments: list[int] = field(default_factory=list)


def encode_frame(table: str, rows: list[Row]) -> bytes:
    """Return one frame holding ``rows`` of ``table``."""
    payload = _ENCODE(rows)
    tix = TABLES.index(table)
    crc = zlib.crc32(payload, zlib.crc32(bytes((tix,))))
    return _HEADER.pack(len(payload), crc, tix) + payload


def decode_rows(table: str, payload: bytes) -> list[Row]:
    """Return the rows of one frame's payload (MessagePack, or JSON from older segments)."""
    if payload[:1] == b"[":  # a MessagePack array never starts with 0x5b
        return [upgrade_legacy_row(table, r) for r in json.loads(payload)]
    return [tuple(r) for r in _DECODE(payload)]


def _parse_frame(buf: bytes, offset: int) -> tuple[str, bytes, int] | None:
    """Return ``(table, payload, next offset)`` of the frame at ``offset``, None if torn/bad."""
    if len(buf) - offset < _HEADER.size:
        return None
    length, crc, tix = _HEADER.unpack_from(buf, offset)
    start = offset + _HEADER.size
    if length > _MAX_PAYLOAD or tix >= len(TABLES) or len(buf) - start < length:
        return None
    payload = buf[start : start + length]
    if zlib.crc32(payload, zlib.crc32(bytes((tix,)))) != crc:
        return None
    return TABLES[tix], payload, start + length


class SpillBuffer:
    """Append-only fsync'd segments in ``directory`` with byte caps.

    Args:
        directory: where the segments live (created if missing; existing ones are recovered).
        hard_cap_bytes: unacknowledged bytes never exceed this; an append past it is refused.
        segment_bytes: a new segment starts once the current one reaches this size.
    """

    def __init__(
        self, directory: Path, *, hard_cap_bytes: int, segment_bytes: int = 64 << 20
    ) -> None:
        if hard_cap_bytes <= 0 or segment_bytes <= 0:
            raise ValueError("spill caps must be positive")
        self.directory = directory
        self.hard_cap_bytes = hard_cap_bytes
        self.segment_bytes = segment_bytes
        self.stats = SpillStats()
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._acked = 0  # offset acknowledged in the first segment
        self._handle: int | None = None  # fd of the last segment, open for appending
        directory.mkdir(parents=True, exist_ok=True)
        self._recover()

    # -- state ---------------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        """Bytes written and not yet acknowledged."""
        with self._lock:
            return sum(s.size for s in self._segments) - self._acked

    @property
    def empty(self) -> bool:
        """Whether everything written was acknowledged."""
        return self.pending_bytes == 0

    def segment_numbers(self) -> list[int]:
        """Numbers of the segment files on disk, oldest first."""
        with self._lock:
            return [s.number for s in self._segments]

    # -- append ----------------------------------------------------------------------------------

    def append(self, rows: dict[str, list[Row]]) -> bool:
        """Append one batch (rows per table) durably with one fsync; all or nothing.

        Returns False, writing nothing, when the batch would pass the hard cap.
        """
        frames = [encode_frame(table, rs) for table, rs in rows.items() if rs]
        data = b"".join(frames)
        with self._lock:
            pending = sum(s.size for s in self._segments) - self._acked
            if pending + len(data) > self.hard_cap_bytes:
                return False
            seg = self._segment_for_append()
            assert self._handle is not None
            written = os.write(self._handle, data)
            if written != len(data):  # a full disk; keep the file consistent, refuse the rows
                os.ftruncate(self._handle, seg.size)
                raise OSError(f"short write to spill segment {seg.path}")
            os.fsync(self._handle)
            seg.size += len(data)
            self.stats.frames_written += len(frames)
            self.stats.rows_written += sum(len(rs) for rs in rows.values())
        return True

    def _segment_for_append(self) -> _Segment:
        if self._segments and self._segments[-1].size < self.segment_bytes:
            if self._handle is None:
                self._handle = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND)
            return self._segments[-1]
        self._close_handle()
        number = self._segments[-1].number + 1 if self._segments else 1
        path = self.directory / f"spill-{number:012d}{_SUFFIX}"
        self._handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        self._fsync_dir()
        seg = _Segment(number, path, 0)
        self._segments.append(seg)
        return seg

    # -- replay ------------------------------------------------------------------------------------

    def read(self, max_rows: int) -> SpillChunk | None:
        """Return the oldest unacknowledged frames (about ``max_rows`` rows), or None if empty.

        Reading does not consume: the same rows come back until :meth:`ack` moves past them.
        """
        with self._lock:
            if not self._segments:
                return None
            seg = self._segments[0]
            start, stop = self._acked, seg.size
        if start >= stop:
            return None
        with seg.path.open("rb") as fh:
            fh.seek(start)
            buf = fh.read(stop - start)
        rows: dict[str, list[Row]] = {}
        count, offset = 0, 0
        while offset < len(buf) and count < max_rows:
            parsed = _parse_frame(buf, offset)
            if parsed is None:  # cannot happen for bytes we fsync'd ourselves and validated
                raise OSError(f"spill segment {seg.path} is corrupt at offset {start + offset}")
            table, payload, offset = parsed
            decoded = decode_rows(table, payload)
            rows.setdefault(table, []).extend(decoded)
            count += len(decoded)
        return SpillChunk(rows, count, (seg.number, start + offset), offset)

    def ack(self, chunk: SpillChunk) -> None:
        """Acknowledge everything up to ``chunk.end`` (committed); delete finished segments."""
        number, offset = chunk.end
        with self._lock:
            if not self._segments or self._segments[0].number != number:
                raise ValueError(f"ack of segment {number} out of order")
            self._acked = offset
            self.stats.rows_acked += chunk.count
            head = self._segments[0]
            if offset < head.size:
                return
            # The head is done. Move on (the last segment too: the next append starts a new one).
            if len(self._segments) == 1:
                self._close_handle()
            head.path.unlink(missing_ok=True)
            self._fsync_dir()
            self.stats.deleted_segments.append(head.number)
            self._segments.pop(0)
            self._acked = 0

    def close(self) -> None:
        """Close the append handle (segments stay on disk for the next start)."""
        with self._lock:
            self._close_handle()

    # -- recovery ----------------------------------------------------------------------------------

    def _recover(self) -> None:
        for path in sorted(self.directory.glob(f"spill-*{_SUFFIX}")):
            number = int(path.stem.split("-", 1)[1])
            data = path.read_bytes()
            offset = 0
            while (parsed := _parse_frame(data, offset)) is not None:
                offset = parsed[2]
            if offset < len(data):
                self.stats.corrupt_bytes += len(data) - offset
                log.error(
                    "spill segment %s: %d bytes after offset %d are torn or corrupt; cut off",
                    path, len(data) - offset, offset,
                )  # fmt: skip
                os.truncate(path, offset)
            if offset == 0:
                path.unlink()
                continue
            self._segments.append(_Segment(number, path, offset))
        if self._segments:
            log.warning(
                "spill: %d segment(s), %d bytes from a previous run will be replayed",
                len(self._segments), sum(s.size for s in self._segments),
            )  # fmt: skip

    def _close_handle(self) -> None:
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
