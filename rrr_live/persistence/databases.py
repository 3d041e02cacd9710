"""One call that makes the three stores ready: server up, databases created, schema migrated."""

from __future__ import annotations

from dataclasses import dataclass

from rrr_live.config import Settings
from rrr_live.persistence.migrate import migrate
from rrr_live.persistence.server import ensure_databases, server_address
from rrr_live.persistence.urls import Driver, ServerAddress


@dataclass(frozen=True)
class Databases:
    """Connection URLs of the ``dagster``, ``mlflow`` and ``rrr`` databases."""

    address: ServerAddress
    dagster_db: str
    mlflow_db: str
    rrr_db: str

    def dagster_url(self) -> str:
        """SQLAlchemy URL for Dagster storage (psycopg2 driver)."""
        return self.address.url(self.dagster_db, "psycopg2")

    def mlflow_url(self) -> str:
        """SQLAlchemy URL for the MLflow backend store (psycopg2 driver)."""
        return self.address.url(self.mlflow_db, "psycopg2")

    def rrr_url(self, driver: Driver = "psycopg2") -> str:
        """URL of the market-data and journal database."""
        return self.address.url(self.rrr_db, driver)


def prepare_databases(settings: Settings, *, start: bool = True) -> Databases:
    """Start (or reach) the server, create the three databases and migrate ``rrr``."""
    address = server_address(settings, start=start)
    dbs = Databases(address, settings.dagster_db, settings.mlflow_db, settings.rrr_db)
    ensure_databases(address, [dbs.dagster_db, dbs.mlflow_db, dbs.rrr_db])
    migrate(dbs.rrr_url("libpq"))
    return dbs
