"""A throw-away embedded PostgreSQL with a migrated ``bench`` database, for the benches."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rrr_live.persistence.migrate import migrate
from rrr_live.persistence.server import ensure_databases, start_embedded, stop_embedded
from rrr_live.persistence.urls import ServerAddress


@contextmanager
def bench_database() -> Iterator[ServerAddress]:
    """Start a server in a temporary folder, create and migrate ``bench``; stop and remove it."""
    with tempfile.TemporaryDirectory() as tmp:
        pgdata = Path(tmp) / "pg"
        address = start_embedded(pgdata)
        try:
            ensure_databases(address, ["bench"])
            migrate(address.url("bench"))
            yield address
        finally:
            stop_embedded(pgdata)
