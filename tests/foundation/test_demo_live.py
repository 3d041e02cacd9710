"""The demo's live step around the runner: holdout span, config, supervision, report, cleanup.

The real runner (``rrr live run``) runs in the demo's end-to-end test; here a stand-in that keeps
the runner's contract (TOML config, token from the environment, control API, summary JSON at
SIGTERM) drives the supervision against the real replay exchange process.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import tomllib
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from rrr_pipelines.demo_live import (
    CONTROL_TOKEN_ENV,
    VENUE_KEY_ENV,
    VENUE_SECRET_ENV,
    Holdout,
    LiveOptions,
    LivePlan,
    LiveStepError,
    Supervision,
    _tail,
    bar_interval_s,
    demo_secrets,
    holdout_start,
    render_toml,
    run_live,
    runner_config,
    session_name,
)
from rrr_pipelines.demo_report import live_report, print_live
from tests.live.exchange.kit import BINANCE_WS

ENSEMBLE = {"trained_before": "2016-02-29 00:00:00+00:00", "oos.span": "2003-01-02..2016-01-29"}
BASELINE = {"trained_before": "", "oos.span": "2003-01-02..2016-01-29"}

# Stand-in runner: the contract's config, token and summary; /status says HALTED until resumed.
FAKE_RUNNER = r"""
import json, os, signal, sys, threading, tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
cfg = tomllib.loads(open(sys.argv[2]).read())
token = os.environ[cfg["control"]["token_env"]]
state = {"risk_state": "HALTED", "resumes": 0, "unauthorized": 0}
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def _answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(data)))
        self.end_headers(); self.wfile.write(data)
    def _ok(self):
        if self.headers.get("Authorization") == f"Bearer {token}": return True
        state["unauthorized"] += 1; self.send_response(401); self.end_headers(); return False
    def do_GET(self):
        if self._ok(): self._answer({"risk_state": state["risk_state"]})
    def do_POST(self):
        if self._ok() and self.path == "/resume":
            state.update(risk_state="NORMAL", resumes=state["resumes"] + 1)
            self._answer({"state": "NORMAL"})
srv = ThreadingHTTPServer(("127.0.0.1", cfg["control"]["port"]), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
if "--drain" in sys.argv:  # read the market data like a runner, so the tape can finish
    import asyncio
    from websockets.asyncio.client import connect
    async def drain(url):
        async with connect(url) as ws:
            async for _ in ws:
                pass
    stream = sys.argv[sys.argv.index("--drain") + 1]
    url = cfg["feed"]["url"] + "/stream?streams=" + stream
    threading.Thread(target=lambda: asyncio.run(drain(url)), daemon=True).start()
done.wait()
srv.shutdown(); srv.server_close()
summary = {
    "runner": cfg["runner"]["name"], "exit": "sigterm", "frames": 0, "batches": 0,
    "decisions": 0, "orders": [], "fills": 0, "pnl": 0.0, "equity_path": [],
    "risk_state_path": [], "limits": {}, "served": [], "shadow": None, "live_ic": {},
    "latency_ms": {}, "journal": {"rows": 0, "spilled": 0, "dropped": 0},
    "resumes": state["resumes"], "unauthorized": state["unauthorized"],
    "argv": sys.argv[:3],
    "secrets_in_env": all(os.environ.get(n) for n in
                          ("RRR_VENUE_API_KEY", "RRR_VENUE_API_SECRET", "RRR_CONTROL_TOKEN")),
    "secret_in_config_or_argv": any(os.environ[n] in open(sys.argv[2]).read() + " ".join(sys.argv)
        for n in ("RRR_VENUE_API_KEY", "RRR_VENUE_API_SECRET", "RRR_CONTROL_TOKEN")),
}
open(cfg["runner"]["summary_json"], "w").write(json.dumps(summary))
"""


def test_holdout_is_the_latest_recorded_boundary() -> None:
    holdout = holdout_start({"3": ENSEMBLE, "4": BASELINE})
    assert holdout.start == "2016-02-29"
    assert holdout.bounds == {"3": ENSEMBLE["trained_before"]}
    later = {**ENSEMBLE, "trained_before": "2016-03-07"}
    assert holdout_start({"3": ENSEMBLE, "5": later}).start == "2016-03-07"


def test_holdout_refuses_without_a_boundary_or_with_oos_inside_it() -> None:
    with pytest.raises(LiveStepError, match="trained_before"):
        holdout_start({"4": BASELINE})
    overlapping = {**BASELINE, "oos.span": "2003-01-02..2016-06-30"}
    with pytest.raises(LiveStepError, match="inside the holdout"):
        holdout_start({"3": ENSEMBLE, "4": overlapping})


def test_runner_config_is_the_contract_without_secrets(tmp_path: Path) -> None:
    config = runner_config(
        ws_url="ws://127.0.0.1:1", http_url="http://127.0.0.1:1", symbols=("NASDAQ", "SP500"),
        registry_url="http://127.0.0.1:2", summary_json=tmp_path / "s.json", control_port=3,
    )  # fmt: skip
    text = render_toml(config)
    assert tomllib.loads(text) == config
    assert config["feed"]["lockstep"] is True and config["runner"]["bar_interval_s"] == 86_400
    assert config["venue"]["api_key_env"] == VENUE_KEY_ENV
    assert config["venue"]["api_secret_env"] == VENUE_SECRET_ENV
    assert config["control"]["token_env"] == CONTROL_TOKEN_ENV
    assert "secret =" not in text and "token =" not in text
    names = {session_name() for _ in range(3)}
    assert len(names) == 3 and all(re.fullmatch(r"[a-z0-9-]{1,16}", n) for n in names)


def test_runner_config_is_accepted_by_the_runner_with_secrets_from_env(tmp_path: Path) -> None:
    from rrr_live.service.config import load_config

    config = runner_config(
        ws_url="ws://127.0.0.1:1", http_url="http://127.0.0.1:1", symbols=("NASDAQ", "SP500"),
        registry_url="http://127.0.0.1:2", summary_json=tmp_path / "s.json", control_port=3,
    )  # fmt: skip
    path = tmp_path / "runner.toml"
    path.write_text(render_toml(config))
    secrets = demo_secrets()
    loaded = load_config(path, secrets)
    assert loaded.api_secret.get() == secrets[VENUE_SECRET_ENV]
    assert loaded.control_token is not None
    assert loaded.control_token.get() == secrets[CONTROL_TOKEN_ENV]
    assert loaded.feed.lockstep and loaded.runner.warmup_source == "bundled"
    assert secrets[VENUE_SECRET_ENV] not in repr(loaded)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run_with_stand_in(
    tmp_path: Path, max_seconds: int, *runner_args: str
) -> tuple[dict, list[str], Path]:
    """The live step on a real recording exchange, with the stand-in runner."""
    fake = tmp_path / "fake_runner.py"
    fake.write_text(FAKE_RUNNER)
    plan = LivePlan("2", "1", Holdout("2016-02-29", {"1": "2016-02-29"}), ("NKNUSDT",),
                    "http://127.0.0.1:9", tmp_path / "live")  # fmt: skip
    options = LiveOptions(
        max_seconds=max_seconds, slack_s=0.0, poll_s=0.1,
        exchange_cmd=lambda _plan: [sys.executable, "-m", "rrr_pipelines.cli", "exchange",
                                    "serve", "--recording", str(BINANCE_WS), "--control",
                                    "--speed", "max"],
        runner_cmd=lambda config: [sys.executable, str(fake), "--config", str(config),
                                   *runner_args],
    )  # fmt: skip
    env = {**os.environ, "RRR_HOME": str(tmp_path / "home"), "RRR_LOG_FORMAT": "text"}
    lines: list[str] = []
    return run_live(plan, env, lines.append, options), lines, fake


def test_live_step_supervises_resumes_a_halt_and_leaves_nothing_running(tmp_path: Path) -> None:
    # Only processes the demo started count: a pytest worker may hold session servers.
    before = {p.pid for p in psutil.Process().children()}
    live, lines, fake = _run_with_stand_in(tmp_path, 2)

    assert live["ok"] and live["returncode"] == 0 and live["exit"] == "sigterm"
    assert "time bound" in live["stopped_by_demo"]
    assert live["halts"] == [{"state": "HALTED", "resumed": True, "after_resume": "NORMAL"}]
    runner_summary = json.loads((tmp_path / "live" / "summary.json").read_text())
    assert runner_summary["resumes"] == 1 and runner_summary["unauthorized"] == 0
    # secrets reach the runner by environment only: never in its config file or argv
    assert runner_summary["secrets_in_env"] and not runner_summary["secret_in_config_or_argv"]
    config = tomllib.loads((tmp_path / "live" / "runner.toml").read_text())
    assert runner_summary["argv"] == [str(fake), "--config", live["config"]]
    assert live["no_order_reason"] == "no bar closed: the runner made no decision batch"
    # nothing left: every child was waited for, the exchange's port refuses connections
    assert live["left_running"] == [] and live["killed"] == []
    assert live["exchange"]["ok"] and not live["exchange"]["finished"]
    assert not _listening(int(config["venue"]["url"].rsplit(":", 1)[1]))
    assert not _listening(config["control"]["port"])
    mine = [p for p in psutil.Process().children() if p.pid not in before]
    assert [p for p in mine if p.status() != psutil.STATUS_ZOMBIE] == []
    assert any("replay exchange" in line for line in lines)


def test_live_step_stops_the_runner_when_the_tape_is_finished(tmp_path: Path) -> None:
    live, _lines, _fake = _run_with_stand_in(tmp_path, 120, "--drain", "nknusdt@depth@100ms")
    assert live["ok"] and live["stopped_by_demo"] == "the holdout tape is finished"
    assert live["exchange"]["finished"] and live["exchange"]["frames_sent"] > 0
    assert live["seconds"] < 60 and live["left_running"] == []


def test_live_report_prints_fills_pnl_limits_risk_path_shadow_and_latency(tmp_path: Path) -> None:
    day = 86_400 * 10**9
    t0 = 1_456_704_000 * 10**9  # 2016-02-29
    runner_summary = {
        "runner": "demo", "exit": "feed-ended", "frames": 11_000, "batches": 700,
        "decisions": 700,
        "orders": [{"client_id": "demo-1", "symbol": "SP500", "side": "BUY", "qty": 3.5,
                    "status": "FILLED", "avg_price": 1950.25, "version": "2"}],
        "fills": 1, "pnl": -12.5, "equity_path": [[t0, 100_000.0], [t0 + day, 99_987.5]],
        "risk_state_path": [[t0, "NORMAL"], [t0 + day, "NORMAL"], [t0 + 2 * day, "HALTED"],
                            [t0 + 3 * day, "NORMAL"]],
        "limits": {"max_drawdown": 0.02, "max_var": None},
        "served": [{"alias": "champion", "version": "2", "from_ts_ns": t0}],
        "shadow": {"version": "1", "ic": 0.031, "hit_rate": 0.52, "n": 1400},
        "live_ic": {"2": {"ic": 0.01, "hit_rate": 0.5, "n": 1400}},
        "latency_ms": {"tick_to_decision": {"p50": 1.5, "p95": 3.0, "p99": 4.0, "p999": 6.0,
                                            "n": 700}},
        "journal": {"rows": 11_000, "spilled": 0, "dropped": 0},
    }  # fmt: skip
    plan = LivePlan("2", "1", Holdout("2016-02-29", {"1": "2016-02-29"}), ("SP500",),
                    "http://127.0.0.1:9", tmp_path)  # fmt: skip
    sup = Supervision(returncode=0, seconds=42.0)
    live = live_report(runner_summary, plan, sup, killed=[], left=[], config_path=tmp_path / "c")
    assert live["ok"] and live["fills"] == 1 and live["no_order_reason"] == ""
    assert [t["state"] for t in live["risk_state_path"]] == ["NORMAL", "HALTED", "NORMAL"]
    assert live["risk_state_path"][1]["date"] == "2016-03-02"
    assert live["final_equity"] == 99_987.5 and live["first_event_date"] == "2016-02-29"

    runner = CliRunner()
    out = runner.invoke(_print_command(live)).output
    for text in ("1 fills", "PnL -12.50", "risk limits: max_drawdown=0.02", "HALTED (2016-03-02)",
                 "IC 0.0310", "hit rate 0.5200", "tick_to_decision", "p95 3.0000",
                 "demo-1", "left running: nothing", "holdout only",
                 "live IC v2: IC 0.0100", "journal: rows 11000"):  # fmt: skip
        assert text in out, out
    assert "max_var" not in out  # unset limits are not shown

    no_fill = live_report({**runner_summary, "orders": [], "fills": 0}, plan, sup, killed=[],
                          left=[], config_path=tmp_path / "c")  # fmt: skip
    assert no_fill["no_order_reason"].startswith("700 decisions, no order")
    assert "HALTED" in no_fill["no_order_reason"]


def _print_command(live: dict) -> object:
    import click

    @click.command()
    def show() -> None:
        print_live(live)

    return show


def test_live_step_runs_only_after_every_step_passed_and_a_promotion(tmp_path: Path) -> None:
    from rrr_live.config import Settings
    from rrr_pipelines.demo import _live_failure, _live_story

    settings = Settings(home=tmp_path)
    promotion = {"version": "1", "candidate": "buy_and_hold", "alias": "champion"}
    broken = {"steps": [{"ok": True}, {"ok": False}], "promotion": promotion}
    unpromoted = {"steps": [{"ok": True}], "promotion": None}
    assert _live_story(broken, settings, {}) is None
    assert _live_story(unpromoted, settings, {}) is None
    failure = _live_failure({"returncode": 1, "left_running": ["runner"], "killed": []})
    assert failure == "runner exit 1; left running: runner"


def test_a_failed_child_is_named_by_its_exception_line(tmp_path: Path) -> None:
    log = tmp_path / "runner.log"
    log.write_text(
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "x.py", line 1, in run\n'
        "    | rrr_live.models.errors.InferenceInputError: expected shape (n, 0, 22)\n"
        "    +------------------------------------\n\n"
    )
    assert _tail(log) == (
        f"rrr_live.models.errors.InferenceInputError: expected shape (n, 0, 22) (log: {log})"
    )
    assert _tail(tmp_path / "none.log").startswith("(no log at ")


def test_intraday_holdout_keeps_its_minute_and_the_runner_its_bar_interval(tmp_path: Path) -> None:
    minute = {"trained_before": "2025-03-05 13:51:00+00:00", "oos.span": "2025-03-04..2025-03-05"}
    assert holdout_start({"7": minute}).start == "2025-03-05T13:51:00+00:00"
    assert bar_interval_s("coinbase/1m") == 60 and bar_interval_s("bundled/1d") == 86_400
    config = runner_config(
        ws_url="ws://127.0.0.1:1", http_url="http://127.0.0.1:1", symbols=("BTC-USD",),
        registry_url="http://127.0.0.1:2", summary_json=tmp_path / "s.json", control_port=3,
        bars="coinbase/1m",
    )  # fmt: skip
    assert config["runner"]["bar_interval_s"] == 60
    assert config["runner"]["warmup_source"] == "coinbase"
    with pytest.raises(LiveStepError, match="coinbase/7q"):
        bar_interval_s("coinbase/7q")
