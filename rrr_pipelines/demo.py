"""`rrr demo`: the end-to-end story on embedded defaults, then a readable summary.

Steps run as real Dagster runs (``dagster asset materialize``) against the PostgreSQL-backed
instance in ``$RRR_HOME/dagster``, so they show up in the Dagster UI afterwards. Later stages
(train → register → promote → live run) append steps to ``DEMO_STEPS``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import click

from rrr_live.config import Settings
from rrr_pipelines.stack import open_stack, start_mlflow

log = logging.getLogger(__name__)

BUNDLED_RANGE = ("1999", "2018")


@dataclass(frozen=True)
class DemoStep:
    """One `dagster asset materialize` invocation."""

    title: str
    select: str
    partition_range: tuple[str, str] | None = None


ML_ASSETS = "features,training_set,ensemble_model,model_evaluation,registered_model"
DEMO_STEPS: list[DemoStep] = [
    DemoStep("load real S&P 500 + NASDAQ daily bars", "market_bars", BUNDLED_RANGE),
    DemoStep(
        "backtest and risk reports",
        "instruments,backtest_report,var_report,var_backtest,stress_report,correlation_report",
    ),
    DemoStep("train, evaluate on the holdout, gate, register", ML_ASSETS),
]
FALLBACK_STEP = DemoStep("register the best baseline instead", "registered_baseline")


def run_demo(settings: Settings, *, keep_running: bool = False) -> dict[str, Any]:
    """Run every demo step, write ``$RRR_HOME/demo-summary.json`` and return the summary."""
    started = time.monotonic()
    stack, dbs, env = open_stack(settings)
    summary: dict[str, Any] = {"rrr_home": str(settings.home), "steps": []}
    try:
        start_mlflow(stack, dbs, env)
        summary["mlflow"] = settings.tracking_uri
        os.environ.update(env)  # the summary reads the same Dagster instance and database
        for step in DEMO_STEPS:
            summary["steps"].append(_run_step(step, env))
        gate = gate_outcome()
        summary["gate"] = gate
        if gate["verdict"] == "failed":
            click.echo("GATE FAILED: " + "; ".join(gate["reasons"]))
            summary["steps"][-1]["ok"] = True  # the gate did its job; the run stopped on purpose
            summary["steps"].append(_run_step(FALLBACK_STEP, env))
        summary.update(collect_summary(env))
    finally:
        if keep_running:
            click.echo("services left running (`rrr db down` stops PostgreSQL)")
        else:
            stack.close()
    summary["seconds"] = round(time.monotonic() - started, 1)
    path = settings.home / "demo-summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str))
    print_summary(summary, path)
    failed = [s["title"] for s in summary["steps"] if not s["ok"]]
    if failed:
        raise click.ClickException(f"demo step(s) failed: {'; '.join(failed)}")
    return summary


@cache
def _asset_graph() -> Any:
    """The code location's asset graph, loaded once per demo (loading imports every module)."""
    from rrr_pipelines.definitions import defs

    return defs().resolve_asset_graph()


def _asset_keys() -> set[str]:
    return {k.to_user_string() for k in _asset_graph().get_all_asset_keys()}


def gate_outcome() -> dict[str, Any]:
    """Verdict and reasons of the latest promotion_gate evaluation."""
    import dagster as dg

    key = dg.AssetCheckKey(dg.AssetKey("model_evaluation"), "promotion_gate")
    with dg.DagsterInstance.get() as instance:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
    evaluation = getattr(record, "evaluation", None) if record else None
    if evaluation is None:
        return {"verdict": "not run", "reasons": []}
    reasons = evaluation.metadata.get("reasons")
    return {
        "verdict": "passed" if evaluation.passed else "failed",
        "reasons": list(reasons.value) if reasons is not None else [],
    }


def _run_step(step: DemoStep, env: dict[str, str]) -> dict[str, Any]:
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
    for line in proc.stdout:
        tail = [*tail, line.rstrip()][-40:]
        if _is_progress_line(line):
            click.echo(f"    {_short(line)}")
    code = proc.wait()
    seconds = round(time.monotonic() - t0, 1)
    if code != 0:
        click.echo("\n".join(tail), err=True)
    return {"title": step.title, "select": select, "ok": code == 0, "seconds": seconds}


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
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "backtest_report": ("buy_and_hold_sharpe", "momentum_12_1_sharpe", "momentum_20d_sharpe"),
    "ensemble_model": ("train_seconds",),
    "model_evaluation": (
        "risk.var_99_1d",
        "risk.worst_stress_loss",
        "ensemble.ic_mean",
        "ensemble.ic_t_nw",
        "ensemble.sharpe",
        "latency_p95_ms",
    ),
    "registered_model": ("version",),
    "registered_baseline": ("version",),
    "var_report": ("var_99_1d", "es_99_1d", "var_99_10d", "mc_es_99_1d"),
    "var_backtest": ("min_p_cc",),
    "stress_report": ("worst_stress_loss",),
    "correlation_report": ("enb",),
}


def collect_summary(env: dict[str, str]) -> dict[str, Any]:
    """Read the facts the demo reports from PostgreSQL and the Dagster instance."""
    from rrr_pipelines.lib.bars_store import bars_summary

    bars = bars_summary(env["RRR_PG_URL_RRR"], source="bundled", interval="1d")
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
        "assets": _asset_metadata(),
        "checks": _check_results(),
        "holdout_comparison": _holdout_table(env),
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
    """The model_evaluation output: every model and baseline on the same holdout and costs."""
    import pandas as pd

    path = Path(env["RRR_STORAGE_DIR"]) / "model_evaluation.parquet"
    if not path.exists():
        return []
    table = pd.read_parquet(path)
    cols = ["name", *[c for c in HOLDOUT_COLUMNS if c in table.columns]]
    return table[cols].round(4).to_dict(orient="records")


def _asset_metadata() -> dict[str, dict[str, Any]]:
    import dagster as dg

    out: dict[str, dict[str, Any]] = {}
    with dg.DagsterInstance.get() as instance:
        for key in _asset_graph().get_all_asset_keys():
            event = instance.get_latest_materialization_event(key)
            if event is None or event.asset_materialization is None:
                continue
            meta = event.asset_materialization.metadata
            out[key.to_user_string()] = {
                k: v.value for k, v in meta.items() if isinstance(v.value, int | float | str | bool)
                and not (isinstance(v.value, str) and len(v.value) > 200)
            }  # fmt: skip
    return out


def _check_results() -> dict[str, bool]:
    import dagster as dg

    results: dict[str, bool] = {}
    with dg.DagsterInstance.get() as instance:
        for check_key in _asset_graph().asset_check_keys:
            record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [check_key]
            ).get(check_key)
            evaluation = getattr(record, "evaluation", None) if record else None
            if evaluation is not None:
                name = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
                results[name] = bool(evaluation.passed)
    return results


def print_summary(summary: dict[str, Any], path: object) -> None:
    """Print the demo's facts for a human."""
    click.echo("\n=== RRR demo summary ===")
    for step in summary["steps"]:
        click.echo(f"  [{'ok' if step['ok'] else 'FAILED'}] {step['title']} ({step['seconds']} s)")
    for row in summary.get("market_bars", []):
        click.echo(
            f"  market_bars {row['symbol']:<7} {row['rows']} rows {row['first']}..{row['last']}"
        )
    assets = summary.get("assets", {})
    _print_headlines(assets)
    _print_model(
        {**assets, "__holdout__": summary.get("holdout_comparison", [])}, summary.get("gate", {})
    )
    _print_checks(summary.get("checks", {}))
    click.echo(f"  total {summary.get('seconds', '?')} s; details in {path}")


def _print_headlines(assets: dict[str, dict[str, Any]]) -> None:
    for asset, keys in SUMMARY_KEYS.items():
        meta = assets.get(asset, {})
        shown = [f"{k}={meta[k]:,.4g}" for k in keys if isinstance(meta.get(k), int | float)]
        if shown:
            click.echo(f"  {asset}: {', '.join(shown)}")


def _print_model(assets: dict[str, dict[str, Any]], gate: dict[str, Any]) -> None:
    rows = assets.get("__holdout__", [])
    if rows:
        click.echo("  holdout (same segment, same costs):")
        header = "    " + "".join(f"{k:>14}" for k in rows[0])
        click.echo(header)
        for row in rows:
            click.echo("    " + "".join(_cell(v) for v in row.values()))
    verdict = assets.get("model_evaluation", {}).get("verdict")
    if verdict:
        click.echo(f"  holdout verdict: {verdict}")
    if gate:
        click.echo(f"  promotion gate: {gate.get('verdict')}")
        for reason in gate.get("reasons", []):
            click.echo(f"    - {reason}")
    for key in ("registered_model", "registered_baseline"):
        reg = assets.get(key)
        if reg:
            click.echo(
                f"  MLflow: {reg.get('model')} v{reg.get('version')} ({reg.get('candidate')}) "
                f"@challenger; promote with `rrr model promote {reg.get('version')} --reason ...`"
            )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:>14.4f}"
    return f"{value!s:>14}"


def _print_checks(all_checks: dict[str, bool]) -> None:
    checks = {k: v for k, v in all_checks.items() if not k.endswith("promotion_gate")}
    if checks:
        click.echo(f"  quality checks passed: {sum(checks.values())}/{len(checks)}")
        for name, ok in sorted(checks.items()):
            if not ok:
                click.echo(f"    FAILED {name}")
