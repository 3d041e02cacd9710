"""``rrr live``: run the live runner, and see the shards of an account.

``rrr live run --config FILE.toml [--shard i/n]`` is the runner (as ``python -m rrr_live``);
``rrr live status --config FILE.toml [--json]`` shows the account's shards as their journals say.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def config_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The required ``--config RUNNER.toml`` option of the ``rrr live`` commands."""
    return click.option(
        "--config",
        "config",
        required=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help=help_text,
    )


@click.group()
def live() -> None:
    """Run the live runner (the promoted model trading on a venue)."""


@live.command("run")
@config_option("Runner TOML file (see docs/live-runner.md).")
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Run as shard I of N (overrides runner.shard; see docs/shards.md).",
)
def run(config: Path, shard: str | None) -> None:
    """Run until SIGTERM/SIGINT, the end of the feed or runner.max_seconds; exit 0 when clean.

    A bad configuration prints one line and exits 2.
    """
    from rrr_live.__main__ import run_config

    code = run_config(config, shard)
    if code:
        sys.exit(code)


@live.command("status")
@config_option("Runner TOML file (its runner name is the account's; no secret is needed).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(config: Path, as_json: bool) -> None:
    """Every shard of the account: risk state, batches, last data time, positions; a total."""
    import asyncio
    import json

    from rrr_live.shards.status import status_for_config, status_table

    view = asyncio.run(status_for_config(config))
    if as_json:
        click.echo(json.dumps(view, indent=2, default=str))
        return
    for line in status_table(view):
        click.echo(line)
