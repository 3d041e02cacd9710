"""Signed REST calls to a Binance-compatible spot API, with the venue's rate-limit backoff.

Outcomes are split three ways, because the broker must treat them differently:

* an answer (2xx): returned;
* a refusal (4xx with Binance's ``{"code", "msg"}``): :class:`VenueRejected` — the venue did not
  act; 429/418 are refusals too and are retried here after ``Retry-After``;
* no answer (timeout, disconnect, 5xx): :class:`AmbiguousOutcome` — the venue may or may not have
  acted; the caller resolves it by querying, never by resending blindly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from rrr_live.clock import Clock
from rrr_live.errors import RRRError
from rrr_live.exchange.paper.auth import sign

Sleeper = Callable[[float], Awaitable[None]]
STALE_TIMESTAMP = -1021  # Binance: timestamp outside recvWindow or ahead of the server


class VenueRejected(RRRError):
    """The venue refused a request with Binance's error shape."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"venue refused ({status}): {code} {msg}")
        self.status, self.code, self.msg = status, code, msg


class AmbiguousOutcome(RRRError):
    """No answer: the venue may or may not have acted on the request."""


class RateLimited(VenueRejected):
    """429/418 answered more times than the backoff allows."""


@dataclass(frozen=True)
class Credentials:
    """An API key and its HMAC secret (never shown)."""

    api_key: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class RestConfig:
    """Where and how to call the REST API.

    Args:
        base_url: e.g. ``http://127.0.0.1:8765``.
        recv_window_ms: Binance's ``recvWindow``.
        timeout_s: per-request timeout (past it the outcome is ambiguous).
        max_rate_limit_waits: 429/418 answers waited out before giving up.
        max_wait_s: the longest single wait (a larger ``Retry-After`` is capped, then retried).
        max_resyncs: clock re-syncs after a stale-timestamp refusal (-1021) before giving up.
    """

    base_url: str
    recv_window_ms: int = 5000
    timeout_s: float = 5.0
    max_rate_limit_waits: int = 5
    max_wait_s: float = 60.0
    max_resyncs: int = 3


class SignedRest:
    """Signed requests with rate-limit backoff on an injected sleeper and clock.

    Args:
        config: endpoint and limits.
        creds: key and secret.
        clock: the time source of ``timestamp`` (plus the offset from :meth:`sync_time`).
        sleeper: awaited with the seconds the venue asks to wait.
        transport: an httpx transport (tests), else the network.
    """

    def __init__(
        self,
        config: RestConfig,
        creds: Credentials,
        clock: Clock,
        sleeper: Sleeper = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config, self.creds, self.clock, self.sleeper = config, creds, clock, sleeper
        self.offset_ms = 0
        self.waits: list[float] = []  # every backoff taken, in seconds (metrics and tests)
        self.client = httpx.AsyncClient(
            base_url=config.base_url, timeout=config.timeout_s, transport=transport
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.client.aclose()

    def now_ms(self) -> int:
        """The venue's time as this side estimates it, in ms."""
        return self.clock.now_ns() // 1_000_000 + self.offset_ms

    async def sync_time(self) -> None:
        """Take the offset to the venue's clock from ``GET /api/v3/time``."""
        body = await self.public("GET", "/api/v3/time")
        self.offset_ms = int(body["serverTime"]) - self.clock.now_ns() // 1_000_000

    async def public(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """An unsigned request (market data, time)."""
        return await self._call(method, path, lambda: urlencode(params or {}), signed=False)

    async def signed(self, method: str, path: str, params: dict[str, Any]) -> Any:
        """A signed request; the signature covers the query string (Binance's totalParams)."""

        def query() -> str:  # re-signed on every retry: a fresh timestamp
            q = urlencode({**params, "recvWindow": self.config.recv_window_ms,
                           "timestamp": self.now_ms()})  # fmt: skip
            return f"{q}&signature={sign(self.creds.secret, q)}"

        for _ in range(self.config.max_resyncs):
            try:
                return await self._call(method, path, query, signed=True)
            except VenueRejected as e:
                if e.code != STALE_TIMESTAMP:
                    raise
            # The venue's clock moved away from ours (a replay's event time, or a rate-limit
            # wait while the replay's clock stood still): take it again. A -1021 means the
            # venue did not act, so the request may be sent again.
            await self.sync_time()
        return await self._call(method, path, query, signed=True)

    async def _call(self, method: str, path: str, query: Callable[[], str], signed: bool) -> Any:
        """One request, its 429/418 answers waited out (``max_rate_limit_waits`` at most)."""
        waits = 0
        while True:
            answer = await self._attempt(method, path, query, signed)
            if not isinstance(answer, Throttled):
                return answer
            if waits == self.config.max_rate_limit_waits:
                raise RateLimited(answer.status, answer.code, answer.msg)
            waits += 1
            wait = min(max(answer.wait_s, 0.0), self.config.max_wait_s)
            self.waits.append(wait)
            await self.sleeper(wait)

    async def _attempt(self, method: str, path: str, query: Callable[[], str], signed: bool) -> Any:
        """Send once: the answer, or :class:`Throttled` for a 429/418 (refusals raise)."""
        headers = {"X-MBX-APIKEY": self.creds.api_key} if signed else {}
        try:
            resp = await self.client.request(method, f"{path}?{query()}", headers=headers)
        except httpx.TransportError as e:  # timeouts included
            raise AmbiguousOutcome(f"{method} {path}: no answer ({type(e).__name__})") from e
        if resp.status_code not in (418, 429):
            return _answer(method, path, resp)
        code, msg = _error(resp)
        try:
            wait = float(resp.headers.get("Retry-After", "1"))
        except ValueError:
            wait = 1.0
        return Throttled(resp.status_code, code, msg, wait)


@dataclass(frozen=True)
class Throttled:
    """A 429/418 answer: the refusal and how long the venue asks to wait (seconds)."""

    status: int
    code: int
    msg: str
    wait_s: float


def _error(resp: httpx.Response) -> tuple[int, str]:
    try:
        body = resp.json()
        return int(body["code"]), str(body["msg"])
    except (ValueError, KeyError, TypeError):
        return 0, resp.text[:200]


def _answer(method: str, path: str, resp: httpx.Response) -> Any:
    if resp.status_code >= 500:
        raise AmbiguousOutcome(f"{method} {path}: venue error {resp.status_code}")
    if resp.status_code >= 400:
        code, msg = _error(resp)
        raise VenueRejected(resp.status_code, code, msg)
    return resp.json()
