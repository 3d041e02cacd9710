"""Start, watch and stop the local platform: PostgreSQL, the MLflow server and Dagster.

Each service runs in its own session (process group) with PDEATHSIG set, so a SIGTERM to the
group stops all of its workers and a killed supervisor does not leave orphans. Shutdown sends
SIGTERM to every group, SIGKILL after a grace period, then stops PostgreSQL if we started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rrr_live.config import Settings, redact_url
from rrr_live.errors import ConfigError, ServiceStartError
from rrr_live.persistence.databases import Databases, prepare_databases
from rrr_live.persistence.server import read_postmaster, stop_embedded

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stack_config(name: str) -> str:
    """Return the text of a configuration file shipped in ``rrr_pipelines/stack_config/``.

    Raises:
        ConfigError: the file is missing from this install (one line, names the fix).
    """
    resource = resources.files("rrr_pipelines").joinpath("stack_config", name)
    try:
        return resource.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError) as e:
        raise ConfigError(
            f"the rrr install lacks its stack configuration stack_config/{name}; reinstall rrr"
        ) from e


def _parse_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env


def service_env(settings: Settings, dbs: Databases) -> dict[str, str]:
    """Environment every service and Dagster step sees (database URLs, homes, telemetry off)."""
    env = dict(os.environ)
    env.update(
        {
            "RRR_HOME": str(settings.home),
            "DAGSTER_HOME": str(settings.dagster_home),
            "RRR_PG_URL_DAGSTER": dbs.dagster_url(),
            "RRR_PG_URL_RRR": dbs.rrr_url("psycopg2"),
            "RRR_STORAGE_DIR": str(settings.storage_dir),
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "RRR_MLFLOW_TRACKING_URI": settings.tracking_uri,
            "GX_ANALYTICS_ENABLED": "false",
            "DAGSTER_DISABLE_TELEMETRY": "true",
        }
    )
    env.update(mlflow_env())
    return env


def prepare_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME under RRR_HOME and write the packaged dagster.yaml and workspace.yaml.

    Raises:
        ConfigError: the packaged instance config is missing or does not put storage in
            PostgreSQL (Dagster would otherwise fall back to SQLite without a word).
    """
    instance_yaml = stack_config("dagster.yaml")
    if "postgres_url:" not in instance_yaml:
        raise ConfigError("the packaged dagster.yaml does not configure PostgreSQL storage")
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml, encoding="utf-8")
    (home / "workspace.yaml").write_text(stack_config("workspace.yaml"), encoding="utf-8")
    return home


@dataclass
class Service:
    """A child process group we own."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str = ""

    def alive(self) -> bool:
        """True while the main process runs."""
        return self.proc.poll() is None


@dataclass
class Stack:
    """The set of services one supervisor started, stopped in reverse order."""

    settings: Settings
    services: list[Service] = field(default_factory=list)
    started_pg: bool = False
    stopped: bool = False

    def spawn(self, name: str, argv: list[str], env: dict[str, str], url: str = "") -> Service:
        """Start ``argv`` in its own session with output to ``$RRR_HOME/logs/<name>.log``."""
        log_dir = self.settings.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        out = (log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        out.close()
        service = Service(name, proc, url)
        self.services.append(service)
        log.info("started %s (pid %s)", name, proc.pid)
        return service

    def close(self, grace_s: float = 6.0) -> None:
        """Stop every service (idempotent): SIGTERM groups, SIGKILL stragglers, then PostgreSQL."""
        if self.stopped:
            return
        self.stopped = True
        for service in reversed(self.services):
            _signal_group(service.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for service in reversed(self.services):
            try:
                service.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", service.name, grace_s)
            _signal_group(service.proc.pid, signal.SIGKILL)
            if service.proc.poll() is None:
                service.proc.wait(2)
            log.info("stopped %s", service.name)
        if self.started_pg and stop_embedded(self.settings.pg_data):
            log.info("stopped embedded PostgreSQL")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def wait_http(
    url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None, name: str = "service"
) -> None:
    """Poll ``url`` until it answers 200; fail early if the process ``proc`` died.

    Raises:
        ServiceStartError: on timeout or when the process exits first.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceStartError(f"{name} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise ServiceStartError(f"{name} at {url} did not answer within {timeout_s:.0f}s")


def http_ok(url: str) -> bool:
    """True if ``url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def open_stack(settings: Settings) -> tuple[Stack, Databases, dict[str, str]]:
    """Bring up PostgreSQL (if embedded) and databases; return the stack and service env."""
    was_running = settings.database_url is not None or _pg_running(settings)
    dbs = prepare_databases(settings)
    stack = Stack(settings, started_pg=not was_running)
    prepare_dagster_home(settings)
    return stack, dbs, service_env(settings, dbs)


def dagster_environment(settings: Settings) -> dict[str, str]:
    """Databases ready, DAGSTER_HOME written: the environment for any ``dagster`` command."""
    dbs = prepare_databases(settings)
    prepare_dagster_home(settings)
    return service_env(settings, dbs)


def _pg_running(settings: Settings) -> bool:
    state = read_postmaster(settings.pg_data.resolve())
    return state is not None and state.running


def mlflow_server_argv(artifacts: Path, host: str, port: int, workers: str = "1") -> list[str]:
    """The `mlflow server` command line: proxied local artifacts; no backend URI (see env)."""
    return [
        sys.executable, "-m", "mlflow", "server",
        "--artifacts-destination", str(artifacts), "--host", host, "--port", str(port),
        "--workers", workers,
    ]  # fmt: skip


def mlflow_env() -> dict[str, str]:
    """The packaged MLflow server environment (``mlflow-server.env``: job runner, telemetry off)."""
    return _parse_env(stack_config("mlflow-server.env"))


def mlflow_server_env(base: dict[str, str], backend_url: str) -> dict[str, str]:
    """Environment of the MLflow server: ``base``, the packaged settings and the backend store.

    The backend URI may hold a database password, so it travels in the environment
    (``MLFLOW_BACKEND_STORE_URI``, read by ``mlflow server``), never on the command line.
    """
    return {**base, **mlflow_env(), "MLFLOW_BACKEND_STORE_URI": backend_url}


def _log_name(stack: Stack, service: Service) -> str:
    return f"{service.name} (log: {stack.settings.home / 'logs' / service.name}.log)"


def start_mlflow(stack: Stack, dbs: Databases, env: dict[str, str]) -> Service | None:
    """Start the MLflow server unless one already answers at the tracking URI."""
    settings = stack.settings
    if settings.mlflow_tracking_uri or http_ok(f"{settings.tracking_uri}/health"):
        log.info("using MLflow at %s", redact_url(settings.tracking_uri))
        return None
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    server_env = mlflow_server_env(env, dbs.mlflow_url())
    argv = mlflow_server_argv(
        settings.artifacts_dir, settings.mlflow_host, settings.mlflow_port,
        server_env.get("MLFLOW_WORKERS", "1"),
    )  # fmt: skip
    service = stack.spawn("mlflow", argv, server_env, settings.tracking_uri)
    wait_http(f"{settings.tracking_uri}/health", 90, service.proc, _log_name(stack, service))
    return service


def start_dagster(stack: Stack, env: dict[str, str]) -> Service:
    """Start ``dagster dev`` (webserver + daemon) on the configured loopback port."""
    settings = stack.settings
    workspace = prepare_dagster_home(settings) / "workspace.yaml"
    argv = [
        sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
        "-h", settings.dagster_host, "-p", str(settings.dagster_port),
    ]  # fmt: skip
    url = f"http://{settings.dagster_host}:{settings.dagster_port}"
    service = stack.spawn("dagster", argv, {**env, "PYTHONUNBUFFERED": "1"}, url)
    wait_http(f"{url}/server_info", 120, service.proc, _log_name(stack, service))
    return service
