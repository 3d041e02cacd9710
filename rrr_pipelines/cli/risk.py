"""``rrr risk``: command-line access to the VaR backtests."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TextIO

import click
import pandas as pd

from rrr_pipelines.cli.main import friendly_errors
from rrr_pipelines.lib.risk.backtest import CSV_COLUMNS, VarBacktestResult
from rrr_pipelines.lib.risk.data import load_returns
from rrr_pipelines.lib.risk.rolling import ALL_METHODS
from rrr_pipelines.lib.risk.var_backtest import run_var_backtest

risk = click.Group("risk", help="Risk reports: VaR backtests.")


def _utc_day(value: str, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except ValueError as e:
        raise click.BadParameter(f"not a date: {value!r}", param_hint=name) from e
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _format_row(result: VarBacktestResult) -> dict[str, str]:
    row = result.row()
    out: dict[str, str] = {}
    for k, v in row.items():
        out[k] = f"{v:.10g}" if isinstance(v, float) else str(v)
    return out


def _write_rows(rows: list[dict[str, str]], target: str) -> None:
    if target == "-":
        _emit(rows, sys.stdout, header=True)
        return
    path = Path(target)
    append = path.exists() and path.stat().st_size > 0
    if append:
        with path.open(newline="") as fh:
            header = next(csv.reader(fh), [])
        if tuple(header) != CSV_COLUMNS:
            raise click.ClickException(f"{path} exists with a different header; not appending")
    with path.open("a" if append else "w", newline="") as fh:
        _emit(rows, fh, header=not append)


def _emit(rows: list[dict[str, str]], fh: TextIO, header: bool) -> None:
    writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)


@risk.command("var-backtest")
@click.option("--source", default="bundled", show_default=True, help="Where prices come from.")
@click.option("--symbol", required=True, help="Symbol, e.g. SP500 or NASDAQ for bundled data.")
@click.option(
    "--method",
    "methods",
    type=click.Choice(ALL_METHODS),
    multiple=True,
    required=True,
    help="VaR model; repeat for several.",
)
@click.option(
    "--alpha", "alphas", type=float, multiple=True, required=True, help="Tail prob.; repeatable."
)
@click.option("--window", default=250, show_default=True, type=int, help="Rolling window (days).")
@click.option("--fit-until", default=None, help="GARCH: last day of the estimation sample.")
@click.option("--start", required=True, help="First evaluation day (inclusive).")
@click.option("--end", required=True, help="Last evaluation day (inclusive).")
@click.option("--csv", "csv_target", default="-", show_default=True, help="Output file or '-'.")
@click.option("--exceedances", default=None, help="Also write the exceedance list (file or '-').")
@friendly_errors
def var_backtest(
    source: str,
    symbol: str,
    methods: tuple[str, ...],
    alphas: tuple[float, ...],
    window: int,
    fit_until: str | None,
    start: str,
    end: str,
    csv_target: str,
    exceedances: str | None,
) -> None:
    """Backtest 1-day VaR forecasts; write one CSV row per (method, alpha) run.

    Columns: model, alpha, n, x, expected, lr_uc, p_uc, lr_ind, p_ind, lr_cc, p_cc. An existing
    CSV file with the same header is appended to.
    """
    t0, t1 = _utc_day(start, "--start"), _utc_day(end, "--end")
    fit = _utc_day(fit_until, "--fit-until") if fit_until else None
    if t0 > t1:
        raise click.UsageError(f"--start {start} is after --end {end}")
    if window < 2:
        raise click.UsageError(f"--window must be at least 2, got {window}")
    returns = load_returns(source, symbol)
    runs = [
        run_var_backtest(returns, m, a, t0, t1, window=window, fit_until=fit)
        for m in methods
        for a in alphas
    ]
    _write_rows([_format_row(res) for res, _ in runs], csv_target)
    if exceedances:
        _write_exceedances([res for res, _ in runs], exceedances)


def _write_exceedances(results: list[VarBacktestResult], target: str) -> None:
    frames = []
    for res in results:
        exc = res.exceedances.reset_index()
        exc.insert(0, "alpha", res.alpha)
        exc.insert(0, "model", res.model)
        exc["ts"] = exc["ts"].dt.strftime("%Y-%m-%d")
        frames.append(exc.rename(columns={"ts": "date"}))
    table = pd.concat(frames, ignore_index=True)
    if target == "-":
        click.echo(table.to_csv(index=False, float_format="%.6g", lineterminator="\n"), nl=False)
    else:
        table.to_csv(target, index=False, float_format="%.6g")
