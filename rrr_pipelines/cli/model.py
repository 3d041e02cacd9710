"""`rrr model`: list versions, promote to champion (human decision), roll back."""

from __future__ import annotations

import getpass

import click

from rrr_live.config import get_settings


def _registry():
    from rrr_pipelines.lib.model_registry import ModelRegistry

    return ModelRegistry(get_settings().tracking_uri)


def _call(fn, *args, **kwargs):
    from rrr_live.errors import RRRError

    try:
        return fn(*args, **kwargs)
    except RRRError as e:
        raise click.ClickException(str(e)) from e
    except Exception as e:  # MLflow raises its own types; show one line, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise click.ClickException(f"MLflow at {get_settings().tracking_uri}: {first}") from e


model = click.Group("model", help="Registered model `rrr-ensemble`: list, promote, roll back.")


@model.command("list")
def list_versions() -> None:
    """Show versions with aliases and gate verdicts."""
    reg = _registry()
    champion = _call(reg.alias_version, "champion")
    challenger = _call(reg.alias_version, "challenger")
    versions = _call(reg.client.search_model_versions, f"name='{reg.model_name}'")
    for mv in sorted(versions, key=lambda v: int(v.version)):
        aliases = [
            a for a, v in (("champion", champion), ("challenger", challenger)) if v == mv.version
        ]
        gate = mv.tags.get("gate.verdict", "-")
        click.echo(f"v{mv.version:<4} gate={gate:<8} {' '.join('@' + a for a in aliases)}")


@model.command("promote")
@click.argument("version")
@click.option("--reason", required=True, help="Why this version should trade (a tag).")
def promote(version: str, reason: str) -> None:
    """Set alias `champion` on VERSION (as in the MLflow UI), recording who, why and when."""
    reg = _registry()
    _call(reg.promote, version, reason, getpass.getuser())
    click.echo(f"{reg.model_name} v{version} is now @champion")


@model.command("rollback")
@click.option("--reason", required=True, help="Why the current champion is withdrawn.")
def rollback(reason: str) -> None:
    """Move `champion` back to the previous champion."""
    reg = _registry()
    version = _call(reg.rollback, reason, getpass.getuser())
    click.echo(f"{reg.model_name} @champion rolled back to v{version}")
