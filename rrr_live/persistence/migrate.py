"""Versioned, idempotent schema migrations for the ``rrr`` database.

Migrations are plain SQL files ``NNNN_name.sql`` in ``migrations/``, applied in order, each in
its own transaction, under an advisory lock so concurrent callers are safe. The checksum of every
applied file is stored; editing an applied migration is refused (write a new one instead).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

from rrr_live.errors import MigrationError

log = logging.getLogger(__name__)

_LOCK_KEY = 0x5252_5201  # arbitrary advisory-lock id owned by RRR migrations
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One SQL migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the SQL text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """Return the migrations shipped with the package, ordered by version."""
    found: list[Migration] = []
    for entry in resources.files("rrr_live.persistence.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def migrate(dsn: str) -> list[int]:
    """Apply pending migrations to the database at ``dsn``; return the versions applied.

    Raises:
        MigrationError: when a migration fails or an applied one was edited.
    """
    import psycopg2

    conn = psycopg2.connect(dsn, connect_timeout=5)
    applied: list[int] = []
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT version, checksum FROM schema_migrations")
            done = dict(cur.fetchall())
        for mig in available_migrations():
            if mig.version in done:
                if done[mig.version] != mig.checksum:
                    raise MigrationError(
                        f"migration {mig.version:04d}_{mig.name} was edited after it was applied"
                    )
                continue
            _apply(conn, mig)
            applied.append(mig.version)
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        conn.commit()
        conn.close()
    return applied


def _apply(conn: object, mig: Migration) -> None:
    import psycopg2

    try:
        with conn, conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(mig.sql)
            cur.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (mig.version, mig.name, mig.checksum),
            )
    except psycopg2.Error as e:
        raise MigrationError(f"migration {mig.version:04d}_{mig.name} failed: {e}") from e
    log.info("applied migration %04d_%s", mig.version, mig.name)
