"""Run a feed adapter against the replay exchange and collect what it yields."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rrr_live.domain.market import BookUpdate, BookUpdateKind, Received
from rrr_live.exchange.recorded import load_recording
from rrr_live.exchange.server import ExchangeServer
from rrr_live.feeds.binance import BinanceFeed
from rrr_live.feeds.coinbase import CoinbaseFeed
from rrr_live.feeds.connection import FeedSettings, ReconnectingFeed
from rrr_live.feeds.errors import FeedError
from rrr_live.feeds.instruments import fetch_instruments
from rrr_live.feeds.keeper import BookKeeper
from tests.live.feeds.reference import BINANCE_WS, COINBASE_WS

BINANCE_SYMBOLS = ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]
COINBASE_SYMBOLS = sorted(
    ["SKL-USD", "SKL-BTC", "BAND-GBP", "NMR-EUR", "BAND-BTC", "YFI-BTC", "DASH-BTC", "NU-GBP",
     "CRV-EUR", "SKL-GBP"]
)  # fmt: skip


def server(venue: str, **kwargs: object) -> ExchangeServer:
    """A replay exchange on 127.0.0.1:0 serving the recorded session of ``venue``."""
    path: Path = BINANCE_WS if venue == "binance" else COINBASE_WS
    return ExchangeServer(load_recording(path), **kwargs)  # type: ignore[arg-type]


async def make_feed(
    venue: str,
    ex: ExchangeServer,
    settings: FeedSettings,
    symbols: list[str] | None = None,
    **kwargs: Any,
) -> ReconnectingFeed:
    """Build the venue's adapter (with a keeper) from the exchange's own instrument list."""
    everything = await fetch_instruments(venue, ex.http_url)
    wanted = symbols or (BINANCE_SYMBOLS if venue == "binance" else COINBASE_SYMBOLS)
    instruments = {s: everything[s] for s in wanted}
    keeper = BookKeeper(instruments)
    cls = BinanceFeed if venue == "binance" else CoinbaseFeed
    return cls(ex.ws_url, instruments, settings, keeper=keeper, **kwargs)


class Run:
    """Consume a feed in a task, with a hook called on every event.

    Args:
        feed: the adapter.
        on_event: called with each ``Received`` as it is yielded (before the keeper applies it).
    """

    def __init__(self, feed: ReconnectingFeed, on_event: Callable[[Received], None] | None = None):
        self.feed = feed
        self.items: list[Received] = []
        self.ended: BaseException | None = None
        self._on_event = on_event
        self._waiters: list[tuple[Callable[[Received], bool], asyncio.Future[Received]]] = []
        self.task = asyncio.create_task(self._consume(), name="feed-consumer")

    async def _consume(self) -> None:
        try:
            async for item in self.feed:
                self.items.append(item)
                if self._on_event is not None:
                    self._on_event(item)
                for pred, fut in list(self._waiters):
                    if not fut.done() and pred(item):
                        fut.set_result(item)
        except FeedError as e:
            self.ended = e
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(AssertionError(f"feed ended first: {self.ended}"))

    async def wait_for(self, pred: Callable[[Received], bool], limit_s: float = 20.0) -> Received:
        """Wait (bounded) for the first future event matching ``pred``."""
        fut: asyncio.Future[Received] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        async with asyncio.timeout(limit_s):
            return await fut

    async def finish(self, ex: ExchangeServer) -> None:
        """Let the tape finish, close the connection cleanly and wait for the feed to stop."""
        async with asyncio.timeout(30):
            await ex.finished()
            ex.disconnect(1000)
            await self.task


def is_snapshot(item: Received) -> bool:
    """Whether ``item`` carries a book snapshot."""
    return isinstance(item.event, BookUpdate) and item.event.kind is BookUpdateKind.SNAPSHOT
