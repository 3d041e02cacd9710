"""A password in RRR_DATABASE_URL shows in no process command line, log line or CLI output."""

import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import psycopg2
import pytest

from rrr_live.persistence.urls import ServerAddress
from tests.kit.services import embedded_server, free_port

RRR = [sys.executable, "-m", "rrr_pipelines.cli"]
ROLE = "rrr_owner"


def _password_role(server: ServerAddress, password: str) -> str:
    """Create a role that must give its password (scram) on that server; return its URL."""
    with psycopg2.connect(server.url("postgres")) as conn, conn.cursor() as cur:
        conn.autocommit = True
        cur.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD %s", (password,))
        cur.execute("SHOW hba_file")
        hba = Path(cur.fetchone()[0])
        hba.write_text(f"local all {ROLE} scram-sha-256\n" + hba.read_text())
        cur.execute("SELECT pg_reload_conf()")
    query = f"host={server.host}&port={server.port}"
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(f"postgresql://{ROLE}:wrong@/postgres?{query}").close()
    return f"postgresql://{ROLE}:{password}@/postgres?{query}"


def _reader_url(server: ServerAddress, owner_url: str) -> str:
    """The URL of a role without CREATEDB (trust auth on the socket)."""
    with psycopg2.connect(server.url("postgres")) as conn, conn.cursor() as cur:
        cur.execute("CREATE ROLE rrr_reader LOGIN")
    return owner_url.replace(f"{ROLE}:", "rrr_reader:")


def _rrr(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    return _rrr_parallel([args], env, timeout)[0]


def _rrr_parallel(commands: list[list[str]], env: dict[str, str], timeout: float = 60) -> list[str]:
    """Run several ``rrr`` commands at once; return each one's stdout + stderr."""
    procs = [
        subprocess.Popen(
            [*RRR, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for args in commands
    ]
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, stderr[-2000:]
        outputs.append(stdout + stderr)
    return outputs


def _command_lines_with(text: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if text in cmdline:
            found.append(f"{proc.pid}: {cmdline[:200]}")
    return found


def _stack_processes(home: Path) -> list[psutil.Process]:
    procs = psutil.process_iter(["cmdline"])
    return [p for p in procs if str(home) in " ".join(p.info["cmdline"] or [])]


@pytest.mark.slow
def test_background_stack_keeps_the_password_out_of_argv_logs_and_output(tmp_path: Path) -> None:
    """`rrr up --background` / `rrr down` on an external server whose role needs a password."""
    password = f"pw-{secrets.token_hex(12)}"
    home = tmp_path / "home"
    with embedded_server(tmp_path / "pg") as server:
        url = _password_role(server, password)
        mlflow_port = free_port()
        env = {
            **os.environ,
            "RRR_HOME": str(home),
            "RRR_DATABASE_URL": url,
            "RRR_MLFLOW_PORT": str(mlflow_port),
            "RRR_DAGSTER_PORT": str(free_port()),
            "RRR_LOG_FORMAT": "json",
            "RRR_LOG_LEVEL": "DEBUG",
        }
        outputs = [_rrr(["up", "--background"], env, timeout=300)]
        assert "running in the background" in outputs[0]
        pid = json.loads((home / "stack.pid").read_text())["pid"]
        try:
            assert _stack_processes(home), "the stack's processes are visible"
            assert _command_lines_with(password) == []
            # MLflow reached its backend store with the password it got through its environment.
            with urllib.request.urlopen(f"http://127.0.0.1:{mlflow_port}/health") as resp:
                assert resp.status == 200
            *shown, revealed = _rrr_parallel(
                [
                    ["db", "up"],
                    ["db", "status"],
                    ["db", "url"],
                    ["db", "url", "--db", "mlflow", "--driver", "psycopg2"],
                    ["config", "show"],
                    ["config", "show", "--json"],
                    ["db", "url", "--show-password"],
                ],
                env,
            )
            outputs += shown
            assert password in revealed  # only when asked for
        finally:
            down = _rrr(["down"], env)
            outputs.append(down)
        assert "stack stopped" in down and not (home / "stack.pid").exists()
        supervisor = [psutil.Process(pid)] if psutil.pid_exists(pid) else []
        assert psutil.wait_procs(supervisor, timeout=10)[1] == []
        assert psutil.wait_procs(_stack_processes(home), timeout=10)[1] == []
        wrong, no_createdb = (
            subprocess.run(
                [*RRR, "db", "up"], env={**env, **extra}, capture_output=True, text=True, timeout=60
            )
            for extra in (
                {"RRR_DATABASE_URL": url.replace(password, "bad-pw")},
                {"RRR_DATABASE_URL": _reader_url(server, url), "RRR_DAGSTER_DB": "dagster_new"},
            )
        )
    assert no_createdb.returncode == 1, no_createdb.stderr
    assert no_createdb.stderr.strip().splitlines() == [
        f"Error: database 'dagster_new' does not exist on {server.host} and user 'rrr_reader' "
        "may not create it (permission denied to create database); create it, or grant CREATEDB"
    ]
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1
    assert "password authentication failed" in wrong.stderr and "bad-pw" not in wrong.stderr
    assert f"postgresql://{ROLE}:***@/rrr?" in outputs[3]
    assert json.loads(outputs[6])["database_url"].startswith(f"postgresql://{ROLE}:***@")
    for text in outputs:
        assert password not in text
    logs = sorted((home / "logs").glob("*.log"))
    assert {p.name for p in logs} >= {"stack.log", "mlflow.log", "dagster.log"}
    for log in logs:
        assert password not in log.read_text(errors="replace"), log.name


def test_mlflow_gets_its_backend_uri_through_the_environment(tmp_path: Path) -> None:
    from rrr_pipelines.stack import mlflow_server_argv, mlflow_server_env

    url = "postgresql+psycopg2://rrr:s3cret@db.internal:5432/mlflow"
    argv = mlflow_server_argv(tmp_path / "artifacts", "127.0.0.1", 5000)
    assert not any("s3cret" in arg or "postgresql" in arg for arg in argv)
    env = mlflow_server_env({"PATH": "/bin"}, url)
    assert env["MLFLOW_BACKEND_STORE_URI"] == url and env["PATH"] == "/bin"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    # The installed `mlflow server` reads exactly that variable for --backend-store-uri (read from
    # its source: importing mlflow.cli costs seconds; the slow test above runs the real server).
    spec = importlib.util.find_spec("mlflow")  # a top-level spec does not import the package
    assert spec is not None and spec.origin is not None
    source = (Path(spec.origin).parent / "cli" / "__init__.py").read_text()
    declared = re.search(r'"--backend-store-uri",\s*envvar="(\w+)"', source)
    assert declared is not None and declared.group(1) == "MLFLOW_BACKEND_STORE_URI"


def test_dagster_instance_ref_on_argv_names_the_variable_not_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dagster dev` passes the serialized instance ref on its children's command lines."""
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import serialize_value

    from rrr_live.config import Settings
    from rrr_pipelines.stack import prepare_dagster_home

    home = prepare_dagster_home(Settings(_env_file=None, home=tmp_path / "home"))
    monkeypatch.setenv("RRR_PG_URL_DAGSTER", "postgresql+psycopg2://rrr:s3cret@db/dagster")
    ref = serialize_value(InstanceRef.from_dir(str(home)))
    assert "RRR_PG_URL_DAGSTER" in ref and "PostgresRunStorage" in ref
    assert "s3cret" not in ref
