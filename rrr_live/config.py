"""One typed settings object, read from the environment, `.env` and an optional TOML file.

Precedence (highest first): environment variables (``RRR_*``), ``.env`` in the working
directory, the TOML file named by ``RRR_CONFIG_FILE``, then the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rrr_live.errors import ConfigError

LOOPBACK = "127.0.0.1"


class Settings(BaseSettings):
    """Every knob of the platform, validated at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="RRR_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(default=Path(".rrr"), description="State directory (PG data, Dagster home)")
    database_url: SecretStr | None = Field(
        default=None,
        description="External PostgreSQL server URL; unset = the embedded server under home",
    )
    dagster_db: str = Field(default="dagster", description="Database for Dagster storage")
    mlflow_db: str = Field(default="mlflow", description="Database for the MLflow backend store")
    rrr_db: str = Field(default="rrr", description="Database for market data and the journal")
    mlflow_host: str = Field(default=LOOPBACK, description="MLflow server bind address")
    mlflow_port: int = Field(default=5000, ge=1, le=65535, description="MLflow server port")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="Use this MLflow server instead of the local one"
    )
    dagster_host: str = Field(default=LOOPBACK, description="Dagster webserver bind address")
    dagster_port: int = Field(default=3000, ge=1, le=65535, description="Dagster webserver port")
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="auto = text on a terminal, JSON otherwise"
    )
    log_level: str = Field(default="INFO", description="Root log level")
    config_file: Path | None = Field(default=None, description="Optional TOML settings file")

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the optional TOML file below env and .env."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml_path = os.environ.get("RRR_CONFIG_FILE")
        if toml_path:
            if not Path(toml_path).is_file():
                raise ConfigError(f"RRR_CONFIG_FILE={toml_path!r} does not exist")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        sources.append(file_secret_settings)
        return tuple(sources)

    @property
    def pg_data(self) -> Path:
        """Data directory of the embedded PostgreSQL server."""
        return self.home / "pg"

    @property
    def dagster_home(self) -> Path:
        """Absolute DAGSTER_HOME shared by every command."""
        return self.home / "dagster"

    @property
    def artifacts_dir(self) -> Path:
        """Local MLflow artifact root."""
        return self.home / "mlflow-artifacts"

    @property
    def storage_dir(self) -> Path:
        """Root of the Parquet IO manager."""
        return self.home / "storage"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI that clients should use."""
        return self.mlflow_tracking_uri or f"http://{self.mlflow_host}:{self.mlflow_port}"

    def redacted(self) -> dict[str, Any]:
        """Return the settings as plain values with every secret replaced by ``***``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = redact_url(value.get_secret_value())
            elif isinstance(value, str) and "://" in value:  # e.g. a tracking URI with basic auth
                out[name] = redact_url(value)
            else:
                out[name] = str(value) if isinstance(value, Path) else value
        return out


def redact_url(url: str) -> str:
    """Hide the password of a URL (``user:***@host``), keep everything else readable."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    try:
        return Settings()
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"invalid RRR configuration: {e}") from e
