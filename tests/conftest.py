"""Session-wide real services: one throw-away embedded PostgreSQL, an MLflow server on demand."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Hermetic: tests never use the developer's state directory or external database.
os.environ.pop("RRR_DATABASE_URL", None)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")

from rrr_live.persistence.urls import ServerAddress
from tests.kit import services


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerAddress]:
    """The session's embedded PostgreSQL server (started once, stopped at the end)."""
    with services.embedded_server(tmp_path_factory.mktemp("pg") / "data") as address:
        yield address


@pytest.fixture
def rrr_db_url(pg_server: ServerAddress) -> str:
    """A fresh, migrated ``rrr``-schema database for one test (psycopg2 URL)."""
    return services.fresh_database(pg_server)


@pytest.fixture(scope="session")
def mlflow_tracking_uri(
    pg_server: ServerAddress, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real MLflow tracking server backed by the session PostgreSQL (started on first use)."""
    from rrr_live.persistence.server import ensure_databases

    ensure_databases(pg_server, ["mlflow_test"])
    artifacts = tmp_path_factory.mktemp("mlflow") / "artifacts"
    artifacts.mkdir()
    with services.mlflow_server(pg_server.url("mlflow_test", "psycopg2"), artifacts) as uri:
        yield uri


# Backwards-compatible name used by helpers' tests.
@pytest.fixture(scope="session")
def mlflow_server(mlflow_tracking_uri: str) -> str:
    """Alias of ``mlflow_tracking_uri``."""
    return mlflow_tracking_uri


@pytest.fixture
def rrr_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated RRR_HOME with the settings cache cleared."""
    from rrr_live.config import get_settings

    home = tmp_path / "rrr-home"
    monkeypatch.setenv("RRR_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()
