"""The demo's console summary: step outcomes, headline figures, model, registry and checks.

:mod:`rrr_pipelines.demo` collects the summary from the demo's own Dagster runs; this module only
renders it (the same facts are written to ``demo-summary.json``).
"""

from __future__ import annotations

from typing import Any

import click

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
