"""Child processes of the demo's live step: start, wait for readiness, stop; loopback JSON; TOML.

Split from :mod:`rrr_pipelines.demo_live` (the step's plan and supervision) so each stays small.
"""

from __future__ import annotations

import json
import selectors
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rrr_live.errors import RRRError

GRACE_SECONDS = 30  # after SIGTERM, the phased shutdown's time before SIGKILL
READY_SECONDS = 120  # the exchange reads and expands the bars before it listens


class LiveStepError(RRRError):
    """The demo's live step could not run (the message says which part and why)."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the runner's control listener needs a known one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text of one level of tables of strings, numbers, booleans and string lists."""
    out: list[str] = []
    for name, table in tables.items():
        out.append(f"[{name}]")
        out.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        out.append("")
    return "\n".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


@dataclass
class Children:
    """Every child process of the live step; :meth:`stop_all` stops and waits for each.

    Attributes:
        procs: ``(name, process)`` in start order.
    """

    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: Mapping[str, str], log: Path,
              stdout: int | IO[bytes] | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
        """Start ``argv`` (stderr, and stdout unless piped, to ``log``)."""
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                argv, env=dict(env), stdout=sink if stdout is None else stdout, stderr=sink,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.procs.append((name, proc))
        return proc

    def stop_all(self, grace: float = GRACE_SECONDS) -> list[str]:
        """SIGTERM the running ones (last started first), wait, SIGKILL what outlives ``grace``.

        Returns:
            Names of processes that had to be killed.
        """
        killed = []
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    killed.append(name)
            if proc.stdout is not None:
                proc.stdout.close()
        return killed

    def running(self) -> list[str]:
        """Names of children still running."""
        return [name for name, proc in self.procs if proc.poll() is None]


@dataclass(frozen=True)
class Exchange:
    """The replay exchange process and its URLs."""

    proc: subprocess.Popen[bytes]
    ws_url: str
    http_url: str


def start_exchange(
    children: Children, argv: list[str], env: Mapping[str, str], log: Path,
    ready_seconds: float = READY_SECONDS,
) -> Exchange:  # fmt: skip
    """Start the exchange and wait for its ``replay exchange … ws URL http URL`` line.

    Raises:
        LiveStepError: it exited or did not listen within ``ready_seconds``.
    """
    proc = children.start("exchange", argv, env, log, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = _ready_line(proc.stdout, time.monotonic() + ready_seconds)
    words = line.split()
    if "ws" not in words or "http" not in words:
        raise LiveStepError(f"replay exchange did not start: {_tail(log)}")
    return Exchange(proc, words[words.index("ws") + 1], words[words.index("http") + 1])


def _ready_line(stream: IO[bytes], deadline: float) -> str:
    """The first stdout line starting ``replay exchange`` ("" on EOF or the deadline)."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                break
            raw = stream.readline()
            if not raw:
                break
            if raw.startswith(b"replay exchange"):
                return raw.decode()
    return ""


def _tail(log: Path) -> str:
    """The log's last meaningful line (a traceback's exception line), and where the log is."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log})"
    lines = [t for t in (line.strip(" |+-") for line in text) if t]
    return f"{lines[-1] if lines else '(empty log)'} (log: {log})"


def http_json(url: str, *, token: str | None = None, method: str = "GET") -> dict[str, Any]:
    """A loopback JSON request (the token goes in the Authorization header, never the URL)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = b"" if method == "POST" else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=5) as resp:
        answer: dict[str, Any] = json.load(resp)
    return answer
