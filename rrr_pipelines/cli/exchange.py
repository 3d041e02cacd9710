"""``rrr exchange serve``: the replay exchange (market data and REST on one loopback port)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from rrr_live.errors import RRRError
from rrr_live.exchange.paper.venue import PaperConfig
from rrr_live.exchange.server import ExchangeServer
from rrr_live.exchange.tape import ProtocolName, Tape
from rrr_live.metrics import MetricsEndpoint

exchange = click.Group("exchange", help="The replay exchange: market data + REST on 127.0.0.1.")


def _speed(value: str | None, lockstep: bool) -> float | None:
    if lockstep:
        if value is not None:
            raise click.UsageError("--speed and --lockstep exclude each other")
        return None
    if value is None:
        return 1.0
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = 0.0
    if not speed > 0:
        raise click.BadParameter(f"{value!r}: a positive number or 'max'", param_hint="--speed")
    return speed


def _day(value: str, name: str) -> datetime:
    try:
        day = datetime.fromisoformat(value)
    except ValueError as e:
        raise click.BadParameter(f"not a date: {value!r}", param_hint=name) from e
    return day.replace(tzinfo=UTC) if day.tzinfo is None else day.astimezone(UTC)


def _decimal(value: str, name: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation as e:
        raise click.BadParameter(f"not a number: {value!r}", param_hint=name) from e
    if not number > 0:
        raise click.BadParameter(f"must be > 0: {value!r}", param_hint=name)
    return number


def _recording_tape(path: Path, protocol: str | None) -> Tape:
    from rrr_live.exchange.recorded import load_recording

    tape = load_recording(path)
    if protocol is not None and protocol != tape.protocol:
        raise click.UsageError(f"{path.name} is a {tape.protocol} recording, not {protocol}")
    return tape


def _bars_tape(protocol: ProtocolName, spec: str, opts: dict[str, str | None]) -> Tape:
    from rrr_live.config import get_settings
    from rrr_live.domain.bars import interval_ns
    from rrr_live.exchange.bars import expand_bars, read_published_bars
    from rrr_live.persistence.databases import prepare_databases

    source, _, interval = spec.partition("/")
    if not source or not interval:
        raise click.BadParameter(f"{spec!r}: expected SOURCE/INTERVAL, e.g. bundled/1d",
                                 param_hint="--bars")  # fmt: skip
    try:
        step = interval_ns(interval)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--bars") from e
    symbols = [s for s in (opts["symbols"] or "").split(",") if s]
    if not symbols:
        raise click.UsageError("--bars needs --symbols A,B,...")
    start = _day(opts["start"] or "1970-01-01", "--start")
    end = _day(opts["end"] or "2100-01-01", "--end")
    dsn = prepare_databases(get_settings()).rrr_url("asyncpg")
    click.echo(f"reading {source}/{interval} bars of {len(symbols)} symbols …", err=True)
    bars = asyncio.run(read_published_bars(dsn, source, interval, symbols, start, end, step))
    if not bars:
        raise click.ClickException(f"no {source}/{interval} bars for {','.join(symbols)} "
                                   f"between {start:%Y-%m-%d} and {end:%Y-%m-%d}")  # fmt: skip
    tick = _decimal(opts["tick"] or "0.01", "--tick")
    lot = _decimal(opts["lot"] or "1", "--lot")
    return expand_bars(protocol, bars, tick=tick, lot=lot)


def _synthetic_tape(protocol: ProtocolName, o: dict[str, object]) -> Tape:
    from rrr_live.exchange.synthetic import synthetic_tape

    count, frames, lazy = int(o["synthetic"]), int(o["frames"]), bool(o["lazy"])  # type: ignore[call-overload]
    if not lazy:
        click.echo(f"encoding {frames:,} synthetic frames for {count:,} symbols …", err=True)
    try:
        return synthetic_tape(protocol, count, frames, rate=float(o["rate"]),  # type: ignore[arg-type]
                              seed=int(o["seed"]), lazy=lazy)  # type: ignore[call-overload]  # fmt: skip
    except ValueError as e:
        raise click.UsageError(str(e)) from e


def _ready(server: ExchangeServer, endpoint: MetricsEndpoint | None) -> None:
    line = f"replay exchange ({server.tape.protocol}) ws {server.ws_url} http {server.http_url}"
    if endpoint is not None:
        line += f" metrics http://127.0.0.1:{endpoint.port}/metrics"
    click.echo(line)


@exchange.command("serve")
@click.option(
    "--protocol",
    type=click.Choice(["coinbase", "binance"]),
    default=None,
    help="Wire protocol (a recording implies its own).",
)
@click.option(
    "--recording",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A recorded *.ws.log session (REST logs beside it are used).",
)
@click.option(
    "--bars",
    metavar="SOURCE/INTERVAL",
    help="Published bars from PostgreSQL, e.g. bundled/1d (with --symbols).",
)
@click.option("--symbols", help="Bar symbols, comma-separated.")
@click.option("--start", help="First bar date (bars).")
@click.option("--end", help="Bars before this date.")
@click.option("--tick", help="Price increment of bar symbols [0.01].")
@click.option("--lot", help="Size increment of bar symbols [1].")
@click.option("--synthetic", type=click.IntRange(min=1), metavar="N", help="N synthetic symbols.")
@click.option(
    "--rate",
    type=float,
    default=1000.0,
    show_default=True,
    help="Synthetic frames per second of event time.",
)
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Synthetic frames to pre-encode.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lazy", is_flag=True, help="Encode synthetic frames while serving (floods).")
@click.option("--speed", help="N x event time, or 'max' (as fast as clients read) [1].")
@click.option("--lockstep", is_flag=True, help="Wait for decision_done after each bar close.")
@click.option(
    "--lockstep-clients",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --lockstep: start with N clients, release a bar on N acks (runner shards).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0 picks a free port.")
@click.option("--send-time", is_flag=True, help="Add rrr_send_ns (monotonic) to every frame.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics on 127.0.0.1.")
@click.option("--exit-when-done", is_flag=True, help="Stop when the tape is finished.")
@click.option("--control", is_flag=True, help="Fault hooks at http://…/_rrr/* (loopback).")
@click.option(
    "--refuse-handshakes",
    type=click.IntRange(min=0),
    default=0,
    help="Fault: answer the first N handshakes with 503.",
)
@click.option("--paper", is_flag=True, help="Serve the paper venue's Binance order API too.")
@click.option(
    "--balances",
    default="USDT=100000",
    show_default=True,
    help="Paper starting balances, ASSET=AMOUNT,… (with --paper).",
)
@click.option("--maker-fee", type=float, default=0.001, show_default=True, help="Paper maker fee.")
@click.option("--taker-fee", type=float, default=0.001, show_default=True, help="Paper taker fee.")
@click.option(
    "--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Paper order latency [0]."
)
@click.option(
    "--api-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Paper API key file (else RRR_VENUE_API_KEY).",
)
@click.option(
    "--api-secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Paper API secret file (else RRR_VENUE_API_SECRET).",
)
def serve(**o: object) -> None:
    """Serve market data in the Coinbase or Binance protocol, with REST on the same port."""
    sources = [k for k in ("recording", "bars", "synthetic") if o[k] is not None]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of --recording, --bars, --synthetic")
    protocol = o["protocol"]
    if sources != ["recording"] and protocol is None:
        raise click.UsageError("--protocol is required with --bars and --synthetic")
    speed = _speed(o["speed"], bool(o["lockstep"]))  # type: ignore[arg-type]
    try:
        tape = _tape(sources[0], o)
        paper = _paper(o) if o["paper"] else None
    except RRRError as e:
        raise click.ClickException(str(e)) from e
    if paper is not None and tape.protocol != "binance":
        raise click.UsageError("--paper speaks Binance: use --protocol binance")
    asyncio.run(_serve(tape, speed, o, paper))


def _paper(o: dict[str, object]) -> PaperConfig:
    from rrr_live.exchange.paper.venue import paper_config

    try:
        return paper_config(
            str(o["balances"]), float(o["maker_fee"]), float(o["taker_fee"]),  # type: ignore[arg-type]
            float(o["latency_ms"]), o["api_key_file"], o["api_secret_file"],  # type: ignore[arg-type]
        )  # fmt: skip
    except ValueError as e:
        raise click.UsageError(str(e)) from e


def _tape(source: str, o: dict[str, object]) -> Tape:
    protocol: ProtocolName = o["protocol"]  # type: ignore[assignment]
    if source == "recording":
        return _recording_tape(o["recording"], o["protocol"])  # type: ignore[arg-type]
    if source == "bars":
        opts = {k: o[k] for k in ("symbols", "start", "end", "tick", "lot")}
        return _bars_tape(protocol, str(o["bars"]), opts)  # type: ignore[arg-type]
    return _synthetic_tape(protocol, o)


async def _serve(
    tape: Tape, speed: float | None, o: dict[str, object], paper: PaperConfig | None = None
) -> None:
    from rrr_live.exchange.app import run_exchange

    def ready(server: ExchangeServer, endpoint: MetricsEndpoint | None) -> None:
        if o["refuse_handshakes"]:
            server.refuse_handshakes(int(o["refuse_handshakes"]))  # type: ignore[call-overload]
        _ready(server, endpoint)

    clients = int(o["lockstep_clients"])  # type: ignore[call-overload]
    try:
        sent = await run_exchange(
            tape, metrics_port=o["metrics_port"], exit_when_done=bool(o["exit_when_done"]),  # type: ignore[arg-type]
            on_ready=ready, host=o["host"], port=o["port"], speed=speed,
            lockstep=bool(o["lockstep"]), lockstep_clients=clients, send_time=bool(o["send_time"]),
            control=bool(o["control"]), paper=paper,
        )  # fmt: skip
    except OSError as e:
        raise click.ClickException(f"cannot listen on {o['host']}:{o['port']}: {e.strerror}") from e
    click.echo(f"stopped after {sent:,} frames")
