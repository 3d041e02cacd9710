"""The embedded server, migrations and URL handling against real PostgreSQL servers."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from rrr_live.errors import MigrationError
from rrr_live.persistence import migrate as migrate_mod
from rrr_live.persistence.migrate import available_migrations, migrate
from rrr_live.persistence.server import read_postmaster, start_embedded, stop_embedded
from rrr_live.persistence.urls import ServerAddress, parse_server_url


def test_url_round_trip_keeps_password_out_of_repr() -> None:
    address = parse_server_url("postgresql://bob:p%40ss@db.example:6543/whatever?sslmode=require")
    assert (address.user, address.host, address.port, address.password) == (
        "bob",
        "db.example",
        6543,
        "p@ss",
    )
    assert "p@ss" not in repr(address)
    assert (
        address.url("rrr", "psycopg2")
        == "postgresql+psycopg2://bob:p%40ss@db.example:6543/rrr?sslmode=require"
    )
    sock = ServerAddress(user="postgres", host="/tmp/sock", port=5432)
    assert sock.url("mlflow") == "postgresql://postgres@/mlflow?host=%2Ftmp%2Fsock&port=5432"


def test_non_postgres_url_is_rejected() -> None:
    from rrr_live.errors import ConfigError

    with pytest.raises(ConfigError, match="RRR_DATABASE_URL"):
        parse_server_url("mysql://x@y/z")


def test_migrations_are_idempotent_and_edits_are_refused(
    pg_server: ServerAddress, rrr_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = rrr_db_url.replace("+psycopg2", "")
    assert migrate(dsn) == []  # the fixture already applied everything
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in cur.fetchall()] == [m.version for m in available_migrations()]
    edited = [
        migrate_mod.Migration(m.version, m.name, m.sql + "\n-- edited")
        for m in available_migrations()
    ]
    monkeypatch.setattr(migrate_mod, "available_migrations", lambda: edited)
    with pytest.raises(MigrationError, match="edited"):
        migrate(dsn)


def test_start_is_idempotent_and_recovers_from_sigkill(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    first = start_embedded(pgdata)
    try:
        again = start_embedded(pgdata)
        assert again == first
        state = read_postmaster(pgdata.resolve())
        assert state is not None and state.running
        os.kill(state.pid, signal.SIGKILL)
        # Recovery from a fresh process, exactly what a user's next `rrr db up` is.
        env = {**os.environ, "RRR_HOME": str(tmp_path)}
        out = subprocess.run(
            [sys.executable, "-m", "rrr_pipelines.cli", "db", "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        recovered = read_postmaster(pgdata.resolve())
        assert recovered is not None and recovered.running and recovered.pid != state.pid
        psycopg2.connect(first.url("rrr")).close()  # the databases were created by `db up`
    finally:
        assert stop_embedded(pgdata)
    assert read_postmaster(pgdata.resolve()) is None


def test_unreachable_database_url_gives_one_clear_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RRR_HOME": str(tmp_path),
        "RRR_DATABASE_URL": "postgresql://bob:hunter2@127.0.0.1:1/x",
    }
    out = subprocess.run(
        [sys.executable, "-m", "rrr_pipelines.cli", "db", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "RRR_DATABASE_URL" in out.stderr and "127.0.0.1:1" in out.stderr
    assert "hunter2" not in out.stderr + out.stdout
