"""`rrr model`: list versions with their verdicts, promote (human decision), roll back.

Every alias move follows the one rule of :mod:`rrr_live.models.verdict`: ``challenger`` and
``champion`` need a passed verdict or a gate override recorded with ``--override-gate``.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from rrr_live.config import get_settings

if TYPE_CHECKING:
    from rrr_pipelines.lib.model_registry import ModelRegistry, VersionSummary

T = TypeVar("T")


def _registry() -> ModelRegistry:
    from rrr_pipelines.lib.mlflow_health import check_reachable

    uri = get_settings().tracking_uri
    _call(check_reachable, uri)  # one line within seconds when down, before the heavy imports
    from rrr_pipelines.lib.model_registry import ModelRegistry

    return ModelRegistry(uri, model_name=_model_name())


def _model_name() -> str:
    return str(click.get_current_context().obj or "rrr-ensemble")  # set by the `model` group


def _call(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    from rrr_live.errors import RRRError

    try:
        return fn(*args, **kwargs)
    except RRRError as e:
        raise click.ClickException(str(e)) from e
    except Exception as e:  # MLflow raises its own types; show one line, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise click.ClickException(f"MLflow at {get_settings().tracking_uri}: {first}") from e


@click.group("model")
@click.option(
    "--name",
    default="rrr-ensemble",
    show_default=True,
    envvar="RRR_MODEL_NAME",
    help="Registered model name.",
)
@click.pass_context
def model(ctx: click.Context, name: str) -> None:
    """Registered model (default `rrr-ensemble`): list, promote, roll back."""
    ctx.obj = name


_COLUMNS = ("version", "candidate", "verdict", "criteria", "override", "aliases")


def _row(v: VersionSummary) -> tuple[str, ...]:
    verdict = v.verdict
    override = verdict.override
    shown_override = f"{override.by} {override.at[:19]}: {override.reason}" if override else "-"
    status = verdict.status
    if verdict.failing:
        status += f" ({', '.join(c.key for c in verdict.failing)})"
    aliases = " ".join("@" + a for a in v.aliases) or "-"
    return (f"v{v.version}", v.candidate, status, verdict.criteria_set or "-", shown_override,
            aliases)  # fmt: skip


@model.command("list")
def list_versions() -> None:
    """Show every version: candidate, verdict, criteria set, gate override and aliases."""
    reg = _registry()
    rows = [_row(v) for v in _call(reg.versions)]
    if not rows:
        click.echo(f"{reg.model_name} has no versions yet")
        return
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS) - 1)]
    for row in [_COLUMNS, *rows]:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]))


@model.command("promote")
@click.argument("version")
@click.option("--reason", required=True, help="Why this version should trade (a tag).")
@click.option(
    "--override-gate",
    is_flag=True,
    help="Promote a version that did not pass its gate; records who, when and why on it.",
)
@click.option(
    "--alias",
    type=click.Choice(["champion", "challenger", "shadow"]),
    default="champion",
    show_default=True,
    help="Alias to set; `shadow` (scored live, never trades) is open to every version.",
)
def promote(version: str, reason: str, override_gate: bool, alias: str) -> None:
    """Set alias `champion` (or --alias) on VERSION, recording who, why and when."""
    reg = _registry()
    who = getpass.getuser()
    if alias == "champion":
        _call(reg.promote, version, reason, who, override_gate=override_gate)
    else:
        if override_gate and not _call(reg.check_alias, version, alias).allowed:
            _call(reg.record_override, version, reason, who)
        _call(reg.set_alias, version, alias)
    click.echo(f"{reg.model_name} v{version} is now @{alias}")


@model.command("rollback")
@click.option("--reason", required=True, help="Why the current champion is withdrawn.")
def rollback(reason: str) -> None:
    """Move `champion` back to the previous champion (if it may still trade)."""
    reg = _registry()
    version = _call(reg.rollback, reason, getpass.getuser())
    click.echo(f"{reg.model_name} @champion rolled back to v{version}")
