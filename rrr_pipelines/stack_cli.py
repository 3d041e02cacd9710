"""`rrr up` in the foreground or background, and `rrr down`."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import psutil

from rrr_live.config import Settings, redact_url
from rrr_live.errors import ServiceStartError
from rrr_pipelines.stack import open_stack, start_dagster, start_mlflow

log = logging.getLogger(__name__)


def run_up(settings: Settings) -> None:
    """Start everything, print the URLs, block until SIGINT/SIGTERM, then stop everything."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    # Install handlers before starting children: an inherited ignored SIGINT would hide Ctrl-C.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    stack, dbs, env = open_stack(settings)
    try:
        mlflow = start_mlflow(stack, dbs, env)
        dagster = start_dagster(stack, env)
        click.echo(f"PostgreSQL  {dbs.address.describe()}")
        click.echo(f"MLflow UI   {mlflow.url if mlflow else redact_url(settings.tracking_uri)}")
        click.echo(f"Dagster UI  {dagster.url}")
        click.echo("Ctrl-C stops everything.")
        _write_atomically(_pid_file(settings), json.dumps(asdict(ProcessIdentity.of(os.getpid()))))
        while not stop.wait(0.5):
            dead = [s.name for s in stack.services if not s.alive()]
            if dead:
                log.error("service(s) exited: %s; stopping the stack", ", ".join(dead))
                break
    finally:
        stack.close()
        _pid_file(settings).unlink(missing_ok=True)
        click.echo("stack stopped")


def _pid_file(settings: Settings) -> Path:
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings.home / "stack.pid"


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` so that a reader sees the old file or the whole new one, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class ProcessIdentity:
    """A PID plus what makes it one process: its start time and command line (from /proc).

    A PID alone can be reused by an unrelated process after ours died; signalling it then
    would hit a stranger.
    """

    pid: int
    create_time: float
    cmdline: list[str]

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        """Identity of the live process ``pid`` (raises ``psutil.Error`` if there is none)."""
        proc = psutil.Process(pid)
        return cls(pid, proc.create_time(), proc.cmdline())

    @classmethod
    def load(cls, text: str) -> ProcessIdentity | None:
        """Parse a PID file; None when it is not one we wrote."""
        try:
            raw = json.loads(text)
            return cls(int(raw["pid"]), float(raw["create_time"]), list(raw["cmdline"]))
        except (ValueError, KeyError, TypeError):
            return None

    def is_running(self) -> bool:
        """True when ``pid`` is still the process recorded here (same start time and argv)."""
        try:
            now = ProcessIdentity.of(self.pid)
            zombie = psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
        same_start = abs(now.create_time - self.create_time) < 0.05
        return not zombie and same_start and now.cmdline == self.cmdline


def start_background(settings: Settings) -> None:
    """Run `rrr up` detached, logging to $RRR_HOME/logs/stack.log; wait until it is up."""
    log_dir = settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "stack.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rrr_pipelines.cli", "up"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceStartError(f"stack failed to start; see {log_dir / 'stack.log'}")
        if _pid_file(settings).exists():
            click.echo(f"stack running in the background (pid {proc.pid}); `rrr down` stops it")
            return
        time.sleep(0.5)
    raise ServiceStartError(f"stack did not come up within 240 s; see {log_dir / 'stack.log'}")


def stop_background(settings: Settings, timeout_s: float = 20.0) -> None:
    """Send SIGTERM to the background supervisor, if it is still the one we started; wait."""
    pid_file = _pid_file(settings)
    if not pid_file.exists():
        click.echo("no background stack is running")
        return
    owner = ProcessIdentity.load(pid_file.read_text())
    if owner is None or not owner.is_running():
        pid_file.unlink(missing_ok=True)
        click.echo("no background stack is running (stale pid file removed; nothing signalled)")
        return
    try:
        os.kill(owner.pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        click.echo("no background stack is running (stale pid file removed)")
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_file.exists():
        time.sleep(0.2)
    click.echo("stack stopped" if not pid_file.exists() else "stack is still stopping")
