"""An asyncpg pool with acquire, connect, command and statement timeouts and bounded retry.

After the server is killed, ``acquire`` fails at once with ``ConnectionRefusedError`` (stale
socket) instead of waiting for its timeout, and the same pool works again once the server is
back. So transient failures are retried here with our own capped, jittered backoff through an
injected sleeper, and callers that must not wait (the journal writer) ask for one attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleeper = Callable[[float], Awaitable[None]]
ConnectionInit = Callable[[asyncpg.Connection], Awaitable[None]]

# What a dead, restarting, unreachable or overloaded server raises. QueryCanceledError
# (statement_timeout) and the shutdown errors are OperatorInterventionError; "connection is
# closed" after a server crash is an InterfaceError.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
)


def is_transient(err: BaseException) -> bool:
    """Return whether ``err`` means "the database is unavailable now", worth a retry."""
    return isinstance(err, TRANSIENT_ERRORS)


@dataclass(frozen=True)
class PoolConfig:
    """Connection settings of a :class:`JournalPool`.

    Args:
        dsn: a libpq-style URL (``postgresql://user@/db?host=/socket/dir``); may hold a password,
            so it is never logged.
        min_size: connections kept open (0: a pool can be created while the server is down).
        max_size: the most connections open at once.
        connect_timeout_s: limit on opening one connection.
        acquire_timeout_s: limit on getting a connection from the pool (includes connecting).
        command_timeout_s: client-side limit on one statement.
        statement_timeout_ms: server-side ``statement_timeout`` of every connection.
        retries: attempts after the first one in :meth:`JournalPool.run` (by default).
        backoff_initial_s: first retry delay; doubles up to ``backoff_max_s``, full jitter.
        backoff_max_s: the largest retry delay.
    """

    dsn: str
    min_size: int = 0
    max_size: int = 4
    connect_timeout_s: float = 3.0
    acquire_timeout_s: float = 3.0
    command_timeout_s: float = 10.0
    statement_timeout_ms: int = 10_000
    retries: int = 5
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 2.0


def backoff_delay(attempt: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Return the delay before retry ``attempt`` (0-based): capped exponential, full jitter."""
    return rng.uniform(0.0, min(max_s, initial_s * 2 ** min(attempt, 30)))


class JournalPool:
    """asyncpg pool wrapper: timeouts on every path, transient errors retried with backoff.

    Args:
        config: connection settings.
        init: coroutine run on every new connection (e.g. creating temp staging tables).
        sleeper: awaited between retries (``asyncio.sleep`` in production).
        rng: jitter source.
    """

    def __init__(
        self,
        config: PoolConfig,
        *,
        init: ConnectionInit | None = None,
        sleeper: Sleeper = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._init = init
        self._sleep = sleeper
        self._rng = rng if rng is not None else random.Random()
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        """Create the pool (with ``min_size=0`` this succeeds while the server is down)."""
        cfg = self.config
        self._pool = await asyncpg.create_pool(
            cfg.dsn,
            min_size=cfg.min_size,
            max_size=cfg.max_size,
            timeout=cfg.connect_timeout_s,
            command_timeout=cfg.command_timeout_s,
            server_settings={"statement_timeout": str(cfg.statement_timeout_ms)},
            init=self._init,
        )

    async def close(self, timeout_s: float = 5.0) -> None:
        """Close every connection; terminate those that do not close within ``timeout_s``."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await pool.close()
        except TimeoutError:
            pool.terminate()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """Acquire one connection (one attempt, ``acquire_timeout_s``).

        A connection whose block raised is terminated rather than returned: the error may have
        left it mid-statement or mid-COPY, or on a half-dead socket (server crashed or
        blackholed), and the pool's reset would then fail or hang. Reconnecting costs ~5 ms.
        """
        if self._pool is None:
            raise RuntimeError("JournalPool.open() was not called")
        con = await self._pool.acquire(timeout=self.config.acquire_timeout_s)
        try:
            yield con
        except BaseException:
            # A connection lost mid-statement was already given back by asyncpg itself.
            with contextlib.suppress(asyncpg.InterfaceError):
                con.terminate()
            await self._pool.release(con)  # immediate for a terminated or given-back one
            raise
        try:
            await self._pool.release(con, timeout=self.config.acquire_timeout_s)
        except Exception as e:  # the work succeeded; the pool replaces the connection
            log.warning("discarded a connection that failed to reset (%s: %s)", type(e).__name__, e)

    async def run(
        self, fn: Callable[[asyncpg.Connection], Awaitable[T]], *, retries: int | None = None
    ) -> T:
        """Run ``fn(connection)``, retrying transient failures with capped jittered backoff.

        Args:
            fn: the work; it must be safe to repeat (idempotent or in one transaction).
            retries: attempts after the first (default: the config's); 0 means one attempt.

        Raises:
            the last transient error once the attempts are spent, or any other error at once.
        """
        cfg = self.config
        n = cfg.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                async with self.connection() as con:
                    return await fn(con)
            except TRANSIENT_ERRORS as e:
                if attempt >= n:
                    raise
                delay = backoff_delay(attempt, cfg.backoff_initial_s, cfg.backoff_max_s, self._rng)
                attempt += 1
                log.warning(
                    "database unavailable (%s: %s); retry %d/%d in %.3fs",
                    type(e).__name__, e, attempt, n, delay,
                )  # fmt: skip
                await self._sleep(delay)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Run a query with retry and return its rows."""

        async def go(con: asyncpg.Connection) -> list[asyncpg.Record]:
            return list(await con.fetch(query, *args))

        return await self.run(go)

    async def execute(self, query: str, *args: Any) -> str:
        """Run a statement with retry and return its status line."""

        async def go(con: asyncpg.Connection) -> str:
            return str(await con.execute(query, *args))

        return await self.run(go)
