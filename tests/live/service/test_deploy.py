"""The systemd template unit passes ``systemd-analyze verify``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not on PATH")
@pytest.mark.parametrize("instance", ["0", "1"])
def test_template_unit_verifies_for_each_shard(tmp_path, instance):
    unit = (DEPLOY / "rrr-live@.service").read_text()
    # the install prefix is the only deployment parameter: point it at this interpreter's venv
    unit = unit.replace("/opt/rrr/venv/bin/python", sys.executable)
    (tmp_path / "rrr-live@.service").write_text(unit)
    res = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / f"rrr-live@{instance}.service")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    problems = [ln for ln in res.stderr.splitlines() if "rrr-live@" in ln]
    assert res.returncode == 0 and not problems, res.stderr


def test_each_instance_is_a_shard_of_the_count_in_the_env_file():
    unit = (DEPLOY / "rrr-live@.service").read_text()
    exec_start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    assert exec_start.endswith("--config /etc/rrr/live.toml --shard %i/${RRR_LIVE_SHARDS}")
    assert "StateDirectory=rrr-live/shard-%i" in unit
    env = dict(
        ln.split("=", 1)
        for ln in (DEPLOY / "rrr-live.env.example").read_text().splitlines()
        if ln and not ln.startswith("#")
    )
    assert env["RRR_LIVE_SHARDS"] == "1"
    # what systemd hands the runner for @0 and @1 of 2 is what the runner parses
    from rrr_live.shards.hashing import ShardSpec, parse_shard

    for i in (0, 1):
        arg = exec_start.split()[-1].replace("%i", str(i)).replace("${RRR_LIVE_SHARDS}", "2")
        assert parse_shard(arg, "--shard") == ShardSpec(i, 2)


def test_env_example_holds_no_secret_values():
    for line in (DEPLOY / "rrr-live.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            if any(w in key for w in ("KEY", "SECRET", "TOKEN")):
                assert value == "", key
