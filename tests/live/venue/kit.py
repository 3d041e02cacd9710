"""Shared pieces of the broker tests: a paper venue, a broker on it, answer-losing transports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import httpx

from rrr_live.clock import SimulatedClock
from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.synthetic import synthetic_tape
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.model import CrashPoint, Decision, OrderIntent, client_order_id, no_crash
from rrr_live.venue.rest import Credentials, RestConfig, SignedRest
from rrr_live.venue.store import OrderStore
from tests.live.paper.kit import KEYS, SYMBOL, config

CREDS = Credentials(KEYS.api_key, KEYS.secret)
ASSETS = {SYMBOL: ("SYN0000", "USDT")}
BASELINE = {"USDT": Decimal(100_000), "SYN0000": Decimal(10)}


class LoseAnswers(httpx.AsyncBaseTransport):
    """A real transport that, on cue, drops a POST's answer (after the venue acted on it) or
    the request itself (before it left): the two halves of an ambiguous outcome."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lose_answers = 0
        self.lose_requests = 0
        self.posts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward ``request``; maybe lose it or its answer."""
        if request.method == "POST":
            self.posts += 1
            if self.lose_requests:
                self.lose_requests -= 1
                raise httpx.ConnectError("connection reset before sending", request=request)
        resp = await self.inner.handle_async_request(request)
        if request.method == "POST" and self.lose_answers:
            self.lose_answers -= 1
            await resp.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return resp

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()


@dataclass
class Rig:
    """A paper venue, a store on the real PostgreSQL and a broker between them."""

    venue: ExchangeServer
    broker: BinanceBroker
    transport: LoseAnswers
    pool: asyncpg.Pool

    @property
    def ws_api(self) -> str:
        """The venue's WebSocket API URL."""
        return f"{self.venue.ws_url}/ws-api/v3"

    def best(self) -> tuple[Decimal, Decimal]:
        """Best bid and ask of the traded symbol now."""
        bids, asks = self.venue.book(SYMBOL, 1)
        return Decimal(bids[0][0]), Decimal(asks[0][0])


def intent(seq: int, side: str, qty: str, price: Decimal | None, prefix: str = "r1") -> OrderIntent:
    """An order of decision ``seq`` (limit when priced, else market)."""
    d = Decision("m-1", "fs-1", seq)
    kind = "LIMIT" if price is not None else "MARKET"
    return OrderIntent(client_order_id(prefix, d), prefix, SYMBOL, side, kind,
                       Decimal(qty), price, d)  # fmt: skip


@asynccontextmanager
async def broker_on(
    venue: ExchangeServer, dsn: str, prefix: str = "r1", crash: CrashPoint = no_crash
) -> AsyncIterator[Rig]:
    """A broker with prefix ``prefix`` on ``venue``, its store in the database at ``dsn``."""
    transport = LoseAnswers()
    clock = SimulatedClock(0)
    rest = SignedRest(RestConfig(venue.http_url, timeout_s=5.0), CREDS, clock, transport=transport)
    async with asyncpg.create_pool(dsn, min_size=1, max_size=3) as pool:
        try:
            await rest.sync_time()
            store = OrderStore(pool, prefix, "paper", clock, crash)
            yield Rig(venue, BinanceBroker(rest, store, ASSETS, crash), transport, pool)
        finally:
            await rest.close()


@asynccontextmanager
async def paper_venue() -> AsyncIterator[ExchangeServer]:
    """The paper venue on a seeded synthetic Binance tape (timeline held: no market clients)."""
    tape = synthetic_tape("binance", 3, 2000, rate=1000.0, seed=7)
    async with ExchangeServer(tape, paper=config()) as server:
        yield server
