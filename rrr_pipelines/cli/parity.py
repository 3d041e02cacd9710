"""``rrr live parity-report --config FILE.toml``: replay a runner session, name any divergence.

Exit status: 0 when the replay matches what the runner did, 1 when it diverges (one line: the
divergences per kind and the first divergent event), 2 when no report can be made (a bad
configuration, no capture of the session, an unreachable registry; one ``Error:`` line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rrr_pipelines.cli.live import config_option

EXIT_DIVERGED = 1
EXIT_BAD_INPUT = 2


@click.command("parity-report")
@config_option("The runner's TOML file (its name, database and registry).")
@click.option("--session", default="", help="Runner session id (default: its latest).")
@click.option(
    "--json",
    "json_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the whole report as JSON here.",
)
def parity_report(config: Path, session: str, json_out: Path | None) -> None:
    """Replay the session's captured ticks through the tick backtest and compare."""
    import asyncio

    from rrr_live.errors import RRRError
    from rrr_live.service.parity import report_for_config
    from rrr_pipelines.cli.main import one_line

    try:
        report = asyncio.run(report_for_config(config, session))
    except RRRError as e:
        click.echo(f"Error: {one_line(e)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    for note in report.notes:
        click.echo(f"Note: {note}", err=True)
    click.echo(report.summary())
    if not report.ok:
        sys.exit(EXIT_DIVERGED)
