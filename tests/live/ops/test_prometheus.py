"""The shipped monitoring on a real Prometheus (Debian's ``prometheus`` package, installed by
``make system-deps``): promtool checks and unit-tests the rules; a real ``prometheus`` process,
configured from ``deploy/prometheus/prometheus.yml``, scrapes a running runner; every metric the
rules and the Grafana dashboard use is in what it scraped; halting the runner through its
control API makes TradingHalted fire.

Without ``prometheus``/``promtool`` on PATH the tests skip, except under ``CI=true`` where they
fail: CI runs ``make system-deps`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from rrr_live.config import get_settings
from rrr_live.exchange import ExchangeServer
from rrr_live.service.assemble import run_live
from rrr_live.service.config import load_config
from tests.kit.services import free_port
from tests.live.service.runner_kit import paper, random_bars, runner_env, tape_of

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "rules" / "rrr-live.rules.yml"
RULE_TESTS = PROM / "tests" / "rrr-live.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "rrr-live.json"
TOKEN = "ops-test-token-7f3a"
N_BARS = 40  # ~1400 trade frames: the feed reports them (and their time) every 256
# a metric name in PromQL: rrr_* (ours) or up (Prometheus' own per target); not a label value
METRIC = re.compile(r'(?<![\w"])(rrr_[a-z0-9_]+|up)(?=\s*[{(\[)\s,]|$)')


def tool(name: str) -> str:
    """The path of a Prometheus binary; skip without it (fail under ``CI=true``)."""
    path = shutil.which(name)
    if path is None:
        why = f"{name} not on PATH (Debian package 'prometheus': run `make system-deps` as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return path


def metric_names(exprs: Iterable[str]) -> set[str]:
    """Metric names the PromQL expressions select."""
    return {m for e in exprs for m in METRIC.findall(e)}


def rule_exprs() -> list[str]:
    """Every alert rule's expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def panel_exprs() -> list[str]:
    """Every panel query of the dashboard (rows' panels included)."""
    board = json.loads(DASHBOARD.read_text())
    panels = list(board["panels"])
    for p in board["panels"]:
        panels += p.get("panels", [])
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def variable_queries() -> list[tuple[str, str]]:
    """``(metric, label)`` of the dashboard's ``label_values`` query variables."""
    board = json.loads(DASHBOARD.read_text())
    out = []
    for v in board["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((\w+), *(\w+)\)", q)
            assert m, f"variable {v['name']}: {q}"
            out.append((m[1], m[2]))
    return out


def dashboard_exprs() -> list[str]:
    """Every query of the dashboard: panel targets and query variables."""
    return panel_exprs() + [f"{metric}{{{label}!=''}}" for metric, label in variable_queries()]


def test_promtool_checks_and_unit_tests_the_rules():
    promtool = tool("promtool")
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout


def test_expression_parser_finds_metric_names():
    exprs = ['histogram_quantile(0.95, rate(rrr_stage_latency_seconds_bucket{stage="x"}[5m]))',
             'time() - rrr_feed_last_frame_timestamp_seconds > 30', 'up{job="rrr-live"} == 0',
             'sum by (reason) (increase(rrr_risk_denials_total[$__rate_interval]))',
             'label_values(rrr_trading_state, instance)', 'rrr_equity']  # fmt: skip
    assert metric_names(exprs) == {
        "rrr_stage_latency_seconds_bucket", "rrr_feed_last_frame_timestamp_seconds", "up",
        "rrr_risk_denials_total", "rrr_trading_state", "rrr_equity",
    }  # fmt: skip


def prometheus_config(path: Path, metrics_port: int) -> Path:
    """The shipped configuration, pointed at the test runner: 1 s scrapes and evaluations."""
    cfg: dict[str, Any] = yaml.safe_load((PROM / "prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
    cfg["rule_files"] = [str(PROM / f) for f in cfg["rule_files"]]
    (job,) = cfg["scrape_configs"]
    job["scrape_interval"] = "1s"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"],
                              "labels": {"runner": "t1", "shard": "0/1"}}]  # fmt: skip
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def prometheus_bin() -> str:
    """The ``prometheus`` binary (checked before the runner's surroundings are built)."""
    return tool("prometheus")


@pytest.fixture
def env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch):
    """The runner's database, home, keys, control token and registered champion."""
    monkeypatch.setenv("RRR_CONTROL_TOKEN", TOKEN)
    yield runner_env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch)
    get_settings.cache_clear()


async def poll(
    http: httpx.AsyncClient, path: str, done: Callable[[Any], bool], within_s: float = 20.0
) -> Any:
    """GET ``path`` of the Prometheus API until ``done(data)``; its data (fails at the deadline)."""
    deadline = time.monotonic() + within_s
    data: Any = None
    while time.monotonic() < deadline:
        try:
            r = await http.get(path)
            data = r.json()["data"] if r.status_code == 200 else None
        except httpx.TransportError:
            data = None
        if data is not None and done(data):
            return data
        await asyncio.sleep(0.2)  # polling a server we do not control: no event to await
    raise AssertionError(f"{path}: condition not met in {within_s:g} s; last answer {data}")


async def value(http: httpx.AsyncClient, query: str, done: Callable[[float], bool]) -> float:
    """The one-series instant value of ``query`` once ``done(value)`` (polled to a deadline)."""

    def answered(data: Any) -> bool:
        return len(data["result"]) == 1 and done(float(data["result"][0]["value"][1]))

    data = await poll(http, f"/api/v1/query?query={quote(query)}", answered)
    return float(data["result"][0]["value"][1])


@asynccontextmanager
async def _prometheus(
    binary: str, tmp: Path, metrics_port: int
) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    config = prometheus_config(tmp / "prom.yml", metrics_port)
    # flags of Prometheus 2.42 (Debian bookworm); the same in 2.x and 3.x
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    log = (tmp / "prometheus.log").open("wb")
    proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            yield http
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


def _target_up(data: Any) -> bool:
    return any(t["health"] == "up" for t in data["activeTargets"])


def _firing(name: str) -> Callable[[Any], bool]:
    def check(data: Any) -> bool:
        return any(a["labels"]["alertname"] == name and a["state"] == "firing"
                   for a in data["alerts"])  # fmt: skip

    return check


@pytest.mark.pg
@pytest.mark.asyncio
async def test_prometheus_scrapes_the_runner_and_fires_trading_halted(
    prometheus_bin, env, tmp_path
):
    needed = metric_names(rule_exprs()) | metric_names(dashboard_exprs())
    assert {"rrr_trading_state", "rrr_stage_latency_seconds_bucket", "up"} <= needed
    metrics_port, control_port = free_port(), free_port()
    async with (
        _prometheus(prometheus_bin, tmp_path, metrics_port) as http,
        ExchangeServer(tape_of(random_bars(N_BARS)), lockstep=True, send_time=True,
                       paper=paper()) as ex,
    ):  # fmt: skip
        path = env.toml(ex.http_url, tmp_path / "runner.toml")
        path.write_text(path.read_text() + f"[control]\nport = {control_port}\n"
                        f"metrics_port = {metrics_port}\n")  # fmt: skip
        runner = asyncio.create_task(run_live(load_config(path)))
        try:
            await asyncio.wait_for(ex.finished(), 60)  # every bar decided
            await poll(http, "/api/v1/targets", _target_up)
            stored = await poll(http, "/api/v1/label/__name__/values",
                                lambda names: needed <= set(names))  # fmt: skip
            assert needed <= set(stored)
            for expr in panel_exprs():  # every panel's query is valid PromQL with an answer
                q = expr.replace("$instance", ".*").replace("$__rate_interval", "1m")
                await poll(http, f"/api/v1/query?query={quote(q)}", lambda d: bool(d["result"]))
            for metric, label in variable_queries():  # the runner selector lists the runner
                r = await http.get(f"/api/v1/label/{label}/values", params={"match[]": metric})
                assert f"127.0.0.1:{metrics_port}" in r.json()["data"]
            latency = await poll(http, "/api/v1/series?match[]=rrr_stage_latency_seconds_"
                                 'bucket{stage="tick_to_decision"}', bool)  # fmt: skip
            assert {s["runner"] for s in latency} == {"t1"}  # the target's labels are kept
            # the values are the runner's: every bar close decided, the configured limit,
            # frames seconds old, the state ACTIVE (TradingHalted not firing yet)
            assert await value(http, "rrr_batches_total", lambda v: v == N_BARS) == N_BARS
            assert await value(http, "rrr_drawdown_limit_ratio", math.isfinite) == 0.5
            feed_age = "time() - rrr_feed_last_frame_timestamp_seconds"
            assert 0 <= await value(http, feed_age, math.isfinite) < 30
            assert await value(http, 'rrr_trading_state{state="active"}', math.isfinite) == 1
            alerts = (await http.get("/api/v1/alerts")).json()["data"]
            assert not _firing("TradingHalted")(alerts)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{control_port}") as c:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                assert (await c.post("/halt", headers=auth)).json() == {"state": "halted"}
            alerts = await poll(http, "/api/v1/alerts", _firing("TradingHalted"))
            (halted,) = [a for a in alerts["alerts"]
                         if a["labels"]["alertname"] == "TradingHalted"]  # fmt: skip
            assert halted["labels"]["shard"] == "0/1"
            assert halted["annotations"]["runbook"] == "docs/operations.md#tradinghalted"
            os.kill(os.getpid(), signal.SIGTERM)  # the runner's phased shutdown
            assert await asyncio.wait_for(runner, 60) == 0
        finally:
            if not runner.done():  # a failed check: no SIGTERM (start-up may not handle it yet)
                runner.cancel()
                with contextlib.suppress(BaseException):
                    await runner
