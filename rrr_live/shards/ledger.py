"""The portfolio-wide risk ledger: runner shards trading one account share its limits.

Each shard is a runner trading a part of the universe with its own portfolio and
:class:`~rrr_live.risk.limits.RiskEngine`. The ledger (two PostgreSQL tables, migration
``0011_risk_ledger``) holds one row per account (equity base, high-water mark, the account-wide
state ACTIVE/REDUCING/HALTED, a resume epoch) and one row per shard (its gross and net exposure,
PnL, reservations, heartbeat). Every call that changes it takes the account row's lock
(``SELECT … FOR UPDATE``) first, so the shards' calls serialize; how long that took is the
*lock wait* (:attr:`RiskLedger.lock_wait_s`, ``on_lock_wait`` hook, metric
``rrr_ledger_lock_wait_seconds``).

Per decision batch the trader calls:

* :meth:`RiskLedger.sync` *before* the decision step: writes this shard's actual exposure and
  PnL, recomputes account equity and high-water mark, halts the account when the account
  drawdown reaches ``max_drawdown``, marks it REDUCING while the summed exposure is past the
  portfolio-wide gross/net limits, and carries the account state into this shard's risk engine:
  HALTED → :meth:`~rrr_live.risk.limits.RiskEngine.halt` (the step flattens per ``on_halt``),
  REDUCING → :meth:`~rrr_live.risk.limits.RiskEngine.set_external`, an operator resume (the
  epoch moved) → :meth:`~rrr_live.risk.limits.RiskEngine.resume`.
* :meth:`RiskLedger.reserve` *after* the step and before any order is sent: checks the approved
  orders against the portfolio-wide limits with the one aggregate rule
  (:func:`~rrr_live.risk.rules.check_aggregate`) over the other shards' rows plus this shard's
  exposure, denies the excess (``PORTFOLIO_GROSS`` / ``PORTFOLIO_NET``) and reserves the rest
  (this shard's row = exposure + approved deltas, until the next sync writes actual positions).

Fail closed: if the ledger cannot be reached within ``timeout_s`` (lock held, database down),
the shard's risk engine goes REDUCING (``"risk ledger unreachable"``) and every order that grows
or flips a position is denied; the next successful sync clears it. Database trouble never
raises into the trader.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from rrr_live.errors import RRRError
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.risk.reasons import DenyReason
from rrr_live.risk.rules import check_aggregate, drawdown_hit, exposure_deltas, not_reducing
from rrr_live.risk.state import TradingState
from rrr_live.shards import ledger_sql as sql
from rrr_live.strategy.decision import Decision, DecisionStep

log = logging.getLogger(__name__)
F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]

UNREACHABLE = "risk ledger unreachable"
_OK, _HALTED, _REDUCING = int(DenyReason.OK), int(DenyReason.HALTED), int(DenyReason.REDUCING_ONLY)
_PGROSS, _PNET = int(DenyReason.PORTFOLIO_GROSS), int(DenyReason.PORTFOLIO_NET)


class LedgerUnavailable(RRRError):
    """The risk ledger could not be reached in time, or its account row is missing."""


_DB_ERRORS = (
    TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError, LedgerUnavailable,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Synced:
    """What one committed sync decided for this shard."""

    state: str
    reason: str
    halted_by: str
    epoch: int


class RiskLedger:
    """One shard's handle on the account's risk ledger (see the module docstring).

    Args:
        pool: asyncpg pool to the ``rrr`` database (migrated).
        account: the account every shard of the runner trades.
        shard: this shard's name (unique within the account).
        limits: the limits; ``max_gross_notional``, ``max_net_notional`` and ``max_drawdown``
            apply to the whole account (``basis="equity"``: multiples of account equity).
        timeout_s: how long a sync or reservation may take before failing closed.
        on_lock_wait: called with the seconds each transaction waited for the account lock.
        monotonic: seconds clock of the lock-wait measurement.

    Attributes:
        epoch: the account resume epoch this shard applied.
        lock_wait_s: how long the last transaction waited for the account lock.
        reachable: the last call reached the ledger.
        last_error: the last database failure (also written to this shard's row).
        last_portfolio: portfolio-wide ``(gross, net)`` the last reservation checked against.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        account: str,
        shard: str,
        limits: RiskLimits,
        timeout_s: float = 2.0,
        on_lock_wait: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.perf_counter,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.pool, self.account, self.shard, self.limits = pool, account, shard, limits
        self.timeout_s = timeout_s
        self.on_lock_wait = on_lock_wait
        self.monotonic = monotonic
        self.epoch = 0
        self.lock_wait_s = 0.0
        self.reachable = True
        self.last_error = ""
        self.last_portfolio = (0.0, 0.0)

    async def open(self, equity: float) -> None:
        """Create the account row (base equity and high-water mark ``equity``) and this shard's.

        Idempotent: a restarted shard keeps both rows and the resume epoch it last applied.

        Raises:
            LedgerUnavailable: the database could not be reached within ``timeout_s``.
        """
        try:
            async with self._transaction() as conn:
                await conn.execute(sql.CREATE_ACCOUNT, self.account, float(equity))
                await conn.execute(sql.CREATE_SHARD, self.account, self.shard)
                self.epoch = int(await conn.fetchval(sql.SHARD_EPOCH, self.account, self.shard))
        except _DB_ERRORS as e:
            raise LedgerUnavailable(f"risk ledger of account {self.account!r}: {e}") from e

    # --- per batch ---------------------------------------------------------------------------
    async def sync(self, ts_ns: int, risk: RiskEngine) -> None:
        """Publish this shard's exposure and PnL; carry the account state into ``risk``."""
        try:
            async with self._transaction() as conn:
                row = await self._lock(conn)
                synced = await self._sync_rows(conn, ts_ns, risk, row)
        except _DB_ERRORS as e:
            self._unreachable(ts_ns, risk, e)
            return
        self.reachable = True
        if synced.epoch > self.epoch and risk.state is TradingState.HALTED:
            risk.resume(ts_ns, f"account {self.account} resumed")
        self.epoch = synced.epoch
        if synced.state == "HALTED":
            risk.halt(ts_ns, f"portfolio halted by {synced.halted_by}: {synced.reason}")
        risk.set_external(ts_ns, synced.reason if synced.state == "REDUCING" else None)

    async def _sync_rows(
        self, conn: asyncpg.Connection, ts_ns: int, risk: RiskEngine, row: asyncpg.Record
    ) -> _Synced:
        port = risk.portfolio
        equity, gross, net = _finite(port.valuation())
        await conn.execute(sql.WRITE_SHARD, self.account, self.shard, gross, net,
                           _finite_pnl(port), equity, 0.0, 0.0, risk.state.name,
                           row["epoch"], ts_ns, self.last_error)  # fmt: skip
        totals = await conn.fetchrow(sql.TOTALS, self.account)
        account_equity = row["base_equity"] + totals["pnl"]
        hwm = max(row["high_water_mark"], account_equity)
        state, reason, by = row["state"], row["halt_reason"], row["halted_by"]
        if state != "HALTED":
            state, reason, by = self._account_state(row, risk, account_equity, hwm, totals)
        await conn.execute(sql.WRITE_ACCOUNT, self.account, hwm, account_equity, state, reason,
                           by, ts_ns)  # fmt: skip
        return _Synced(state, reason, by, int(row["epoch"]))

    def _account_state(
        self,
        row: asyncpg.Record,
        risk: RiskEngine,
        account_equity: float,
        hwm: float,
        totals: asyncpg.Record,
    ) -> tuple[str, str, str]:
        """The state of an account that is not HALTED, after this shard's sync.

        A halt of this shard's own (journal lost, a failed computation, an operator on its
        engine) halts the account, unless an account resume this shard has not applied yet is
        what it is waiting for (its engine then resumes after this sync).
        """
        if risk.state is TradingState.HALTED and int(row["epoch"]) == self.epoch:
            why = risk.machine.history[-1].reason if risk.machine.history else "halted"
            return "HALTED", f"shard {self.shard} halted: {why}", self.shard
        if drawdown_hit(account_equity, hwm, self.limits.max_drawdown):
            dd = 1.0 - account_equity / hwm if hwm > 0 else 1.0
            return "HALTED", f"account drawdown {dd:.4f} >= {self.limits.max_drawdown}", self.shard
        over = self._over_limits(totals["gross"], totals["net"], account_equity)
        return ("REDUCING", over, "") if over else ("ACTIVE", "", "")

    def _over_limits(self, gross: float, net: float, account_equity: float) -> str:
        scale = self._scale(account_equity)
        over = []
        if gross > self.limits.max_gross_notional * scale:
            over.append(DenyReason.PORTFOLIO_GROSS.label)
        if abs(net) > self.limits.max_net_notional * scale:
            over.append(DenyReason.PORTFOLIO_NET.label)
        return ", ".join(over)

    def _scale(self, account_equity: float) -> float:
        return account_equity if self.limits.basis == "equity" else 1.0

    async def reserve(self, ts_ns: int, decision: Decision, step: DecisionStep) -> None:
        """Check the decision's approved orders against the portfolio-wide limits, in place.

        Denied orders get ``PORTFOLIO_GROSS`` / ``PORTFOLIO_NET`` (``HALTED`` for growing
        orders if another shard halted the account since the sync) in ``decision.codes``;
        the approved ones are reserved in this shard's row. Orders that shrink exposure are
        never denied. Unreachable: growing or flipping orders are denied (``REDUCING_ONLY``).
        """
        codes = decision.codes
        if not len(codes) or decision.reduce_only or not np.count_nonzero(codes == _OK):
            return
        port = step.portfolio
        sym = decision.sym
        pos = port.position_lots[sym] * port.lot[sym]
        qty = decision.lots * port.lot[sym]
        before = codes.copy()
        try:
            async with self._transaction() as conn:
                row = await self._lock(conn)
                await self._reserve_rows(conn, row, codes, pos, qty, decision.ref, port)
        except _DB_ERRORS as e:
            codes[:] = before
            codes[(codes == _OK) & not_reducing(pos, qty)] = _REDUCING
            self._unreachable(ts_ns, step.risk, e)
        step.risk.count(np.where(before == codes, _OK, codes).astype(np.int8))

    async def _reserve_rows(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        codes: I8,
        pos: F64,
        qty: F64,
        ref: F64,
        port: Portfolio,
    ) -> None:
        if row["state"] == "HALTED":
            codes[(codes == _OK) & not_reducing(pos, qty)] = _HALTED
        others = await conn.fetchrow(sql.OTHERS, self.account, self.shard)
        d_gross, d_net = exposure_deltas(pos, qty, ref)
        _, own_gross, own_net = _finite(port.valuation())
        scale = self._scale(row["equity"])
        lim = self.limits
        gross, net = others["gross"] + own_gross, others["net"] + own_net
        self.last_portfolio = (gross, net)
        check_aggregate(codes, d_gross, d_net, gross, net, lim.max_gross_notional * scale,
                        lim.max_net_notional * scale, _PGROSS, _PNET)  # fmt: skip
        ok = codes == _OK
        add_gross, add_net = float(d_gross[ok].sum()), float(d_net[ok].sum())
        await conn.execute(sql.RESERVE_SHARD, self.account, self.shard, own_gross + add_gross,
                           own_net + add_net, add_gross, add_net)  # fmt: skip

    async def check_cash(self, venue_cash: float, tolerance: float) -> float:
        """Reconcile the account's cash with the venue: record and return the difference.

        The ledger's cash is ``base_equity`` plus every shard's ``cash_flow`` (the cash its
        fills moved, fees included); ``venue_cash`` is the venue's quote balance now. The
        difference, the venue's figure and who checked are written to the account row (``rrr
        live status`` shows them); beyond ``tolerance`` a warning names both. It does not halt:
        a shard's fill the venue booked but the shard has not synced yet differs for a batch.

        Raises:
            LedgerUnavailable: the database could not be reached within ``timeout_s``.
        """
        try:
            async with self._transaction() as conn:
                row = await self._lock(conn)
                flows = float(await conn.fetchval(sql.CASH_FLOW, self.account))
                diff = float(venue_cash) - (float(row["base_equity"]) + flows)
                await conn.execute(sql.WRITE_CASH_CHECK, self.account, float(venue_cash), diff,
                                   self.shard)  # fmt: skip
        except _DB_ERRORS as e:
            raise LedgerUnavailable(f"risk ledger of account {self.account!r}: {e}") from e
        if abs(diff) > tolerance:
            log.warning("account %s: venue cash %.8f differs from the ledger's by %.8f",
                        self.account, venue_cash, diff)  # fmt: skip
        return diff

    # --- operator ----------------------------------------------------------------------------
    async def halt(self, ts_ns: int, reason: str) -> None:
        """Halt the whole account (every shard halts at its next sync).

        Raises:
            LedgerUnavailable: the database could not be reached within ``timeout_s``.
        """
        await self._operator(sql.HALT_ACCOUNT, reason, self.shard, ts_ns)

    async def resume(self, ts_ns: int, reason: str = "operator resume") -> None:
        """Resume the account: ACTIVE, high-water mark = account equity now, epoch bumped.

        Every shard (this one included) resumes its risk engine at its next sync.

        Raises:
            LedgerUnavailable: the database could not be reached within ``timeout_s``.
        """
        await self._operator(None, reason, "", ts_ns)

    async def _operator(self, statement: str | None, reason: str, by: str, ts_ns: int) -> None:
        try:
            async with self._transaction() as conn:
                row = await self._lock(conn)
                if statement is not None:
                    await conn.execute(statement, self.account, reason, by, ts_ns)
                    return
                totals = await conn.fetchrow(sql.TOTALS, self.account)
                equity = row["base_equity"] + totals["pnl"]
                await conn.execute(sql.RESUME_ACCOUNT, self.account, equity, reason, ts_ns)
        except _DB_ERRORS as e:
            raise LedgerUnavailable(f"risk ledger of account {self.account!r}: {e}") from e

    def view(self) -> dict[str, Any]:
        """Return this handle's own facts (no database call): for a runner's status page."""
        return {"account": self.account, "shard": self.shard, "reachable": self.reachable,
                "epoch": self.epoch, "lock_wait_s": self.lock_wait_s,
                "last_error": self.last_error}  # fmt: skip

    async def status(self) -> dict[str, Any]:
        """Return the account row and every shard row (JSON-ready)."""
        return await ledger_status(self.pool, self.account)

    # --- plumbing ----------------------------------------------------------------------------
    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with (
            asyncio.timeout(self.timeout_s),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            yield conn

    async def _lock(self, conn: asyncpg.Connection) -> asyncpg.Record:
        start = self.monotonic()
        await conn.execute(sql.SET_LOCK_TIMEOUT, f"{max(1, int(self.timeout_s * 900))}ms")
        row = await conn.fetchrow(sql.LOCK_ACCOUNT, self.account)
        self.lock_wait_s = self.monotonic() - start
        if self.on_lock_wait is not None:
            self.on_lock_wait(self.lock_wait_s)
        if row is None:
            raise LedgerUnavailable(f"no risk_account row for {self.account!r} (not opened)")
        return row

    def _unreachable(self, ts_ns: int, risk: RiskEngine, e: BaseException) -> None:
        self.last_error = f"{type(e).__name__}: {e}"[:500]
        if self.reachable:
            log.warning("risk ledger %s unreachable (%s): reducing only", self.account, type(e))
        self.reachable = False
        risk.set_external(ts_ns, UNREACHABLE)


def _finite_pnl(port: Portfolio) -> float:
    """Return the shard's PnL (restart-safe, see ``Portfolio.pnl``); not finite fails closed."""
    pnl = port.pnl()
    if not math.isfinite(pnl):
        raise LedgerUnavailable(f"shard PnL is not finite: {pnl}")
    return pnl


def _finite(valuation: tuple[float, float, float]) -> tuple[float, float, float]:
    """Return ``(equity, gross, net)``; a value that is not finite fails the call closed."""
    if not all(math.isfinite(v) for v in valuation):
        raise LedgerUnavailable(f"shard valuation is not finite: {valuation}")
    return valuation


async def ledger_status(pool: asyncpg.Pool, account: str) -> dict[str, Any]:
    """Return ``{"account": row or None, "shards": [rows]}`` of ``account`` (JSON-ready)."""
    async with pool.acquire() as conn:
        acct = await conn.fetchrow(sql.STATUS_ACCOUNT, account)
        shards = await conn.fetch(sql.STATUS_SHARDS, account)
    return {
        "account": None if acct is None else _plain(acct),
        "shards": [_plain(r) for r in shards],
    }


def _plain(row: asyncpg.Record) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
