"""Real local services for tests: throw-away embedded PostgreSQL servers and an MLflow server."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rrr_live.persistence.migrate import migrate
from rrr_live.persistence.server import ensure_databases, start_embedded, stop_embedded
from rrr_live.persistence.urls import ServerAddress
from rrr_pipelines.stack import mlflow_server_argv, mlflow_server_env, wait_http

_db_counter = itertools.count()


def free_port() -> int:
    """Return a currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_server(pgdata: Path) -> Iterator[ServerAddress]:
    """A real PostgreSQL server for the duration of the block (stopped explicitly, not atexit)."""
    address = start_embedded(pgdata)
    try:
        yield address
    finally:
        stop_embedded(pgdata)


def fresh_database(address: ServerAddress, prefix: str = "t") -> str:
    """Create and migrate a new, empty ``rrr``-schema database; return its psycopg2 URL."""
    name = f"{prefix}_{os.getpid()}_{next(_db_counter)}"
    ensure_databases(address, [name])
    migrate(address.url(name, "libpq"))
    return address.url(name, "psycopg2")


@contextmanager
def mlflow_server(backend_url: str, artifacts: Path) -> Iterator[str]:
    """Run ``mlflow server`` on a free loopback port, configured like ``rrr up``; yield its URI."""
    port = free_port()
    argv = mlflow_server_argv(artifacts, "127.0.0.1", port)
    env = mlflow_server_env(dict(os.environ), backend_url)
    log = (artifacts.parent / "mlflow-server.log").open("wb")
    proc = subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", 120, proc, "mlflow server")
        yield uri
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
