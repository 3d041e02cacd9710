"""The paper venue as the replay exchange server mounts it: REST, the WebSocket API, the tape."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from rrr_live.exchange.paper.account import Balance, PaperAccount, assets_of
from rrr_live.exchange.paper.auth import ApiKeys
from rrr_live.exchange.paper.limits import RateLimits
from rrr_live.exchange.paper.rest import Answer, PaperRequest, PaperRest
from rrr_live.exchange.paper.userdata import UserDataSession
from rrr_live.exchange.tape import TapeEvent
from rrr_live.exchange.venue import Market
from rrr_live.execution.models import FeeModel, LatencyModel

log = logging.getLogger(__name__)

WS_API_PATH = "/ws-api/v3"


@dataclass
class PaperConfig:
    """How the paper venue trades.

    Args:
        keys: the account's API key pair.
        balances: starting free balance by asset (``{"USDT": Decimal("10000")}``).
        fees: maker/taker fee rates.
        latency: order-to-venue latency in event time.
        limits: request-weight and order limits.
    """

    keys: ApiKeys
    balances: Mapping[str, Decimal] = field(default_factory=dict)
    fees: FeeModel = field(default_factory=FeeModel)
    latency: LatencyModel = field(default_factory=LatencyModel)
    limits: RateLimits = field(default_factory=RateLimits)


class PaperVenue:
    """One paper account inside the replay exchange (same port and event clock).

    Args:
        market: the server's market state (its tape gives the symbols, its time the clock).
        config: keys, balances, fees, latency, limits.
    """

    def __init__(self, market: Market, config: PaperConfig) -> None:
        self.market = market
        balances = {a: Balance(Decimal(v)) for a, v in config.balances.items()}
        self.account = PaperAccount(
            assets_of(market.tape), balances, config.fees, config.latency, market.now_ns
        )
        self.keys = config.keys
        self.rest = PaperRest(self.account, config.keys, self.server_ms, config.limits)

    def server_ms(self) -> int:
        """The venue's clock: the replay's event time in milliseconds."""
        return max(self.market.now_ns, self.account.now_ns) // 1_000_000

    def on_tape(self, event: TapeEvent) -> None:
        """See one replayed event (before any client does)."""
        self.account.on_tape(event)

    def http(self, request: Request, body: bytes) -> Answer | None:
        """Answer a REST request to the order API (None: not ours, the server routes it)."""
        path, _, query = request.path.partition("?")
        if not path.startswith("/api/"):
            return None
        answer = self.rest.handle(
            PaperRequest(request.method, path, query, body.decode("utf-8", "replace"),
                         _headers(request))
        )  # fmt: skip
        if answer is None:
            return self.rest.admit_public(path)
        return answer

    async def serve_ws(self, ws: ServerConnection) -> None:
        """Serve one WebSocket API connection until it closes."""
        session = UserDataSession(self)
        sender = asyncio.create_task(session.pump(ws), name="ws-api-sender")
        try:
            async for raw in ws:
                session.on_message(raw)
        except ConnectionClosed:
            pass
        finally:
            session.close()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender


def _headers(request: Request) -> Mapping[str, str]:
    return request.headers  # case-insensitive, as HTTP header names are


def paper_config(
    balances: str,
    maker_fee: float,
    taker_fee: float,
    latency_ms: float,
    key_file: Path | None = None,
    secret_file: Path | None = None,
) -> PaperConfig:
    """A paper config from CLI options; keys from the files or the environment.

    Raises:
        ValueError: malformed balances or fees.
        RRRError: missing keys.
    """
    if not -0.01 < maker_fee < 0.1 or not 0 <= taker_fee < 0.1:
        raise ValueError(f"fees out of range: maker {maker_fee}, taker {taker_fee}")
    return PaperConfig(
        ApiKeys.from_env(key_file, secret_file),
        parse_balances(balances),
        FeeModel(maker_fee, taker_fee),
        LatencyModel(round(latency_ms * 1_000_000)),
    )


def parse_balances(text: str) -> dict[str, Decimal]:
    """``USDT=10000,BTC=1`` (or a JSON object) as starting balances.

    Raises:
        ValueError: for a malformed entry or a negative amount.
    """
    text = text.strip()
    try:
        pairs: dict[str, Any] = (
            json.loads(text) if text.startswith("{") else
            dict(p.split("=", 1) for p in text.split(",") if p.strip())
        )  # fmt: skip
    except ValueError:
        raise ValueError(f"balances: not ASSET=AMOUNT,…: {text!r}") from None
    try:
        out = {k.strip().upper(): Decimal(str(v).strip()) for k, v in pairs.items()}
    except ArithmeticError:
        raise ValueError(f"balances: not ASSET=AMOUNT,…: {text!r}") from None
    bad = [k for k, v in out.items() if v < 0 or not k]
    if bad:
        raise ValueError(f"balances: negative or unnamed asset {bad[0]!r}")
    return out
