"""Packed book sides (migration 0010): exact round trips, stored rows converted, old spills read."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import psycopg2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rrr_live.persistence.journal.rows import BOOK, TABLES, pack_levels, to_row, unpack_levels
from rrr_live.persistence.journal.spill import SpillBuffer
from rrr_live.persistence.migrate import available_migrations, migrate
from rrr_live.persistence.server import ensure_databases
from rrr_live.persistence.urls import ServerAddress
from tests.live.journal.kit import make_records, multiset, read_journal

_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(st.lists(st.tuples(_INT64, _INT64), max_size=60))
def test_pack_unpack_round_trip_is_exact(levels: list[tuple[int, int]]) -> None:
    packed = pack_levels(levels)
    assert len(packed) == 16 * len(levels)
    assert unpack_levels(packed) == tuple(levels)


def test_a_torn_packed_side_is_an_error() -> None:
    with pytest.raises(ValueError, match="16 bytes a level"):
        unpack_levels(pack_levels([(1, 2)])[:-1])


def _old_book_row(row: tuple[object, ...]) -> tuple[object, ...]:
    """The 0004 shape of a book row: four integer arrays instead of the packed sides."""
    bids, asks = unpack_levels(row[9]), unpack_levels(row[10])  # type: ignore[arg-type]
    return (
        *row[:9], [p for p, _ in bids], [s for _, s in bids],
        [p for p, _ in asks], [s for _, s in asks],
    )  # fmt: skip


def _insert(cur: psycopg2.extensions.cursor, table: str, row: tuple[object, ...]) -> None:
    cur.execute(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(row))})", row)


@pytest.mark.pg
@pytest.mark.asyncio
async def test_migration_0010_converts_stored_array_rows_exactly(pg_server: ServerAddress) -> None:
    name = f"journal_0010_{os.getpid()}"
    ensure_databases(pg_server, [name])
    dsn = pg_server.url(name, "libpq")
    records = make_records(300, seed=11)
    assert sum(to_row(r)[0] == BOOK for r in records) > 100
    con = psycopg2.connect(dsn)
    try:
        with con, con.cursor() as cur:  # the schema as it was before 0010, with its rows
            cur.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for mig in available_migrations():
                if mig.version <= 4:
                    cur.execute(mig.sql)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s,%s,%s)",
                        (mig.version, mig.name, mig.checksum),
                    )
            cur.execute("SELECT journal_ensure_partitions(%s::date, %s::date)",
                        ("2024-10-04", "2024-10-06"))  # fmt: skip
            for rec in records:
                table, row = to_row(rec)
                _insert(cur, table, _old_book_row(row) if table == BOOK else row)
    finally:
        con.close()
    assert 10 in migrate(dsn)
    assert multiset(await read_journal(dsn)) == multiset(records)


def test_a_json_segment_from_before_0010_is_replayed_in_todays_shape(tmp_path: Path) -> None:
    records = make_records(50, seed=5)
    rows = [to_row(r) for r in records]
    data = b""
    for table in TABLES:
        old = [_old_book_row(r) if t == BOOK else r for t, r in rows if t == table]
        payload = json.dumps(old, separators=(",", ":")).encode()
        tix = TABLES.index(table)
        crc = zlib.crc32(payload, zlib.crc32(bytes((tix,))))
        data += struct.pack("<IIB", len(payload), crc, tix) + payload
    (tmp_path / "spill-000000000001.seg").write_bytes(data)
    spill = SpillBuffer(tmp_path, hard_cap_bytes=1 << 30)
    chunk = spill.read(10_000)
    assert chunk is not None and chunk.count == len(records)
    for table in TABLES:
        assert chunk.rows.get(table, []) == [r for t, r in rows if t == table]
