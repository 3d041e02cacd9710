"""The ``rrr`` command line: database, stack, demo, configuration (and later model/risk/live).

Heavy imports stay inside commands so ``rrr --help`` and ``rrr db status`` answer fast. Every
``RRRError`` raised by any command, eager or lazy, becomes one line ``Error: …`` and exit code 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from rrr_live.config import get_settings, redact_url
from rrr_live.errors import RRRError
from rrr_live.logs import configure_logging

F = TypeVar("F", bound=Callable[..., Any])


def one_line(err: BaseException) -> str:
    """The message of ``err`` folded onto one line (a CLI error is never a wall of text)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__


def friendly_errors(fn: F) -> F:
    """Give a command the top-level treatment of ``RRRError`` when it is invoked on its own.

    Commands under ``cli`` need nothing: ``LazyGroup.invoke`` already does this for them.
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RRRError as e:
            raise click.ClickException(one_line(e)) from e

    return wrapper  # type: ignore[return-value]


class LazyGroup(click.Group):
    """The top-level group: lazy subgroups, and one place that turns RRR failures into one line.

    Heavier subgroups are imported only when invoked (or listed in --help); add one by adding a
    row to ``lazy``. A row ``"group sub"`` adds command ``sub`` to the lazy group ``group``
    when that group is loaded.
    """

    lazy: dict[str, str] = {  # noqa: RUF012 - class-level registry, read-only
        "risk": "rrr_pipelines.cli.risk:risk",
        "model": "rrr_pipelines.cli.model:model",
        "exchange": "rrr_pipelines.cli.exchange:exchange",
        "feed": "rrr_pipelines.cli.feed:feed",
        "live": "rrr_pipelines.cli.live:live",
        "live parity-report": "rrr_pipelines.cli.parity:parity_report",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Eager commands plus the lazy subgroups, sorted."""
        return sorted([*super().list_commands(ctx), *(n for n in self.lazy if " " not in n)])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return an eager command, or import the lazy subgroup named ``cmd_name``."""
        if cmd_name not in self.lazy or " " in cmd_name:
            return super().get_command(ctx, cmd_name)
        command = _load(cmd_name, self.lazy[cmd_name])
        for row, target in self.lazy.items():
            group, _, sub = row.partition(" ")
            if sub and group == cmd_name and isinstance(command, click.Group):
                command.add_command(_load(sub, target), sub)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; an ``RRRError`` anywhere below prints one line, no traceback."""
        return friendly_errors(super().invoke)(ctx)


def _load(name: str, target: str) -> click.Command:
    import importlib

    module, attr = target.split(":")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return _unavailable(name, module)  # fails when used, not in --help
    command: click.Command = getattr(loaded, attr)
    return command


def _unavailable(name: str, module: str) -> click.Command:
    def fail() -> None:
        raise click.ClickException(f"`rrr {name}` is not available in this build ({module})")

    return click.Command(name, callback=fail, help="(not available in this build)")


@click.group(cls=LazyGroup)
@click.option("--log-level", default=None, help="Override RRR_LOG_LEVEL.")
def cli(log_level: str | None) -> None:
    """RRR: ML trading platform (Dagster + MLflow) and live runner."""
    settings = get_settings()
    configure_logging(log_level or settings.log_level, settings.log_format)


# --------------------------------------------------------------------------- db
@cli.group()
def db() -> None:
    """Manage the PostgreSQL server (embedded by default, external via RRR_DATABASE_URL)."""


@db.command("up")
def db_up() -> None:
    """Start the embedded server if needed, create the databases, migrate the schema."""
    from rrr_live.persistence.databases import prepare_databases

    dbs = prepare_databases(get_settings())
    click.echo(f"PostgreSQL ready at {dbs.address.describe()}")
    for name in (dbs.dagster_db, dbs.mlflow_db, dbs.rrr_db):
        click.echo(f"  database {name}")


@db.command("down")
def db_down() -> None:
    """Stop the embedded server (an external server is never stopped)."""
    from rrr_live.persistence.server import stop_embedded

    settings = get_settings()
    if settings.database_url is not None:
        click.echo("RRR_DATABASE_URL is set: the external server is not ours to stop")
        return
    stopped = stop_embedded(settings.pg_data)
    click.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@db.command("status")
def db_status() -> None:
    """Say whether the server runs and where; exit 1 when it does not."""
    from rrr_live.persistence.server import read_postmaster, server_address

    settings = get_settings()
    if settings.database_url is not None:
        address = server_address(settings, start=False)
        click.echo(f"external PostgreSQL at {address.describe()}: reachable")
        return
    state = read_postmaster(settings.pg_data.resolve())
    if state is None or not state.running:
        click.echo(f"embedded PostgreSQL in {settings.pg_data}: stopped (`rrr db up` starts it)")
        sys.exit(1)
    where = f"pid {state.pid}, socket {state.socket_dir}"
    click.echo(f"embedded PostgreSQL in {settings.pg_data}: running ({where})")


@db.command("url")
@click.option("--db", "database", type=click.Choice(["rrr", "dagster", "mlflow"]), default="rrr")
@click.option("--driver", type=click.Choice(["libpq", "psycopg2", "asyncpg"]), default="libpq")
@click.option("--show-password", is_flag=True, help="Print the password instead of ***.")
def db_url(database: str, driver: str, show_password: bool) -> None:
    """Print the connection URL of one database (starts the embedded server if needed)."""
    from rrr_live.persistence.databases import prepare_databases

    dbs = prepare_databases(get_settings())
    name = {"rrr": dbs.rrr_db, "dagster": dbs.dagster_db, "mlflow": dbs.mlflow_db}[database]
    url = dbs.address.url(name, driver)  # type: ignore[arg-type]
    click.echo(url if show_password else redact_url(url))


# ----------------------------------------------------------------------- config
@cli.group()
def config() -> None:
    """Inspect configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def config_show(as_json: bool) -> None:
    """Print the effective settings with secrets redacted."""
    values = get_settings().redacted()
    if as_json:
        click.echo(json.dumps(values, indent=2, default=str))
        return
    width = max(len(k) for k in values)
    for key, value in values.items():
        click.echo(f"{key.ljust(width)}  {value}")


# ------------------------------------------------------------------------ stack
@cli.command("up")
@click.option("--background", is_flag=True, help="Detach; stop later with `rrr down`.")
def up(background: bool) -> None:
    """Start PostgreSQL, the MLflow server and Dagster (webserver + daemon); Ctrl-C stops all."""
    from rrr_pipelines.stack_cli import run_up, start_background

    if background:
        start_background(get_settings())
    else:
        run_up(get_settings())


@cli.command("down")
def down() -> None:
    """Stop a stack started with `rrr up --background`."""
    from rrr_pipelines.stack_cli import stop_background

    stop_background(get_settings())


@cli.command("demo")
@click.option("--keep-running", is_flag=True, help="Leave the services up afterwards.")
def demo(keep_running: bool) -> None:
    """Run the end-to-end demo on embedded defaults and print a summary."""
    from rrr_pipelines.demo import run_demo

    run_demo(get_settings(), keep_running=keep_running)


@cli.command(
    "dagster",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dagster_cli(args: tuple[str, ...]) -> None:
    """Run the `dagster` CLI on RRR's instance (e.g. `rrr dagster instance info`).

    Sets DAGSTER_HOME (with the packaged dagster.yaml: PostgreSQL storage) and the database URLs
    in the environment, as `rrr up` does, then hands over to `dagster ARGS…`.
    """
    from rrr_pipelines.stack import dagster_environment

    env = dagster_environment(get_settings())
    argv = [sys.executable, "-m", "dagster", *args]
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)
