"""Binance's request-weight and order-count limits: fixed windows on an injected clock.

Over a limit the answer is HTTP 429 (``-1003`` weight, ``-1015`` orders) with ``Retry-After``
(seconds to the window's end); a client that keeps sending after ``ban_after`` such answers in
one window is banned: HTTP 418 with ``Retry-After`` for ``ban_s`` seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rrr_live.exchange.paper.errors import BinanceError


@dataclass
class Window:
    """A fixed window counter (``limit`` per ``seconds``, aligned to the clock)."""

    limit: int
    seconds: int
    start: float = -1.0
    used: int = 0

    def roll(self, now: float) -> bool:
        """Start a new window when ``now`` left the current one; return whether it did."""
        start = math.floor(now / self.seconds) * self.seconds
        if start == self.start:
            return False
        self.start, self.used = start, 0
        return True

    def retry_after(self, now: float) -> int:
        """Whole seconds until this window ends (at least 1)."""
        return max(1, math.ceil(self.start + self.seconds - now))


@dataclass
class RateLimits:
    """Weight per minute and orders per 10 s / per day, as Binance's ``rateLimits`` say.

    Args:
        weight_per_minute: ``REQUEST_WEIGHT`` per ``MINUTE``.
        orders_per_10s: ``ORDERS`` per 10 ``SECOND``.
        orders_per_day: ``ORDERS`` per ``DAY``.
        ban_after: 429 answers in one window before a ban.
        ban_s: ban length in seconds (418).
        clock: wall seconds (injected in tests).
    """

    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    ban_after: int = 3
    ban_s: int = 120
    clock: Callable[[], float] = time.time
    _weight: Window = field(init=False)
    _orders: list[Window] = field(init=False)
    _strikes: int = field(init=False, default=0)
    _banned_until: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._weight = Window(self.weight_per_minute, 60)
        self._orders = [Window(self.orders_per_10s, 10), Window(self.orders_per_day, 86_400)]

    def exchange_info(self) -> list[dict[str, object]]:
        """The ``rateLimits`` array of ``exchangeInfo``."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": self.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": self.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
             "limit": self.orders_per_day},
        ]  # fmt: skip

    def admit(self, weight: int, orders: int = 0) -> dict[str, str]:
        """Count one request; return the usage headers.

        Raises:
            BinanceError: 429 over a limit, 418 while banned.
        """
        now = self.clock()
        if now < self._banned_until:
            until = int(self._banned_until * 1000)
            msg = f"Way too many requests; IP(127.0.0.1) banned until {until}. Please use the websocket for live updates to avoid bans."  # noqa: E501
            raise BinanceError(418, -1003, msg, math.ceil(self._banned_until - now))
        if self._weight.roll(now):
            self._strikes = 0  # a ban needs repeated 429s within one window
        if self._weight.used + weight > self._weight.limit:
            self._strike(now)
            msg = f"Too many requests; current limit of IP(127.0.0.1) request weight per minute is {self._weight.limit}. Please use WebSocket Streams for live updates to avoid polling the API."  # noqa: E501
            raise BinanceError(429, -1003, msg, self._weight.retry_after(now))
        self._weight.used += weight
        for window in self._orders:
            window.roll(now)
            if orders and window.used + orders > window.limit:
                self._strike(now)
                msg = f"Too many new orders; current limit is {window.limit} orders per {_interval(window.seconds)}."  # noqa: E501
                raise BinanceError(429, -1015, msg, window.retry_after(now))
        for window in self._orders:
            window.used += orders
        return {
            "X-MBX-USED-WEIGHT-1M": str(self._weight.used),
            "X-MBX-ORDER-COUNT-10S": str(self._orders[0].used),
            "X-MBX-ORDER-COUNT-1D": str(self._orders[1].used),
        }

    def _strike(self, now: float) -> None:
        self._strikes += 1
        if self._strikes > self.ban_after:
            self._banned_until, self._strikes = now + self.ban_s, 0


def _interval(seconds: int) -> str:
    return "1 DAY" if seconds == 86_400 else f"{seconds} SECOND"
