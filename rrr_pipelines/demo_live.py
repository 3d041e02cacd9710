"""The demo's live step: the promoted version trades the holdout replay on the paper venue.

After registration (and the demo's promotion) this step

1. reads the holdout boundary from the registered versions' lineage (``trained_before``: the
   first bar no serving version trained on) and replays only the bars from there on;
2. starts the replay exchange (market data and the paper venue, one process, ``rrr exchange
   serve --bars … --lockstep --send-time --paper --control``), bars expanded into ticks;
3. points alias ``shadow`` at the gate-failed ensemble (demo only, said so): it is scored on
   the same batches and never trades;
4. writes the runner's TOML configuration (secrets by environment-variable name only) and runs
   ``rrr live run --config`` until the tape is finished or the time bound; a halt is shown and
   resumed once through the control API (token in a header, from the environment);
5. stops and waits for every child process and reports the runner's summary.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rrr_pipelines.demo_procs import (
    GRACE_SECONDS,
    Children,
    Exchange,
    LiveStepError,
    _tail,
    free_port,
    http_json,
    render_toml,
    start_exchange,
)
from rrr_pipelines.demo_report import live_report

VENUE_KEY_ENV = "RRR_VENUE_API_KEY"
VENUE_SECRET_ENV = "RRR_VENUE_API_SECRET"
CONTROL_TOKEN_ENV = "RRR_CONTROL_TOKEN"
BARS = "bundled/1d"
LOT = "0.01"
MAX_SECONDS = 180  # the runner's own bound; the tape normally ends well before
SHADOW_NOTE = (
    "DEMO ONLY: the gate-failed ensemble v{version} is @shadow: scored on the same batches, "
    "never trades"
)


@dataclass(frozen=True)
class Holdout:
    """The replayed span: the holdout only.

    Attributes:
        start: First replayed bar: the latest ``trained_before`` of the serving versions
            (``YYYY-MM-DD`` at midnight, else an ISO timestamp).
        bounds: ``{version: trained_before}`` as recorded in each version's lineage.
    """

    start: str
    bounds: dict[str, str]


def holdout_start(tags: Mapping[str, Mapping[str, str]]) -> Holdout:
    """The first bar no version in ``tags`` trained on or was judged out-of-sample on.

    Args:
        tags: ``{version: its MLflow tags}`` of the versions that will serve (and their
            evaluation's siblings: a baseline records no boundary of its own).

    Returns:
        The holdout span's start, the latest recorded ``trained_before``.

    Raises:
        LiveStepError: no version records its boundary, or an out-of-sample span reaches it.
    """
    bounds = {v: t["trained_before"] for v, t in tags.items() if t.get("trained_before")}
    if not bounds:
        raise LiveStepError(
            "no registered version records trained_before: refusing to replay bars a model "
            "may have trained on"
        )
    start = max(_day(b) for b in bounds.values())
    for version, t in tags.items():
        oos_end = t.get("oos.span", "").partition("..")[2]
        if oos_end and _day(oos_end) >= start:
            raise LiveStepError(
                f"v{version}'s out-of-sample span ends {oos_end}, inside the holdout from "
                f"{start:%Y-%m-%d}: the lineage is inconsistent"
            )
    # a daily boundary is a date; an intraday one (minute bars) keeps its time of day
    at_midnight = start == start.replace(hour=0, minute=0, second=0, microsecond=0)
    return Holdout(f"{start:%Y-%m-%d}" if at_midnight else start.isoformat(), bounds)


def _day(text: str) -> datetime:
    day = datetime.fromisoformat(text.strip().replace(" ", "T"))
    return day.replace(tzinfo=UTC) if day.tzinfo is None else day.astimezone(UTC)


def demo_secrets() -> dict[str, str]:
    """Fresh venue key/secret and control token for one demo, keyed by their env variable."""
    return {name: secrets.token_urlsafe(24) for name in
            (VENUE_KEY_ENV, VENUE_SECRET_ENV, CONTROL_TOKEN_ENV)}  # fmt: skip


def runner_config(
    *, ws_url: str, http_url: str, symbols: Sequence[str], registry_url: str,
    summary_json: Path, control_port: int, max_seconds: int = MAX_SECONDS, bars: str = BARS,
    name: str = "demo",
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The runner's configuration (the contract of ``rrr live run --config``), no secrets.

    Returns:
        ``{table: {key: value}}``; secrets are named by environment variable only.
    """
    return {
        "runner": {"name": name, "open_orders_policy": "cancel", "max_seconds": max_seconds,
                   "summary_json": str(summary_json), "bar_interval_s": bar_interval_s(bars),
                   "watermark_s": 5,
                   # features rebuilt from published history up to the first replayed bar
                   "warmup_source": bars.split("/")[0]},
        "feed": {"protocol": "binance", "url": ws_url, "rest_url": http_url,
                 "symbols": list(symbols), "lockstep": True},
        "venue": {"url": http_url, "api_key_env": VENUE_KEY_ENV,
                  "api_secret_env": VENUE_SECRET_ENV},
        "model": {"registry_url": registry_url, "name": "rrr-ensemble", "poll_interval_s": 5,
                  "device": "cpu"},
        "control": {"port": control_port, "token_env": CONTROL_TOKEN_ENV},
        "journal": {"enabled": True},
    }  # fmt: skip


def bar_interval_s(bars: str) -> int:
    """The runner's ``bar_interval_s`` for replayed ``SOURCE/INTERVAL`` bars (the model's).

    Raises:
        LiveStepError: for an interval the bar domain does not know.
    """
    from rrr_live.domain.bars import interval_ns

    try:
        return interval_ns(bars.partition("/")[2]) // 1_000_000_000
    except ValueError as e:
        raise LiveStepError(f"bars {bars!r}: {e}") from e


def session_name() -> str:
    """A fresh runner name per demo (``demo-`` and 8 hex digits).

    Its journal session starts empty, so an earlier demo's restored HALT or positions never meet
    this demo's fresh paper account.
    """
    return f"demo-{secrets.token_hex(4)}"


def exchange_argv(symbols: Sequence[str], start: str, bars: str = BARS) -> list[str]:
    """``rrr exchange serve`` on the holdout bars: ticks, lockstep, send time, paper venue."""
    return [
        sys.executable, "-m", "rrr_pipelines.cli", "exchange", "serve", "--protocol", "binance",
        "--bars", bars, "--symbols", ",".join(symbols), "--start", start, "--lot", LOT,
        "--lockstep", "--send-time", "--paper", "--control",
    ]  # fmt: skip


@dataclass
class Supervision:
    """What the demo saw while the runner ran.

    Attributes:
        stop_reason: Why the demo stopped the runner (``""``: it exited by itself).
        halts: Risk states seen through the control API, with what the demo did.
        exchange: The exchange's last ``/_rrr/status``.
        returncode: The runner's exit status.
        seconds: Wall time of the run.
    """

    stop_reason: str = ""
    halts: list[dict[str, Any]] = field(default_factory=list)
    exchange: dict[str, Any] = field(default_factory=dict)
    returncode: int | None = None
    seconds: float = 0.0


@dataclass
class Watch:
    """What :func:`supervise` polls (URLs, the token, bounds, and where progress goes).

    Attributes:
        exchange_url: The exchange's base URL (``/_rrr/status``).
        control_url: The runner's control API base URL.
        token: The control token.
        max_seconds: Stop the runner (SIGTERM) after this long.
        progress: Called with a progress line.
        poll_s: Poll period (the runner's exit is awaited for this long each round).
        resumes: How many halts the demo resumes.
    """

    exchange_url: str
    control_url: str
    token: str
    max_seconds: float
    progress: Callable[[str], None]
    poll_s: float = 0.5
    resumes: int = 1


def supervise(runner: subprocess.Popen[bytes], watch: Watch) -> Supervision:
    """Wait for the runner; SIGTERM it when the tape is finished or the time bound is reached.

    A HALTED risk state seen through the control API is recorded and resumed (``watch.resumes``
    times) with ``POST /resume``. SIGKILL only if the phased shutdown outlives its grace.
    """
    seen, t0, last_progress = Supervision(), time.monotonic(), 0.0
    stop_at: float | None = None
    while True:
        try:
            seen.returncode = runner.wait(timeout=watch.poll_s)
            break
        except subprocess.TimeoutExpired:
            pass
        elapsed = time.monotonic() - t0
        if stop_at is None:
            seen.stop_reason = _stop_reason(seen, watch, elapsed)
            if seen.stop_reason:
                runner.send_signal(signal.SIGTERM)
                stop_at = elapsed
            else:
                _watch_risk(seen, watch)
        elif elapsed - stop_at > GRACE_SECONDS:
            runner.kill()
            seen.stop_reason += "; killed after the shutdown grace"
        if elapsed - last_progress >= 10:
            last_progress = elapsed
            ex = seen.exchange
            watch.progress(f"{elapsed:.0f} s: {ex.get('events_emitted', '?')} events, "
                           f"{ex.get('frames_sent', '?')} frames sent")  # fmt: skip
    seen.seconds = round(time.monotonic() - t0, 1)
    return seen


def _stop_reason(seen: Supervision, watch: Watch, elapsed: float) -> str:
    try:
        seen.exchange = http_json(f"{watch.exchange_url}/_rrr/status")
    except (OSError, ValueError) as e:
        return f"the replay exchange stopped answering ({e})"
    if seen.exchange.get("finished"):
        return "the holdout tape is finished"
    if elapsed > watch.max_seconds:
        return f"the demo's time bound ({watch.max_seconds:.0f} s)"
    return ""


def _watch_risk(seen: Supervision, watch: Watch) -> None:
    try:
        status = http_json(f"{watch.control_url}/status", token=watch.token)
    except (OSError, ValueError):
        return  # not listening yet, or shutting down: the summary has the full path
    state = str(status.get("risk_state") or status.get("state") or "")
    if state != "HALTED" or (seen.halts and seen.halts[-1]["state"] == "HALTED"
                             and not seen.halts[-1]["resumed"]):  # fmt: skip
        return
    entry: dict[str, Any] = {"state": state, "status": status, "resumed": False}
    if sum(h["resumed"] for h in seen.halts) < watch.resumes:
        answer = http_json(f"{watch.control_url}/resume", token=watch.token, method="POST")
        entry.update(resumed=True, after_resume=answer.get("state"))
    seen.halts.append(entry)


def runner_argv(config: Path) -> list[str]:
    """``rrr live run --config FILE`` (the runner's contract)."""
    return [sys.executable, "-m", "rrr_pipelines.cli", "live", "run", "--config", str(config)]


@dataclass(frozen=True)
class LivePlan:
    """What the live step runs.

    Attributes:
        champion: The version that trades.
        shadow: The gate-failed ensemble scored as ``shadow`` (``None``: none).
        holdout: The replayed span.
        symbols: The replayed (and traded) symbols.
        registry_url: The MLflow server.
        workdir: Where the config, summary and logs go.
        bars: Published bars replayed (``SOURCE/INTERVAL``).
    """

    champion: str
    shadow: str | None
    holdout: Holdout
    symbols: tuple[str, ...]
    registry_url: str
    workdir: Path
    bars: str = BARS


@dataclass(frozen=True)
class LiveOptions:
    """Bounds and commands of the live step (tests swap the commands and shorten the bounds).

    Attributes:
        max_seconds: The runner's own time bound (``runner.max_seconds``).
        slack_s: The demo SIGTERMs the runner this long after ``max_seconds``.
        poll_s: Supervision poll period.
        exchange_cmd: Builds the exchange's argv from the plan.
        runner_cmd: Builds the runner's argv from the config path.
        before_stop: Called with the exchange and the children's environment (the venue keys)
            once the runner has stopped, before the exchange is stopped (a test reads the paper
            venue's own account there).
    """

    max_seconds: int = MAX_SECONDS
    slack_s: float = 10.0
    poll_s: float = 0.5
    exchange_cmd: Callable[[LivePlan], list[str]] = lambda plan: exchange_argv(
        plan.symbols, plan.holdout.start, plan.bars
    )
    runner_cmd: Callable[[Path], list[str]] = runner_argv
    before_stop: Callable[[Exchange, Mapping[str, str]], None] | None = None


def run_live(plan: LivePlan, env: Mapping[str, str], echo: Callable[[str], None],
             options: LiveOptions = LiveOptions()) -> dict[str, Any]:  # fmt: skip
    """Run the exchange and the runner on the holdout; stop and wait for both; report.

    Args:
        plan: Versions, span and places.
        env: The stack's environment (the children inherit it plus the demo's secrets).
        echo: Console output.
        options: Bounds and commands.

    Returns:
        The ``live`` section of the demo summary (``demo_report.live_report``).

    Raises:
        LiveStepError: a child failed to start or the runner wrote no summary.
    """
    plan.workdir.mkdir(parents=True, exist_ok=True)
    summary_path, config_path = plan.workdir / "summary.json", plan.workdir / "runner.toml"
    for stale in (summary_path, plan.workdir / "exchange.log", plan.workdir / "runner.log"):
        stale.unlink(missing_ok=True)  # this run's files only
    child_env = {**env, **demo_secrets()}
    children = Children()
    sup = Supervision()
    try:
        echo(f"    replay exchange: {plan.bars} {','.join(plan.symbols)} from {plan.holdout.start} "
             "(holdout only), ticks, lockstep, paper venue")  # fmt: skip
        argv = options.exchange_cmd(plan)
        exchange = start_exchange(children, argv, child_env, plan.workdir / "exchange.log")
        port = free_port()
        config = runner_config(
            ws_url=exchange.ws_url, http_url=exchange.http_url, symbols=plan.symbols,
            registry_url=plan.registry_url, summary_json=summary_path, control_port=port,
            max_seconds=options.max_seconds, bars=plan.bars, name=session_name(),
        )  # fmt: skip
        config_path.write_text(render_toml(config))
        echo(f"    runner: rrr live run --config {config_path} (secrets from the environment)")
        runner = children.start("runner", options.runner_cmd(config_path), child_env,
                                plan.workdir / "runner.log")  # fmt: skip
        watch = Watch(exchange.http_url, f"http://127.0.0.1:{port}", child_env[CONTROL_TOKEN_ENV],
                      options.max_seconds + options.slack_s, echo, options.poll_s)  # fmt: skip
        sup = supervise(runner, watch)
        if options.before_stop is not None:
            options.before_stop(exchange, child_env)
    finally:
        killed = children.stop_all()
        left = children.running()
    if not summary_path.exists():
        raise LiveStepError(f"the runner exited {sup.returncode} without a summary: "
                            f"{_tail(plan.workdir / 'runner.log')}")  # fmt: skip
    runner_summary = json.loads(summary_path.read_text())
    return live_report(runner_summary, plan, sup, killed=killed, left=left,
                       config_path=config_path)  # fmt: skip
