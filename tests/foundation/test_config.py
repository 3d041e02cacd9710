import subprocess
import sys
from pathlib import Path

import pytest

from rrr_live.config import Settings, redact_url
from rrr_live.errors import ConfigError


def test_defaults_bind_loopback_and_make_home_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RRR_HOME", "RRR_MLFLOW_HOST", "RRR_DAGSTER_HOST", "RRR_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings(_env_file=None)
    assert settings.mlflow_host == "127.0.0.1" and settings.dagster_host == "127.0.0.1"
    assert settings.home.is_absolute()
    assert settings.dagster_home == settings.home / "dagster"
    assert settings.tracking_uri == "http://127.0.0.1:5000"


def test_env_overrides_toml_file_which_overrides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "rrr.toml"
    toml.write_text('mlflow_port = 5555\ndagster_port = 3333\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("RRR_CONFIG_FILE", str(toml))
    monkeypatch.setenv("RRR_DAGSTER_PORT", "4444")
    settings = Settings(_env_file=None)
    assert settings.mlflow_port == 5555
    assert settings.dagster_port == 4444
    assert settings.log_level == "DEBUG"


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RRR_CONFIG_FILE", "/nonexistent/rrr.toml")
    with pytest.raises(ConfigError, match="RRR_CONFIG_FILE"):
        Settings(_env_file=None)


def test_redaction_hides_passwords_only() -> None:
    assert redact_url("postgresql://bob:s3cret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert redact_url("postgresql://bob@db/x") == "postgresql://bob@db/x"
    settings = Settings(_env_file=None, database_url="postgresql://bob:s3cret@db:5432/x")
    assert "s3cret" not in str(settings.redacted())
    assert "s3cret" not in repr(settings)
    tracking = Settings(_env_file=None, mlflow_tracking_uri="https://ann:t0ken@mlflow.internal")
    assert tracking.redacted()["mlflow_tracking_uri"] == "https://ann:***@mlflow.internal"


def test_config_show_never_prints_the_secret(tmp_path: Path) -> None:
    env = {
        "RRR_DATABASE_URL": "postgresql://bob:hunter2@127.0.0.1:1/x",
        "RRR_HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-m", "rrr_pipelines.cli", "config", "show", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "hunter2" not in out.stdout + out.stderr
    assert "bob:***@127.0.0.1:1" in out.stdout


def test_invalid_port_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RRR_MLFLOW_PORT", "99999")
    with pytest.raises(ValueError, match="mlflow_port"):
        Settings(_env_file=None)
