"""Fixtures of the journal tests: a fresh migrated database and an asyncpg DSN for it."""

from __future__ import annotations

import pytest

from rrr_live.persistence.urls import ServerAddress
from tests.kit import services


@pytest.fixture
def journal_dsn(pg_server: ServerAddress) -> str:
    """A fresh, migrated database on the session server, as an asyncpg/libpq URL."""
    url = services.fresh_database(pg_server, prefix="journal")
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)
