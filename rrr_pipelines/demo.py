"""`rrr demo`: the end-to-end story on embedded defaults, then a readable summary.

Steps run as real Dagster runs (``dagster asset materialize``) against the PostgreSQL-backed
instance in ``$RRR_HOME/dagster``, so they show up in the Dagster UI afterwards. After
registration the demo promotes (a passed version, or the best baseline under a recorded ``demo:``
override) and runs the live step, :mod:`rrr_pipelines.demo_live`: the promoted version trades the
holdout replay on the paper venue.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import click

from rrr_live.config import Settings
from rrr_pipelines.demo_report import print_summary
from rrr_pipelines.stack import open_stack, start_mlflow

log = logging.getLogger(__name__)

BUNDLED_RANGE = ("1999", "2018")


@dataclass(frozen=True)
class DemoStep:
    """One `dagster asset materialize` invocation."""

    title: str
    select: str
    partition_range: tuple[str, str] | None = None


ML_ASSETS = (
    "features,training_set,ensemble_model,walk_forward,model_evaluation,registered_model,"
    "registered_baseline"
)
DEMO_STEPS: list[DemoStep] = [
    DemoStep(
        "load real S&P 500 + NASDAQ daily bars", "market_bars_staging,market_bars", BUNDLED_RANGE
    ),
    DemoStep(
        "backtest and risk reports",
        "instruments,backtest_report,var_report,var_backtest,stress_report,correlation_report",
    ),
    DemoStep(
        "train, walk forward, gate on out-of-sample years, register every candidate", ML_ASSETS
    ),
]
# Checks whose failure is an outcome to report (a verdict), not a broken demo step.
VERDICT_CHECKS = frozenset({"model_evaluation:promotion_gate"})
LIVE_TITLE = "trade @champion on the holdout replay (paper venue)"
DEMO_PROMOTE_REASON = (
    "demo: the version that passed its gate is promoted to show it trading on the paper venue; "
    "promotion stays a person's decision outside the demo"
)
DEMO_OVERRIDE_REASON = (
    "demo: no version passed its gate; the best baseline is promoted only to show the rest "
    "of the story (paper trading), not because it is good enough"
)


def run_demo(settings: Settings, *, keep_running: bool = False) -> dict[str, Any]:
    """Run every demo step, write ``$RRR_HOME/demo-summary.json`` and return the summary.

    Each step is judged by its own Dagster run: the run's status, its failed steps and its
    check results. The first failed step stops the demo, which then exits non-zero naming it.
    """
    started = time.monotonic()
    stack, dbs, env = open_stack(settings)
    summary: dict[str, Any] = {"rrr_home": str(settings.home), "steps": []}
    try:
        start_mlflow(stack, dbs, env)
        summary["mlflow"] = settings.tracking_uri
        os.environ.update(env)  # the summary reads the same Dagster instance and database
        for step in DEMO_STEPS:
            summary["steps"].append(_run_step(step, env))
            if not summary["steps"][-1]["ok"]:
                break
        outcomes = [s.pop("outcome") for s in summary["steps"] if "outcome" in s]
        summary.update(model_story(outcomes, settings))
        summary.update(collect_summary(env, outcomes))
        summary["live"] = _live_story(summary, settings, env)
    finally:
        if keep_running:
            click.echo("services left running (`rrr db down` stops PostgreSQL)")
        else:
            stack.close()
    summary["seconds"] = round(time.monotonic() - started, 1)
    path = settings.home / "demo-summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str))
    print_summary(summary, path, VERDICT_CHECKS)
    failed = [_failure_line(s) for s in summary["steps"] if not s["ok"]]
    live = summary.get("live") or {}
    if live.get("ran", True) and not live.get("ok", True):
        failed.append(f"{LIVE_TITLE!r} ({live.get('error') or _live_failure(live)})")
    if failed:
        raise click.ClickException(f"demo step failed: {'; '.join(failed)}")
    return summary


def _failure_line(step: dict[str, Any]) -> str:
    why = [f"Dagster run {step.get('run_id') or '(none recorded)'} {step.get('status', '?')}"]
    if step.get("failed_steps"):
        why.append(f"failed Dagster steps: {', '.join(step['failed_steps'])}")
    if step.get("failed_checks"):
        why.append(f"failed checks: {', '.join(step['failed_checks'])}")
    return f"{step['title']!r} ({'; '.join(why)})"


@cache
def _asset_graph() -> Any:
    """The code location's asset graph, loaded once per demo (loading imports every module)."""
    from rrr_pipelines.definitions import defs

    return defs().resolve_asset_graph()


def _asset_keys() -> set[str]:
    return {k.to_user_string() for k in _asset_graph().get_all_asset_keys()}


@dataclass
class RunOutcome:
    """What one Dagster run did, read from its own events (never "the latest anywhere").

    Attributes:
        run_id: The run.
        status: Its final status (``SUCCESS``, ``FAILURE``...).
        failed_steps: Step keys that failed.
        checks: ``{"asset:check": passed}`` of the checks evaluated in this run.
        check_metadata: Metadata of each evaluated check.
        materialized: Metadata of each asset materialized in this run.
    """

    run_id: str
    status: str
    failed_steps: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    check_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    materialized: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Succeeded, no failed step, and every check that is not a verdict passed."""
        return self.status == "SUCCESS" and not self.failed_steps and not self.failed_checks

    @property
    def failed_checks(self) -> list[str]:
        """Failed checks other than the verdict checks (reported, not fatal)."""
        return sorted(k for k, ok in self.checks.items() if not ok and k not in VERDICT_CHECKS)


def _plain(metadata: Any) -> dict[str, Any]:
    return {k: v.value for k, v in metadata.items()}


def read_run(instance: Any, run_id: str) -> RunOutcome:
    """Judge one Dagster run by its status and its own step, check and materialization events."""
    from dagster import DagsterEventType

    run = instance.get_run_by_id(run_id)
    outcome = RunOutcome(run_id, run.status.value if run is not None else "NOT FOUND")
    kinds = {DagsterEventType.STEP_FAILURE, DagsterEventType.ASSET_CHECK_EVALUATION,
             DagsterEventType.ASSET_MATERIALIZATION}  # fmt: skip
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event is not None and event.is_step_failure and event.step_key:
            outcome.failed_steps.append(event.step_key)
        check = entry.asset_check_evaluation
        if check is not None:
            name = f"{check.asset_key.to_user_string()}:{check.check_name}"
            outcome.checks[name] = bool(check.passed)
            outcome.check_metadata[name] = _plain(check.metadata)
        mat = entry.asset_materialization
        if mat is not None:
            outcome.materialized[mat.asset_key.to_user_string()] = _plain(mat.metadata)
    return outcome


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _run_id_from(lines: list[str]) -> str | None:
    """The run id of `dagster asset materialize` (5th field of its event log lines)."""
    for line in lines:
        parts = line.split(" - ")
        if len(parts) > 4 and parts[1] == "dagster" and _UUID.match(parts[4].strip()):
            return parts[4].strip()
    return None


def _run_step(step: DemoStep, env: dict[str, str]) -> dict[str, Any]:
    import dagster as dg

    click.echo(f"==> {step.title}")
    select = ",".join(k for k in step.select.split(",") if k in _asset_keys())
    argv = [
        sys.executable, "-m", "dagster", "asset", "materialize",
        "-m", "rrr_pipelines.definitions", "--select", select,
    ]  # fmt: skip
    if step.partition_range:
        argv += ["--partition-range", f"{step.partition_range[0]}...{step.partition_range[1]}"]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    tail: list[str] = []
    run_id: str | None = None
    for line in proc.stdout:
        tail = [*tail, line.rstrip()][-40:]
        run_id = run_id or _run_id_from([line])
        if _is_progress_line(line):
            click.echo(f"    {_short(line)}")
    code = proc.wait()
    seconds = round(time.monotonic() - t0, 1)
    result: dict[str, Any] = {
        "title": step.title,
        "select": select,
        "seconds": seconds,
        "run_id": run_id,
    }
    if run_id is None:
        outcome = RunOutcome("", "NOT RECORDED")
    else:
        with dg.DagsterInstance.get() as instance:
            outcome = read_run(instance, run_id)
    result.update(
        ok=outcome.ok and code == 0, status=outcome.status,
        failed_steps=outcome.failed_steps, failed_checks=outcome.failed_checks, outcome=outcome,
    )  # fmt: skip
    if not result["ok"]:
        click.echo("\n".join(tail), err=True)
    return result


def model_story(outcomes: list[RunOutcome], settings: Settings) -> dict[str, Any]:
    """The gate verdict and registered versions of this demo's ML run; the override if needed."""
    ml = next((o for o in outcomes if "registered_model" in o.materialized), None)
    gate_meta = next((o.check_metadata[k] for o in outcomes for k in o.check_metadata
                      if k in VERDICT_CHECKS), None)  # fmt: skip
    gate: dict[str, Any] = {"verdict": "not run", "reasons": []}
    if gate_meta is not None:
        gate = {k: gate_meta.get(k) for k in ("verdict", "reasons", "evaluation_run")}
        if gate["verdict"] == "failed":
            click.echo("GATE FAILED: " + "; ".join(gate["reasons"] or []))
    if ml is None:
        return {"gate": gate, "registered": [], "promotion": None}
    registered = [
        {k: ml.materialized[a].get(k) for k in
         ("version", "candidate", "gate_verdict", "criteria_set", "alias", "reasons")}
        for a in ("registered_model", "registered_baseline") if a in ml.materialized
    ]  # fmt: skip
    every_step_ok = all(o.ok for o in outcomes)  # never promote out of a broken demo
    promotion = _promote_if_none_passed(registered, settings) if every_step_ok else None
    if every_step_ok and promotion is None:
        promotion = _promote_passed(registered, settings)
    return {"gate": gate, "registered": registered, "promotion": promotion}


def _promote_passed(registered: list[dict[str, Any]], settings: Settings) -> dict[str, Any] | None:
    """Demo only: the passed @challenger becomes @champion (said plainly, reason recorded)."""
    passed = next((r for r in registered if r["alias"] == "challenger"), None)
    if passed is None:
        return None
    import getpass

    from rrr_pipelines.lib.model_registry import ModelRegistry

    click.echo(f"DEMO ONLY: {passed['candidate']} v{passed['version']} passed its gate and is "
               f"promoted to @champion to show it trading ({DEMO_PROMOTE_REASON!r})")  # fmt: skip
    who = f"{getpass.getuser()} (rrr demo)"
    ModelRegistry(settings.tracking_uri).promote(str(passed["version"]), DEMO_PROMOTE_REASON, who)
    return {
        "version": str(passed["version"]), "candidate": passed["candidate"],
        "alias": "champion", "override": False, "reason": DEMO_PROMOTE_REASON, "by": who,
    }  # fmt: skip


def _live_failure(live: dict[str, Any]) -> str:
    why = [f"runner exit {live.get('returncode')}"]
    if live.get("left_running"):
        why.append(f"left running: {', '.join(live['left_running'])}")
    if live.get("killed"):
        why.append(f"killed: {', '.join(live['killed'])}")
    return "; ".join(why)


def _live_story(
    summary: dict[str, Any], settings: Settings, env: dict[str, str]
) -> dict[str, Any] | None:
    """The live step, when every step passed and a version was promoted (else ``None``)."""
    promotion = summary.get("promotion")
    if not summary["steps"] or not all(s["ok"] for s in summary["steps"]) or promotion is None:
        return None
    from rrr_live.errors import RRRError
    from rrr_pipelines.demo_live import LivePlan, run_live

    click.echo(f"==> {LIVE_TITLE}")
    try:
        plan = LivePlan(
            champion=promotion["version"],
            shadow=shadow_failed_ensemble(summary["registered"], settings),
            holdout=holdout_of(summary["registered"], settings),
            symbols=tuple(sorted(r["symbol"] for r in summary.get("market_bars", []))),
            registry_url=settings.tracking_uri, workdir=settings.home / "demo-live",
        )  # fmt: skip
        return run_live(plan, env, click.echo)
    except RRRError as e:
        return {"ok": False, "error": " ".join(str(e).split())}


def holdout_of(registered: list[dict[str, Any]], settings: Settings) -> Any:
    """The holdout span from the lineage of this demo's registered versions."""
    from rrr_pipelines.demo_live import holdout_start
    from rrr_pipelines.lib.model_registry import ModelRegistry

    registry = ModelRegistry(settings.tracking_uri)
    return holdout_start({str(r["version"]): registry.version_tags(str(r["version"]))
                          for r in registered})  # fmt: skip


def shadow_failed_ensemble(registered: list[dict[str, Any]], settings: Settings) -> str | None:
    """Demo only: the gate-failed ensemble becomes @shadow (scored, never trades)."""
    from rrr_pipelines.demo_live import SHADOW_NOTE
    from rrr_pipelines.lib.model_registry import ModelRegistry

    failed = next((r for r in registered if r["candidate"] == "ensemble"
                   and r["gate_verdict"] == "failed"), None)  # fmt: skip
    if failed is None:
        return None
    ModelRegistry(settings.tracking_uri).set_alias(str(failed["version"]), "shadow")
    failed["alias"] = "shadow"
    click.echo(SHADOW_NOTE.format(version=failed["version"]))
    return str(failed["version"])


def _promote_if_none_passed(
    registered: list[dict[str, Any]], settings: Settings
) -> dict[str, Any] | None:
    if any(r["gate_verdict"] == "passed" for r in registered):
        return None
    for r in registered:
        failing = ", ".join(x.split(":")[0] for x in r.get("reasons") or [])
        click.echo(f"NOT PASSED: {r['candidate']} v{r['version']} failed the "
                   f"{r['criteria_set']} criteria ({failing})")  # fmt: skip
    baseline = next((r for r in registered if r["criteria_set"] == "baseline"), None)
    if baseline is None:
        click.echo("No version passed its gate and there is no baseline to show; nothing trades.")
        return None
    import getpass

    from rrr_pipelines.lib.model_registry import ModelRegistry

    click.echo(
        f"No version passed its gate. To show the rest of the story the demo promotes the best "
        f"baseline, {baseline['candidate']} v{baseline['version']}, to @champion with a "
        f"recorded gate override (reason: {DEMO_OVERRIDE_REASON!r}); see `rrr model list`."
    )
    who = f"{getpass.getuser()} (rrr demo)"
    registry = ModelRegistry(settings.tracking_uri)
    registry.promote(str(baseline["version"]), DEMO_OVERRIDE_REASON, who, override_gate=True)
    return {
        "version": str(baseline["version"]), "candidate": baseline["candidate"],
        "alias": "champion", "override": True, "reason": DEMO_OVERRIDE_REASON, "by": who,
    }  # fmt: skip


_PROGRESS_EVENTS = {"STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "ASSET_CHECK_EVALUATION",
                    "RUN_SUCCESS", "RUN_FAILURE"}  # fmt: skip
_USER_LEVELS = {"INFO", "WARNING", "ERROR", "CRITICAL"}


def _is_progress_line(line: str) -> bool:
    """Dagster event lines worth showing: step/check/run outcomes and the assets' own logs."""
    parts = line.split(" - ")
    if len(parts) < 5 or parts[1] != "dagster":
        return "Error" in line or "error:" in line
    return parts[2] in _USER_LEVELS or any(p in _PROGRESS_EVENTS for p in parts[5:8])


def _short(line: str, width: int = 150) -> str:
    parts = line.strip().split(" - ")
    if len(parts) > 5 and parts[2] in _USER_LEVELS:
        return " - ".join(parts[5:])[:width]
    text = " - ".join(parts[6:]) if len(parts) > 7 else line.strip()
    return text[:width]


# Headline figures per asset for the printed summary (all metadata goes to the JSON file).
def collect_summary(env: dict[str, str], outcomes: list[RunOutcome]) -> dict[str, Any]:
    """The facts the demo reports: bars from PostgreSQL, the rest from this demo's own runs."""
    from rrr_pipelines.lib.bars_store import bars_summary

    bars = bars_summary(env["RRR_PG_URL_RRR"], source="bundled", interval="1d")
    assets: dict[str, dict[str, Any]] = {}
    checks: dict[str, bool] = {}
    stress: list[dict[str, Any]] = []
    for outcome in outcomes:
        checks.update(outcome.checks)
        rows = outcome.materialized.get("model_evaluation", {}).get("dynamic_stress_rows")
        stress = rows if isinstance(rows, list) else stress
        for key, meta in outcome.materialized.items():
            assets[key] = {
                k: v for k, v in meta.items() if isinstance(v, int | float | str | bool)
                and not (isinstance(v, str) and len(v) > 200)
            }  # fmt: skip
    return {
        "market_bars": [
            {
                "symbol": r.symbol,
                "rows": int(r.rows),
                "first": str(r.first_ts.date()),
                "last": str(r.last_ts.date()),
                "checksum": r.checksum,
            }
            for r in bars.itertuples()
        ],
        "assets": assets,
        "checks": checks,
        "holdout_comparison": _holdout_table(env) if "model_evaluation" in assets else [],
        "oos_folds": _fold_table(env) if "model_evaluation" in assets else [],
        "dynamic_stress": stress,
        "runs": {o.run_id: o.status for o in outcomes},
    }


HOLDOUT_COLUMNS = (
    "kind",
    "ic_mean",
    "ic_t_nw",
    "sharpe",
    "max_drawdown",
    "total_return",
    "turnover",
)


def _holdout_table(env: dict[str, str]) -> list[dict[str, Any]]:
    """The model_evaluation output: every model and baseline on the same OOS span and costs."""
    import pandas as pd

    path = Path(env["RRR_STORAGE_DIR"]) / "model_evaluation.parquet"
    if not path.exists():
        return []
    table = pd.read_parquet(path)
    cols = ["name", *[c for c in HOLDOUT_COLUMNS if c in table.columns]]
    records: list[dict[str, Any]] = table[cols].round(4).to_dict(orient="records")
    return records


def _fold_table(env: dict[str, str]) -> list[dict[str, Any]]:
    """Per-fold summary of the walk-forward (recorded in the model_evaluation output)."""
    import json

    import pandas as pd

    path = Path(env["RRR_STORAGE_DIR"]) / "model_evaluation.parquet"
    if not path.exists():
        return []
    table = pd.read_parquet(path)
    if "walk_forward_folds" not in table.columns or table.empty:
        return []
    rows: list[dict[str, Any]] = json.loads(str(table["walk_forward_folds"].iloc[0]))
    return rows
