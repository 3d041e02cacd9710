"""A small JSON-over-HTTP client for exchange REST history: rate limit, retry, clear errors."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import numpy as np
import pandas as pd

from rrr_live.domain.bars import BAR_COLUMNS
from rrr_pipelines.lib.sources.base import SourceError, SourceInstrument, empty_bars, require_aware
from rrr_pipelines.lib.sources.ratelimit import Clock, RetryPolicy, Sleeper, TokenBucket

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
CANDLE_KEYS = ("ts_s", "open", "high", "low", "close", "volume")
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "EUR", "GBP", "TRY", "BTC", "ETH", "BNB")


class RestSourceError(SourceError):
    """An exchange REST call failed for good (fatal status, malformed body, retries exhausted)."""


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the wait a ``Retry-After`` header asks for, in seconds (``None`` if absent/bad).

    Args:
        value: Header value: delay-seconds or an HTTP date.
        now: Current time, for the HTTP-date form.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class RestClient:
    """GET JSON from one venue with a token bucket, retries and errors that name the URL."""

    def __init__(
        self,
        base_url: str,
        *,
        limiter: TokenBucket,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleeper = time.sleep,
        wall_clock: Clock = time.time,
        seed: int | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        """Create the client.

        Args:
            base_url: Venue base URL (configurable, e.g. a local fake server).
            limiter: Shared token bucket; one token per request.
            retry: Backoff policy for 429/5xx/transport errors.
            transport: Optional httpx transport (``httpx.MockTransport`` in tests).
            sleep: How to wait (injected in tests).
            wall_clock: Epoch seconds, for HTTP-date ``Retry-After`` values.
            seed: Seed for the backoff jitter.
            timeout_s: Per-request timeout.
        """
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self._sleep, self._wall_clock = sleep, wall_clock
        self._rng = random.Random(seed)
        self._client = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout_s,
            headers={"User-Agent": "rrr-market-data/0.1", "Accept": "application/json"},
        )
        self.requests_sent = 0

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._client.close()

    def get_json(self, path: str, params: Mapping[str, str | int]) -> Any:
        """GET ``path`` and decode JSON, retrying 429 (honouring Retry-After), 5xx and I/O errors.

        Raises:
            RestSourceError: on a non-retryable status, a body that is not JSON, or when the
                retry budget is spent.
        """
        url = f"{self.base_url}{path}"
        last = "no attempt"
        for attempt in range(self.retry.max_attempts):
            self.limiter.acquire()
            self.requests_sent += 1
            try:
                resp = self._client.get(path, params=dict(params))
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
                self._wait(attempt, None, url, last)
                continue
            if resp.status_code in RETRYABLE_STATUS:
                last = f"HTTP {resp.status_code} {resp.text[:200]!r}"
                now = datetime.fromtimestamp(self._wall_clock(), tz=UTC)
                after = parse_retry_after(resp.headers.get("Retry-After"), now)
                self._wait(attempt, after, url, last)
                continue
            if resp.status_code >= 400:
                raise RestSourceError(
                    f"GET {url} params={dict(params)} -> HTTP {resp.status_code}: {resp.text[:300]}"
                )
            try:
                return resp.json()
            except ValueError as e:
                raise RestSourceError(
                    f"GET {url} params={dict(params)} returned a body that is not JSON: "
                    f"{resp.text[:200]!r}"
                ) from e
        raise RestSourceError(
            f"GET {url} params={dict(params)} failed after {self.retry.max_attempts} attempts; "
            f"last error: {last}"
        )

    def _wait(self, attempt: int, retry_after: float | None, url: str, why: str) -> None:
        if attempt + 1 >= self.retry.max_attempts:
            return
        if retry_after is not None and retry_after > self.retry.max_retry_after:
            raise RestSourceError(
                f"GET {url}: server asks to retry after {retry_after:.0f} s "
                f"(> {self.retry.max_retry_after:.0f} s allowed); {why}"
            )
        delay = retry_after if retry_after is not None else self.retry.backoff(attempt, self._rng)
        log.warning("GET %s failed (%s); retry %d in %.2f s", url, why, attempt + 1, delay)
        self._sleep(delay)


def candles_frame(
    source: str, symbol: str, interval: str, columns: dict[str, list[float]]
) -> pd.DataFrame:
    """Build a canonical frame for one symbol from parsed candle columns.

    Args:
        source: Source name (``coinbase``, ``binance``).
        symbol: Symbol as the venue spells it.
        interval: Bar interval.
        columns: ``ts_s`` (epoch seconds, float) plus open/high/low/close/volume lists.
    """
    n = len(columns["ts_s"])
    ts_ns = (np.asarray(columns["ts_s"], dtype=np.float64) * 1e9).round().astype(np.int64)
    frame = pd.DataFrame(
        {
            "source": pd.Series([source] * n, dtype="str"),
            "symbol": pd.Series([symbol] * n, dtype="str"),
            "interval": pd.Series([interval] * n, dtype="str"),
            "ts": pd.to_datetime(ts_ns, unit="ns", utc=True),
            **{k: np.asarray(columns[k], dtype=np.float64) for k in ("open", "high", "low")},
            "close": np.asarray(columns["close"], dtype=np.float64),
            "adj_close": np.asarray(columns["close"], dtype=np.float64),
            "volume": np.asarray(columns["volume"], dtype=np.float64),
        }
    )
    frame = frame.drop_duplicates(subset=["ts"], keep="first").sort_values("ts", kind="stable")
    return frame.loc[:, list(BAR_COLUMNS)].reset_index(drop=True)


def quote_currency(symbol: str) -> str:
    """Guess the quote currency: ``BTC-USD`` -> ``USD``, ``ETHUSDT`` -> ``USDT`` ('' if unknown).

    Args:
        symbol: Venue symbol.
    """
    if "-" in symbol:
        return symbol.rsplit("-", 1)[1]
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return quote
    return ""


class RestCandleSource(ABC):
    """What every exchange REST candle source shares: client set-up, per-symbol paging, frame.

    A venue subclass names itself in the class attributes and implements only what differs:
    :meth:`_configure_interval` (which bar intervals it serves) and :meth:`_collect` (URL,
    query parameters, page walk and row parsing).
    """

    name: ClassVar[str]
    venue: ClassVar[str]  # human name, for ``SourceInstrument.description``
    series: ClassVar[str]  # what the venue calls its bars ("klines", "candles"), for errors
    default_url: ClassVar[str]
    default_symbols: ClassVar[tuple[str, ...]]
    default_rate_per_s: ClassVar[float]
    default_burst: ClassVar[float]
    synthetic = False
    keeps_updating = True
    span: tuple[datetime, datetime] | None = None

    def __init__(
        self,
        symbols: list[str] | None = None,
        interval: str = "1m",
        base_url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        rate_per_s: float | None = None,
        burst: float | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleeper = time.sleep,
        wall_clock: Clock = time.time,
        seed: int | None = None,
    ) -> None:
        """Configure symbols, bar interval and the HTTP client.

        Args:
            symbols: Venue symbols (default: the class's ``default_symbols``).
            interval: Bar interval; the venue must serve it.
            base_url: Venue base URL (default: the class's ``default_url``).
            transport: Optional httpx transport (``httpx.MockTransport`` in tests).
            rate_per_s: Requests per second (default: the class's ``default_rate_per_s``).
            burst: Token-bucket capacity (default: the class's ``default_burst``).
            retry: Backoff policy for 429/5xx/transport errors.
            clock: Monotonic seconds, for the token bucket.
            sleep: How to wait (injected in tests).
            wall_clock: Epoch seconds, for HTTP-date ``Retry-After`` values.
            seed: Seed for the backoff jitter.

        Raises:
            SourceError: for an interval this venue does not serve.
        """
        self._configure_interval(interval)
        self.symbols = list(symbols or self.default_symbols)
        self.interval = interval
        rate = self.default_rate_per_s if rate_per_s is None else rate_per_s
        cap = self.default_burst if burst is None else burst
        limiter = TokenBucket(rate, cap, clock=clock, sleep=sleep)
        self.client = RestClient(
            base_url or self.default_url, limiter=limiter, retry=retry, transport=transport,
            sleep=sleep, wall_clock=wall_clock, seed=seed,
        )  # fmt: skip

    @abstractmethod
    def _configure_interval(self, interval: str) -> None:
        """Check that the venue serves ``interval`` and derive its paging step from it."""

    @abstractmethod
    def _collect(
        self, symbol: str, start: datetime, end: datetime, cols: dict[str, list[float]]
    ) -> None:
        """Page through ``symbol``'s history in ``[start, end)``, appending rows to ``cols``."""

    def instruments(self) -> list[SourceInstrument]:
        """Return the configured symbols (crypto, 24/7)."""
        return [
            SourceInstrument(s, self.name, "crypto", "24/7", quote_currency(s), self.venue)
            for s in self.symbols
        ]

    def fetch(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Return bars with ``start <= ts < end`` for every symbol, sorted by (symbol, ts).

        Raises:
            SourceError: for a naive ``start`` or ``end``.
            RestSourceError: on a failed request or a malformed response.
        """
        require_aware(self.name, start, end)
        frames = [self.fetch_symbol(s, start, end) for s in self.symbols]
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_bars()
        return pd.concat(frames, ignore_index=True).sort_values(["symbol", "ts"], ignore_index=True)

    def fetch_symbol(self, symbol: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Return one symbol's bars in ``[start, end)`` as a canonical frame.

        Raises:
            RestSourceError: on a failed request or a malformed response.
        """
        cols: dict[str, list[float]] = {k: [] for k in CANDLE_KEYS}
        self._collect(symbol, start, end, cols)
        if not cols["ts_s"]:
            return empty_bars()
        return candles_frame(self.name, symbol, self.interval, cols)

    def _rows(self, symbol: str, body: Any) -> list[Any]:
        """Return ``body`` as the JSON array of rows the venue promises, or raise."""
        if not isinstance(body, list):
            raise RestSourceError(
                f"{self.name} {symbol} {self.series}: expected a JSON array, got "
                f"{type(body).__name__}: {str(body)[:200]}"
            )
        return body


def append_candle(cols: dict[str, list[float]], ts_s: float, ohlcv: Sequence[float]) -> None:
    """Append one parsed candle to the column lists of :func:`candles_frame`.

    Args:
        cols: Column lists keyed by :data:`CANDLE_KEYS`.
        ts_s: Bar open time, epoch seconds.
        ohlcv: Open, high, low, close, volume.
    """
    cols["ts_s"].append(float(ts_s))
    for key, value in zip(CANDLE_KEYS[1:], ohlcv, strict=True):
        cols[key].append(float(value))
