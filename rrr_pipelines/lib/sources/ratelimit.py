"""Client-side rate limiting and retry backoff with an injected clock (tests never sleep)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleeper = Callable[[float], None]


class TokenBucket:
    """Token bucket: ``rate`` tokens per second, bursts up to ``capacity``.

    Time comes from ``clock`` (seconds, monotonic) and waiting goes through ``sleep``; tests
    inject a fake clock whose ``sleep`` advances it.
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        clock: Clock = time.monotonic,
        sleep: Sleeper = time.sleep,
    ) -> None:
        """Create a full bucket.

        Raises:
            ValueError: for a non-positive rate or a capacity below one token.
        """
        if rate <= 0 or capacity < 1:
            raise ValueError(
                f"token bucket needs rate > 0 and capacity >= 1, got {rate}, {capacity}"
            )
        self.rate, self.capacity = float(rate), float(capacity)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, sleeping until they are available; return the seconds waited.

        Raises:
            ValueError: if more tokens are asked for than the bucket can ever hold.
        """
        if tokens > self.capacity:
            raise ValueError(f"cannot take {tokens} tokens from a bucket of {self.capacity}")
        waited = 0.0
        with self._lock:
            self._refill()
            if self._tokens < tokens:
                waited = (tokens - self._tokens) / self.rate
                self._sleep(waited)
                self._refill()
                # the wait bought exactly the deficit; don't loop on clock rounding
                self._tokens = max(self._tokens, tokens)
            self._tokens -= tokens
        return waited


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter for retryable HTTP failures.

    Attributes:
        max_attempts: Total tries per request (first try included).
        base_delay: Backoff scale in seconds; try ``n`` waits ``U(0, min(cap, base * 2**n))``.
        max_delay: Cap of one backoff wait, seconds.
        max_retry_after: Longest ``Retry-After`` honoured; a longer one fails the request.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Return the jittered wait before retry number ``attempt`` (0-based).

        Args:
            attempt: How many retries happened before this one.
            rng: Random source (seeded in tests).
        """
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * (2.0**attempt)))
