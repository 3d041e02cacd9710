"""The demo's console summary: step outcomes, headline figures, model, registry and checks.

:mod:`rrr_pipelines.demo` collects the summary from the demo's own Dagster runs; this module only
renders it (the same facts are written to ``demo-summary.json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rrr_pipelines.demo_live import LivePlan, Supervision

SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "backtest_report": ("buy_and_hold_sharpe", "momentum_12_1_sharpe", "momentum_20d_sharpe"),
    "ensemble_model": ("train_seconds",),
    "walk_forward": ("folds", "seconds"),
    "model_evaluation": (
        "risk.var_99_1d",
        "risk.worst_dynamic_stress_loss",
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


STRESS_COLUMNS = ("scenario", "covered", "loss", "static_loss", "halted", "bars_to_halt")
FOLD_COLUMNS = ("fold", "train_end", "test_start", "test_end", "ensemble_ic", "ridge_ic",
                "ensemble_return")  # fmt: skip


def _print_rows(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    if not rows:
        return
    click.echo(title)
    cols = [c for c in columns if c in rows[0]]
    click.echo("    " + f"{cols[0]:<28}" + "".join(f"{c:>16}" for c in cols[1:]))
    for row in rows:
        first = str(row.get(cols[0]))[:28]
        rest = "".join(f"{_short_value(row.get(c)):>16}" for c in cols[1:])
        click.echo(f"    {first:<28}{rest}")


def _short_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    return text[:10] if text[:4].isdigit() else text[:16]


def print_summary(
    summary: dict[str, Any], path: object, verdict_checks: frozenset[str] = frozenset()
) -> None:
    """Print the demo's facts for a human (``verdict_checks``: gate verdicts, not data checks)."""
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
    _print_rows("  walk-forward folds (out-of-sample):", summary.get("oos_folds", []),
                FOLD_COLUMNS)  # fmt: skip
    _print_rows("  dynamic stress (OOS scores, live 2 % halt, flatten):",
                summary.get("dynamic_stress", []), STRESS_COLUMNS)  # fmt: skip
    _print_registry(summary.get("registered", []), summary.get("promotion"))
    if summary.get("live"):
        print_live(summary["live"])
    _print_checks(summary.get("checks", {}), verdict_checks)
    click.echo(f"  total {summary.get('seconds', '?')} s; details in {path}")


def _print_headlines(assets: dict[str, dict[str, Any]]) -> None:
    for asset, keys in SUMMARY_KEYS.items():
        meta = assets.get(asset, {})
        shown = [f"{k}={meta[k]:,.4g}" for k in keys if isinstance(meta.get(k), int | float)]
        if shown:
            click.echo(f"  {asset}: {', '.join(shown)}")


def _print_model(assets: dict[str, Any], gate: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = assets.get("__holdout__", [])
    if rows:
        span = assets.get("model_evaluation", {}).get("oos_span", "")
        click.echo(f"  out-of-sample, concatenated walk-forward folds {span} (same costs):")
        header = "    " + "".join(f"{k:>14}" for k in rows[0])
        click.echo(header)
        for row in rows:
            click.echo("    " + "".join(_cell(v) for v in row.values()))
    verdict = assets.get("model_evaluation", {}).get("verdict")
    if verdict:
        click.echo(f"  out-of-sample verdict: {verdict}")
    held = assets.get("model_evaluation", {}).get("holdout")
    if held:
        click.echo(f"  final holdout {held}: reported separately in the evaluation metadata")
    if gate:
        click.echo(f"  promotion gate: {gate.get('verdict')}")
        for reason in gate.get("reasons") or []:
            click.echo(f"    - {reason}")


def _print_registry(registered: list[dict[str, Any]], promotion: dict[str, Any] | None) -> None:
    for reg in registered:
        alias = f"@{reg['alias']}" if reg.get("alias") else "no alias"
        click.echo(
            f"  MLflow: v{reg['version']} {reg['candidate']}: {reg['gate_verdict']} "
            f"({reg['criteria_set']} criteria), {alias}"
        )
    if promotion is not None:
        click.echo(
            f"  NO VERSION PASSED: v{promotion['version']} {promotion['candidate']} is @champion "
            f"by a recorded gate override ({promotion['by']}: {promotion['reason']})"
        )
    elif any(r.get("alias") == "challenger" for r in registered):
        reg = next(r for r in registered if r.get("alias") == "challenger")
        click.echo(f"  promote with `rrr model promote {reg['version']} --reason ...`")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:>14.4f}"
    return f"{value!s:>14}"


def _print_checks(all_checks: dict[str, bool], verdict_checks: frozenset[str]) -> None:
    checks = {k: v for k, v in all_checks.items() if k not in verdict_checks}
    if checks:
        click.echo(f"  quality checks passed: {sum(checks.values())}/{len(checks)}")
        for name, ok in sorted(checks.items()):
            if not ok:
                click.echo(f"    FAILED {name}")


def live_report(
    rs: Mapping[str, Any], plan: LivePlan, sup: Supervision, *, killed: list[str],
    left: list[str], config_path: Path,
) -> dict[str, Any]:  # fmt: skip
    """The demo summary's ``live`` section from the runner's summary and what the demo saw."""
    orders: list[dict[str, Any]] = list(rs.get("orders") or [])
    equity = rs.get("equity_path") or []
    section = {
        "ok": sup.returncode == 0 and not left and not killed,
        "champion": plan.champion, "shadow_version": plan.shadow,
        "holdout_start": plan.holdout.start, "holdout_bounds": plan.holdout.bounds,
        "bars": plan.bars, "symbols": list(plan.symbols), "exit": rs.get("exit"),
        "stopped_by_demo": sup.stop_reason, "returncode": sup.returncode,
        "seconds": sup.seconds, "frames": rs.get("frames"), "batches": rs.get("batches"),
        "decisions": rs.get("decisions"), "orders": len(orders), "orders_sample": orders[:10],
        "fills": int(rs.get("fills") or 0), "pnl": rs.get("pnl"),
        "final_equity": equity[-1][1] if equity else None, "limits": rs.get("limits") or {},
        "first_event_date": _date(equity[0][0]) if equity else None,
        "risk_state_path": risk_transitions(rs.get("risk_state_path") or []),
        "halts": [{k: h.get(k) for k in ("state", "resumed", "after_resume")}
                  for h in sup.halts],
        "shadow": rs.get("shadow"), "live_ic": rs.get("live_ic") or {},
        "latency_ms": rs.get("latency_ms") or {}, "journal": rs.get("journal") or {},
        "served": rs.get("served") or [], "exchange": sup.exchange,
        "config": str(config_path), "left_running": left, "killed": killed,
    }  # fmt: skip
    section["no_order_reason"] = no_order_reason(section, orders) if not section["fills"] else ""
    return section


def risk_transitions(path: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """The risk-state path as its changes only: ``[{"ts_ns", "date", "state"}, …]``."""
    out: list[dict[str, Any]] = []
    for ts_ns, state in path:
        if not out or out[-1]["state"] != state:
            out.append({"ts_ns": int(ts_ns), "date": _date(ts_ns), "state": str(state)})
    return out


def _date(ts_ns: Any) -> str:
    return f"{datetime.fromtimestamp(int(ts_ns) / 1e9, UTC):%Y-%m-%d}"


def no_order_reason(section: Mapping[str, Any], orders: Sequence[Mapping[str, Any]]) -> str:
    """Why nothing filled, from the run's own facts (never a guess at the model's mind)."""
    if not section.get("batches"):
        return "no bar closed: the runner made no decision batch"
    if not section.get("decisions"):
        return f"{section['batches']} batches, no decision made (every batch was skipped)"
    if orders:
        statuses = sorted({str(o.get("status")) for o in orders})
        return f"{len(orders)} orders sent, none filled (statuses {', '.join(statuses)})"
    states = {t["state"] for t in section.get("risk_state_path", [])}
    halted = " while the risk state was " + "/".join(sorted(states - {"NORMAL", "ACTIVE"}))
    return (f"{section['decisions']} decisions, no order: the decision step kept the targets"
            f"{halted if states - {'NORMAL', 'ACTIVE'} else ''}")  # fmt: skip


LATENCY_KEYS = ("p50", "p95", "p99", "p999", "n")
ORDER_COLUMNS = ("client_id", "symbol", "side", "qty", "status", "avg_price", "version")


def print_live(live: Mapping[str, Any]) -> None:
    """The live step: span, versions, fills, PnL, limits, risk states, shadow, latency."""
    if live.get("error"):
        click.echo(f"  live replay FAILED: {live['error']}")
        return
    if not live.get("ran", True):
        click.echo(f"  live replay not run: {live.get('reason')}")
        return
    click.echo(
        f"  live replay (holdout only, {live['bars']} from {live['holdout_start']}): "
        f"v{live['champion']} @champion trades, exit {live.get('exit')} "
        f"({live.get('stopped_by_demo') or 'runner stopped by itself'}), {live['seconds']} s"
    )
    click.echo(f"    {live.get('frames')} frames, {live.get('batches')} batches, "
               f"{live.get('decisions')} decisions, {live['orders']} orders, "
               f"{live['fills']} fills, PnL {_money(live.get('pnl'))}, "
               f"final equity {_money(live.get('final_equity'))}")  # fmt: skip
    if live.get("no_order_reason"):
        click.echo(f"    no fill: {live['no_order_reason']}")
    _print_rows("    orders (first 10):", live.get("orders_sample", []), ORDER_COLUMNS)
    limits = ", ".join(f"{k}={v}" for k, v in (live.get("limits") or {}).items()
                       if v is not None)  # fmt: skip
    click.echo(f"    risk limits: {limits or 'n/a'}")
    path = " -> ".join(f"{t['state']} ({t['date']})" for t in live.get("risk_state_path", []))
    click.echo(f"    risk-state path: {path or 'n/a'}")
    for halt in live.get("halts", []):
        done = f"the demo resumed it via the control API -> {halt.get('after_resume')}"
        kept = "left halted (the demo resumes once; the runner's halt policy holds)"
        click.echo(f"    {halt['state']} seen: {done if halt.get('resumed') else kept}")
    _print_shadow(live)
    for version, ic in (live.get("live_ic") or {}).items():
        click.echo(f"    live IC v{version}: IC {_short_value(ic.get('ic'))}, hit rate "
                   f"{_short_value(ic.get('hit_rate'))}, n {ic.get('n')}")  # fmt: skip
    for name, pct in (live.get("latency_ms") or {}).items():
        shown = ", ".join(f"{k} {_short_value(pct.get(k))}" for k in LATENCY_KEYS)
        click.echo(f"    latency {name} (ms): {shown}")
    journal = live.get("journal") or {}
    if journal:
        click.echo("    journal: " + ", ".join(f"{k} {v}" for k, v in journal.items()))
    left = live.get("left_running") or []
    click.echo(f"    left running: {', '.join(left) if left else 'nothing'}")


def _print_shadow(live: Mapping[str, Any]) -> None:
    shadow = live.get("shadow")
    if live.get("shadow_version") is None:
        click.echo("    shadow: none (no gate-failed ensemble to score)")
    elif not shadow:
        click.echo(f"    shadow v{live['shadow_version']}: not scored by the runner")
    else:
        click.echo(f"    shadow v{shadow.get('version')} (demo only, never trades): "
                   f"IC {_short_value(shadow.get('ic'))}, hit rate "
                   f"{_short_value(shadow.get('hit_rate'))}, n {shadow.get('n')}")  # fmt: skip


def _money(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) else "n/a"
