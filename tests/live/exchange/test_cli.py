"""``rrr exchange serve`` as a real process: it starts, serves both ports' worth, and stops."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from rrr_pipelines.cli.main import cli
from tests.live.exchange.kit import BINANCE_WS, received_lines, recv_n

CLI = [sys.executable, "-m", "rrr_pipelines.cli"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "RRR_HOME": str(tmp_path / "home"), "RRR_LOG_FORMAT": "text"}


async def _start(tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "exchange", "serve", *args, env=_env(tmp_path), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    urls = dict(re.findall(r"(ws|http|metrics) (\S+)", line))
    assert set(urls) >= {"ws", "http"}, line
    return proc, urls


async def _stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    return out.decode()


@pytest.mark.asyncio
async def test_serve_a_recording_with_rest_and_metrics(tmp_path: Path) -> None:
    diffs = [m for m in received_lines(BINANCE_WS) if m["stream"] == "nknusdt@depth@100ms"]
    proc, urls = await _start(tmp_path, "--recording", str(BINANCE_WS), "--speed", "max",
                              "--metrics-port", "0", "--send-time", "--control")  # fmt: skip
    try:
        assert urls["ws"].startswith("ws://127.0.0.1:")
        async with httpx.AsyncClient(base_url=urls["http"]) as http:
            skip = await http.get("/_rrr/skip", params={"count": 1, "symbol": "NKNUSDT"})
            bad = await http.get("/_rrr/skip", params={"count": "many"})
            async with connect(urls["ws"] + "/stream?streams=nknusdt@depth@100ms") as ws:
                frames = await recv_n(ws, len(diffs) - 1)
                depth = (await http.get("/api/v3/depth", params={"symbol": "NKNUSDT"})).json()
                metrics = (await http.get(urls["metrics"])).text
                status = (await http.get("/_rrr/status")).json()
                dropped = (await http.get("/_rrr/disconnect", params={"code": 4000})).json()
                with pytest.raises(ConnectionClosedError) as closed:
                    await ws.recv()
    finally:
        out = await _stop(proc)
    assert skip.json() == {"ok": True} and bad.status_code == 400
    assert [f["data"] for f in frames] == [d["data"] for d in diffs[1:]]  # the first was skipped
    assert all(isinstance(f["rrr_send_ns"], int) for f in frames)
    assert depth["lastUpdateId"] == diffs[-1]["data"]["u"]
    assert "rrr_exchange_connections 1.0" in metrics
    assert status["frames_sent"] == len(diffs) - 1 and status["connections"] == 1
    assert dropped["dropped"] == 1 and closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4000
    assert f"stopped after {len(diffs) - 1:,} frames" in out


@pytest.mark.asyncio
async def test_serve_synthetic_coinbase_until_done(tmp_path: Path) -> None:
    proc, urls = await _start(tmp_path, "--protocol", "coinbase", "--synthetic", "3",
                              "--frames", "200", "--rate", "1000", "--speed", "max",
                              "--exit-when-done")  # fmt: skip
    async with httpx.AsyncClient(base_url=urls["http"]) as http:
        products = (await http.get("/products")).json()
    ids = [p["id"] for p in products]
    async with connect(urls["ws"]) as ws:
        await ws.send(json.dumps({"type": "subscribe", "product_ids": ids,
                                  "channels": ["level2_batch", "matches"]}))  # fmt: skip
        ack, *frames = await recv_n(ws, 1 + 3 + 200)  # ack, 3 snapshots, 200 frames
        out, _ = await asyncio.wait_for(proc.communicate(), 30)  # exits by itself
    assert proc.returncode == 0
    assert ack["type"] == "subscriptions"
    assert [f["type"] for f in frames[:3]] == ["snapshot"] * 3
    assert {f["type"] for f in frames[3:]} <= {"l2update", "match"}
    assert "stopped after 204 frames" in out.decode()  # replies count too


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of --recording, --bars, --synthetic"),
        (("--synthetic", "5"), "--protocol is required"),
        (("--protocol", "binance", "--synthetic", "5", "--lockstep", "--speed", "2"),
         "exclude each other"),
        (("--protocol", "binance", "--synthetic", "5", "--speed", "fast"), "positive number"),
        (("--recording", str(BINANCE_WS), "--protocol", "coinbase"), "is a binance recording"),
        (("--protocol", "binance", "--bars", "bundled"), "SOURCE/INTERVAL"),
    ],
)  # fmt: skip
def test_bad_invocations_fail_with_one_line(args: tuple, message: str) -> None:
    done = CliRunner().invoke(cli, ["exchange", "serve", *args])
    assert done.exit_code == 2
    assert message in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_bad_recording_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.ws.log"
    bad.write_text("wss://stream.binance.com/stream <-> 1.0\nnot a line\n")
    done = CliRunner().invoke(cli, ["exchange", "serve", "--recording", str(bad)])
    assert done.exit_code == 1
    assert "x.ws.log:2: not a recorded line" in done.output
    assert isinstance(done.exception, SystemExit)
