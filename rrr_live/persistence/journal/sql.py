"""The journal's SQL: staging tables, the staged COPY of one batch, partitions, retention."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from rrr_live.persistence.journal.rows import COLUMNS, TABLES, Row

DAY_NS = 86_400 * 1_000_000_000
_EPOCH = date(1970, 1, 1)


def stage_name(table: str) -> str:
    """Name of the per-connection temp staging table of ``table``."""
    return f"stage_{table}"


def day_of(day_number: int) -> date:
    """The UTC date of a day number (days since 1970-01-01, i.e. ``recv_ns // DAY_NS``)."""
    return _EPOCH + timedelta(days=day_number)


async def create_staging(con: asyncpg.Connection) -> None:
    """Create the temp staging tables on a new connection (they live as long as it does)."""
    for table in TABLES:
        await con.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage_name(table)}"
            f" (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )


async def copy_batch(con: asyncpg.Connection, rows: dict[str, list[Row]]) -> dict[str, int]:
    """Store ``rows`` (per table) exactly once, in one transaction.

    The common case, a batch never written before, is one binary COPY per table straight into
    the partitioned journal tables. A unique violation means some rows are already stored (a
    retry after an ambiguous commit, or a spill replayed after a crash): that transaction rolls
    back whole, and the batch goes through the staging tables and ``INSERT ... ON CONFLICT DO
    NOTHING`` instead, which stores only the missing rows.

    Returns the rows actually inserted per table (duplicates of stored rows are skipped).
    """
    try:
        async with con.transaction():
            for table, records in rows.items():
                if records:
                    await con.copy_records_to_table(table, records=records, columns=COLUMNS[table])
    except asyncpg.UniqueViolationError:
        return await _copy_staged(con, rows)
    return {table: len(records) for table, records in rows.items() if records}


async def _copy_staged(con: asyncpg.Connection, rows: dict[str, list[Row]]) -> dict[str, int]:
    inserted: dict[str, int] = {}
    async with con.transaction():
        for table, records in rows.items():
            if not records:
                continue
            stage = stage_name(table)
            await con.copy_records_to_table(stage, records=records, columns=COLUMNS[table])
            status = await con.execute(
                f"INSERT INTO {table} SELECT * FROM {stage} ON CONFLICT DO NOTHING"
            )
            inserted[table] = int(status.rsplit(" ", 1)[1])
    return inserted


async def probe(con: asyncpg.Connection) -> None:
    """A round trip that succeeds only when the server answers queries."""
    await con.fetchval("SELECT 1")


async def ensure_partitions(con: asyncpg.Connection, first_day: int, last_day: int) -> int:
    """Create the daily partitions for day numbers ``first_day..last_day``; return how many."""
    created = await con.fetchval(
        "SELECT journal_ensure_partitions($1, $2)", day_of(first_day), day_of(last_day)
    )
    return int(created)


async def drop_partitions(con: asyncpg.Connection, keep_from_day: int) -> list[str]:
    """Drop the partitions of days before day number ``keep_from_day``; return their names."""
    rows = await con.fetch("SELECT journal_drop_partitions($1)", day_of(keep_from_day))
    return [str(r[0]) for r in rows]
