"""`rrr db …`, `rrr config show`, and `rrr up --background` / `rrr down` as a user runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from rrr_pipelines.cli.main import cli
from tests.kit.services import free_port


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


@pytest.mark.slow
def test_background_stack_starts_and_down_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "RRR_HOME": str(home),
        "RRR_MLFLOW_PORT": str(free_port()),
        "RRR_DAGSTER_PORT": str(free_port()),
    }
    rrr = [sys.executable, "-m", "rrr_pipelines.cli"]
    up = subprocess.run(
        [*rrr, "up", "--background"], env=env, capture_output=True, text=True, timeout=300
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert "running in the background" in up.stdout
    pid = json.loads((home / "stack.pid").read_text())["pid"]
    assert psutil.pid_exists(pid)
    down = subprocess.run([*rrr, "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0 and "stack stopped" in down.stdout
    assert not (home / "stack.pid").exists()
    supervisor = [psutil.Process(pid)] if psutil.pid_exists(pid) else []
    assert psutil.wait_procs(supervisor, timeout=10)[1] == []
    leftovers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(home) in " ".join(p.info["cmdline"] or [])
    ]
    assert psutil.wait_procs(leftovers, timeout=10)[1] == []
