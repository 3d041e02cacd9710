"""`rrr db …`, `rrr config show`, and `rrr up --background` / `rrr down` as a user runs them."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rrr_pipelines.cli.main import cli


def test_db_lifecycle_up_status_url_down(rrr_home: Path) -> None:
    runner = CliRunner()
    stopped = runner.invoke(cli, ["db", "status"])
    assert stopped.exit_code == 1 and "stopped" in stopped.output
    up = runner.invoke(cli, ["db", "up"])
    assert up.exit_code == 0, up.output
    assert "database dagster" in up.output and "database rrr" in up.output
    try:
        status = runner.invoke(cli, ["db", "status"])
        assert status.exit_code == 0 and "running" in status.output
        url = runner.invoke(cli, ["db", "url", "--db", "mlflow", "--driver", "psycopg2"])
        assert url.output.startswith("postgresql+psycopg2://postgres@/mlflow?host=")
        assert "stopped (`rrr db up` starts it)" in stopped.output
    finally:
        down = runner.invoke(cli, ["db", "down"])
    assert "stopped" in down.output
    assert "was not running" in runner.invoke(cli, ["db", "down"]).output


def test_db_down_never_stops_an_external_server(
    rrr_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rrr_live.config import get_settings

    monkeypatch.setenv("RRR_DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/x")
    get_settings.cache_clear()
    out = CliRunner().invoke(cli, ["db", "down"])
    assert out.exit_code == 0 and "not ours to stop" in out.output


def test_config_show_prints_a_table_and_json(rrr_home: Path) -> None:
    runner = CliRunner()
    table = runner.invoke(cli, ["config", "show"])
    assert table.exit_code == 0 and f"home                 {rrr_home}" in table.output
    values = json.loads(runner.invoke(cli, ["config", "show", "--json"]).output)
    assert values["home"] == str(rrr_home) and values["dagster_port"] == 3000


def test_down_without_a_background_stack_says_so(rrr_home: Path) -> None:
    out = CliRunner().invoke(cli, ["down"])
    assert out.exit_code == 0 and "no background stack" in out.output


# `rrr up --background` / `rrr down` end to end: tests/foundation/test_secrets.py.
