"""CLI failures are one line, fast, and `rrr down` never signals a process it did not start."""

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from rrr_pipelines.cli.main import cli, one_line
from rrr_pipelines.stack_cli import ProcessIdentity
from tests.kit.services import free_port

RRR = [sys.executable, "-m", "rrr_pipelines.cli"]


def _run(args: list[str], **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    out = subprocess.run(
        [*RRR, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    return out, time.monotonic() - started


@pytest.fixture
def stranger() -> subprocess.Popen[bytes]:
    """A live process that has nothing to do with RRR."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("how", ["bare pid", "reused pid"])
def test_down_never_signals_an_unrelated_process(
    rrr_home: Path, stranger: subprocess.Popen[bytes], how: str
) -> None:
    rrr_home.mkdir(parents=True)
    if how == "bare pid":  # an old-style file, or one a user wrote
        (rrr_home / "stack.pid").write_text(str(stranger.pid))
    else:  # our supervisor died and the kernel gave its PID to someone else
        ours = ProcessIdentity.of(os.getpid())
        reused = ProcessIdentity(stranger.pid, ours.create_time, ours.cmdline)
        (rrr_home / "stack.pid").write_text(json.dumps(asdict(reused)))
    out = CliRunner().invoke(cli, ["down"])
    assert out.exit_code == 0, out.output
    assert "stale pid file removed; nothing signalled" in out.output
    assert not (rrr_home / "stack.pid").exists()
    assert stranger.poll() is None  # still alive: never signalled


def test_process_identity_recognises_the_process_it_recorded(
    stranger: subprocess.Popen[bytes],
) -> None:
    recorded = ProcessIdentity.load(json.dumps(asdict(ProcessIdentity.of(stranger.pid))))
    assert recorded is not None and recorded.is_running()
    stranger.kill()
    stranger.wait()
    assert not recorded.is_running()


def test_external_postgres_down_fails_within_10s_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://rrr:hunter2-secret@127.0.0.1:{free_port()}/postgres"
    env = {**os.environ, "RRR_HOME": str(tmp_path / "home"), "RRR_DATABASE_URL": url}
    # `db url` and `db up` share one path (prepare_databases); `db status` asks without starting.
    commands = [["db", "status"], ["dagster", "instance", "info"]]
    started = time.monotonic()
    procs = [  # in parallel: each one waits out the same few seconds of connection retries
        subprocess.Popen([*RRR, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for args in commands
    ]
    for args, proc in zip(commands, procs, strict=True):
        stdout, stderr = (b.decode() for b in proc.communicate(timeout=60))
        elapsed = time.monotonic() - started
        assert proc.returncode == 1, (args, stderr)
        assert elapsed < 10, f"{args} took {elapsed:.1f}s"
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, (args, stderr)
        assert lines[0].startswith("Error: RRR_DATABASE_URL: cannot reach PostgreSQL at 127.0.0.1:")
        assert "start that server, or unset RRR_DATABASE_URL" in lines[0]
        assert "hunter2-secret" not in stdout + stderr


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    out, _ = _run(["db", "status"], RRR_CONFIG_FILE=str(tmp_path / "missing.toml"))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"Error: RRR_CONFIG_FILE={str(tmp_path / 'missing.toml')!r} does not exist"
    ]


def test_one_line_folds_multi_line_messages() -> None:
    assert one_line(RuntimeError("failed\n  detail one\n\ndetail two ")) == (
        "failed; detail one; detail two"
    )
    assert one_line(RuntimeError("")) == "RuntimeError"
