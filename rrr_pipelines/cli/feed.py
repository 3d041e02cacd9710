"""``rrr feed watch``: connect a feed adapter, print normalized events, dump the final books."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import msgspec

from rrr_live.domain.market import Received
from rrr_live.errors import RRRError
from rrr_live.feeds.binance import BinanceFeed, rest_url_for
from rrr_live.feeds.coinbase import CoinbaseFeed
from rrr_live.feeds.connection import FeedSettings, ReconnectingFeed
from rrr_live.feeds.instruments import fetch_instruments
from rrr_live.feeds.keeper import BookKeeper

feed = click.Group("feed", help="Live market-data feeds (Coinbase Exchange, Binance spot).")

MAX_DEFAULT_SYMBOLS = 50


def event_dict(rec: Received) -> dict[str, Any]:
    """Return a received event as a JSON-ready dict (enums by value)."""
    ev = rec.event
    body: dict[str, Any] = msgspec.to_builtins(ev)  # structs and dataclasses alike
    return {"session": rec.session, "seq": rec.seq, "recv_ns": rec.recv_ns, "venue": rec.venue,
            "type": type(ev).__name__, **body}  # fmt: skip


def _choose(available: dict[str, Any], symbols: str | None) -> dict[str, Any]:
    if symbols is None:
        if len(available) > MAX_DEFAULT_SYMBOLS:
            raise click.ClickException(
                f"the venue lists {len(available)} symbols; choose some with --symbols A,B,…"
            )
        return available
    wanted = [s.strip() for s in symbols.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in available]
    if unknown or not wanted:
        raise click.ClickException(
            f"unknown symbol(s) for this venue: {', '.join(unknown) or '(none given)'}"
        )
    return {s: available[s] for s in wanted}


class _Progress:
    """One event per line when piped; a live count line on a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.count = 0
        self._last = 0.0

    def show(self, rec: Received, feed_: ReconnectingFeed) -> None:
        self.count += 1
        if not self.tty:
            click.echo(json.dumps(event_dict(rec), separators=(",", ":")))
            return
        now = time.monotonic()
        if now - self._last >= 0.2:
            self._last = now
            rejected = sum(feed_.rejected.values())
            click.echo(
                f"\r{self.count} events, {rejected} rejected, {feed_.connects} connects", nl=False
            )


async def _watch(feed_: ReconnectingFeed, seconds: float | None, progress: _Progress) -> None:
    try:
        async with asyncio.timeout(seconds):
            async for rec in feed_:
                progress.show(rec, feed_)
    except TimeoutError:
        return  # --seconds elapsed


@feed.command("watch")
@click.option("--venue", type=click.Choice(["coinbase", "binance"]), required=True)
@click.option("--url", required=True, help="Websocket URL (a replay exchange or the venue).")
@click.option(
    "--rest-url", default=None, help="REST base for metadata/snapshots (default: beside --url)."
)
@click.option("--symbols", default=None, help="Comma-separated symbols (default: all, if few).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many seconds (default: until Ctrl-C).")  # fmt: skip
@click.option("--books-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write each symbol's final top-5 book here on exit.")  # fmt: skip
@click.option("--idle-timeout", type=float, default=10.0, show_default=True,
              help="Reconnect after this many silent seconds.")  # fmt: skip
def watch(
    venue: str,
    url: str,
    rest_url: str | None,
    symbols: str | None,
    seconds: float | None,
    books_json: Path | None,
    idle_timeout: float,
) -> None:
    """Print normalized events from one venue; optionally dump the final books as JSON."""
    rest = rest_url or rest_url_for(url)
    try:
        available = asyncio.run(fetch_instruments(venue, rest))
    except RRRError as e:
        raise click.ClickException(f"cannot read instruments from {rest}: {e}") from e
    instruments = _choose(available, symbols)
    keeper = BookKeeper(instruments)
    settings = FeedSettings(idle_timeout_s=idle_timeout)
    feed_: ReconnectingFeed
    if venue == "coinbase":
        feed_ = CoinbaseFeed(url, instruments, settings, keeper=keeper)
    else:
        feed_ = BinanceFeed(url, instruments, settings, keeper=keeper, rest_url=rest)
    progress = _Progress()
    try:
        asyncio.run(_watch(feed_, seconds, progress))
    except KeyboardInterrupt:
        pass
    except RRRError as e:
        raise click.ClickException(str(e)) from e
    finally:
        if books_json is not None:
            books_json.write_text(json.dumps(keeper.top_json(5), indent=1) + "\n")
        if progress.tty:
            click.echo("")
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(feed_.rejected.items())) or "none"
        click.echo(
            f"{progress.count} events, {feed_.connects} connects, rejected: {rejected}", err=True
        )
