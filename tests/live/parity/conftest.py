"""Fixtures of the parity tests: a fresh migrated database as an asyncpg DSN."""

from __future__ import annotations

import pytest

from rrr_live.persistence.urls import ServerAddress
from tests.kit import services


@pytest.fixture
def orders_dsn(pg_server: ServerAddress) -> str:
    """A fresh database migrated on the session server (asyncpg/libpq URL)."""
    url = services.fresh_database(pg_server, prefix="parity")
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)
