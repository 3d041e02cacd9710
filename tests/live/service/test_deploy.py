"""The systemd template unit passes ``systemd-analyze verify``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not on PATH")
def test_template_unit_verifies(tmp_path):
    unit = (DEPLOY / "rrr-live@.service").read_text()
    # the install prefix is the only deployment parameter: point it at this interpreter's venv
    unit = unit.replace("/opt/rrr/venv/bin/python", sys.executable)
    (tmp_path / "rrr-live@.service").write_text(unit)
    res = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / "rrr-live@paper.service")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    problems = [ln for ln in res.stderr.splitlines() if "rrr-live@" in ln]
    assert res.returncode == 0 and not problems, res.stderr


def test_env_example_holds_no_secret_values():
    for line in (DEPLOY / "rrr-live.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            if any(w in key for w in ("KEY", "SECRET", "TOKEN")):
                assert value == "", key
