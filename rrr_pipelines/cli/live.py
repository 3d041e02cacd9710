"""``rrr live run --config FILE.toml``: the live runner (same entry as ``python -m rrr_live``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def live() -> None:
    """Run the live runner (the promoted model trading on a venue)."""


@live.command("run")
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Runner TOML file (see docs/live-runner.md).",
)
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
