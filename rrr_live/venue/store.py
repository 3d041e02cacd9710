"""The order store: a small transactional store on asyncpg (migration 0005).

Why not the batched journal writer of the market data: persist-before-send needs the order row
*committed* before the request leaves, and a fill must update the position in the same
transaction; a batching writer acknowledges later. Each call here is one short transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from rrr_live.clock import Clock
from rrr_live.venue.model import (
    OPEN_STATES,
    CrashPoint,
    Decision,
    FillRecord,
    OrderIntent,
    OrderState,
    no_crash,
)

_INSERT_ORDER = """
INSERT INTO orders (client_id, prefix, venue, symbol, side, order_type, qty, price, tif, state,
                    model_version, feature_spec, source_seq, created_ns, updated_ns)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending_send', $10, $11, $12, $13, $13)
ON CONFLICT (client_id) DO NOTHING
"""
_EVENT = "INSERT INTO order_events (client_id, ts_ns, kind, detail) VALUES ($1, $2, $3, $4)"
_INSERT_FILL = """
INSERT INTO fills (symbol, trade_id, client_id, side, qty, price, quote_qty, fee, fee_asset,
                   ts_ns, source)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING
"""
_POSITION = """
INSERT INTO positions (prefix, asset, qty, updated_ns) VALUES ($1, $2, $3, $4)
ON CONFLICT (prefix, asset) DO UPDATE SET qty = positions.qty + EXCLUDED.qty,
                                          updated_ns = EXCLUDED.updated_ns
"""


@dataclass(frozen=True, slots=True)
class FilledOrder:
    """A stored order that filled: how much, and at what average price (``None``: unknown)."""

    client_id: str
    symbol: str
    side: str
    filled_qty: Decimal
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class StateChange:
    """An order's new state to record, with the venue's id (None: unchanged) and event detail."""

    client_id: str
    state: str
    venue_order_id: int | None = None
    detail: str = "{}"

    @classmethod
    def of(
        cls, client_id: str, state: str, venue_order_id: int | None = None, **detail: Any
    ) -> StateChange:
        """A change whose event detail is ``detail`` (JSON-encoded here)."""
        return cls(client_id, state, venue_order_id, json.dumps(detail, default=str))


class OrderStore:
    """Orders, their events, fills and positions of one runner prefix.

    Args:
        pool: an asyncpg pool on a database migrated to 0005.
        prefix: this runner's client-id prefix.
        venue: the venue's name.
        clock: the injected clock (event timestamps).
        crash: called at every persistence boundary (crash tests).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        prefix: str,
        venue: str,
        clock: Clock,
        crash: CrashPoint = no_crash,
    ) -> None:
        self.pool = pool
        self.prefix = prefix
        self.venue = venue
        self.clock = clock
        self.crash = crash

    async def persist(self, intent: OrderIntent) -> bool:
        """Commit ``intent`` as ``pending_send``; return False if its id was already stored."""
        return (await self.persist_many([intent]))[0]

    async def persist_many(self, intents: Sequence[OrderIntent]) -> list[bool]:
        """Commit every intent as ``pending_send`` in one transaction (one decision's orders).

        Returns, per intent, whether it was new (False: its id was already stored).
        """
        now = self.clock.now_ns()
        ids = [i.client_id for i in intents]
        async with self.pool.acquire() as con, con.transaction():
            rows = await con.fetch("SELECT client_id FROM orders WHERE client_id = ANY($1)", ids)
            known = {r["client_id"] for r in rows}
            fresh = [i for i in intents if i.client_id not in known]
            await con.executemany(_INSERT_ORDER, [
                (i.client_id, i.prefix, self.venue, i.symbol, i.side, i.order_type, i.qty, i.price,
                 i.tif, i.decision.model_version, i.decision.feature_spec, i.decision.source_seq,
                 now) for i in fresh
            ])  # fmt: skip
            await con.executemany(_EVENT, [(i.client_id, now, "persisted", "{}") for i in fresh])
        return [cid not in known for cid in ids]

    async def set_states(self, states: Sequence[StateChange]) -> None:
        """Record many orders' new states, each with an event, in one transaction."""
        now = self.clock.now_ns()
        async with self.pool.acquire() as con, con.transaction():
            await con.executemany(
                "UPDATE orders SET state = $2, venue_order_id = COALESCE($3, venue_order_id),"
                " updated_ns = $4 WHERE client_id = $1",
                [(c.client_id, c.state, c.venue_order_id, now) for c in states],
            )
            await con.executemany(_EVENT, [(c.client_id, now, c.state, c.detail) for c in states])

    async def set_state(
        self, client_id: str, state: str, venue_order_id: int | None = None, **detail: Any
    ) -> None:
        """Record the order's new state (and the venue's id once known) with an event."""
        await self.set_states([StateChange.of(client_id, state, venue_order_id, **detail)])

    async def record_fill(self, fill: FillRecord, base: str, quote: str, source: str) -> bool:
        """Store ``fill`` and apply it to the positions in one transaction.

        Returns:
            False if the venue trade was already stored (seen on the stream and again by
            reconciliation): nothing changes then.
        """
        sign = Decimal(1) if fill.side == "BUY" else Decimal(-1)
        now = self.clock.now_ns()
        async with self.pool.acquire() as con, con.transaction():
            status = await con.execute(
                _INSERT_FILL, fill.symbol, fill.trade_id, fill.client_id, fill.side, fill.qty,
                fill.price, fill.quote_qty, fill.fee, fill.fee_asset, fill.ts_ns, source,
            )  # fmt: skip
            if status != "INSERT 0 1":
                return False
            self.crash("fill_before_position")
            await con.execute(_POSITION, self.prefix, base, sign * fill.qty, now)
            await con.execute(_POSITION, self.prefix, quote, -sign * fill.quote_qty, now)
            if fill.fee:
                await con.execute(_POSITION, self.prefix, fill.fee_asset, -fill.fee, now)
            await con.execute(
                "UPDATE orders SET filled_qty = filled_qty + $2, updated_ns = $3"
                " WHERE client_id = $1",
                fill.client_id, fill.qty, now,
            )  # fmt: skip
            detail = json.dumps({"trade_id": fill.trade_id, "qty": str(fill.qty), "src": source})
            await con.execute(_EVENT, fill.client_id, now, "fill", detail)
        return True

    async def unresolved(self) -> list[OrderIntent]:
        """Return this prefix's orders whose outcome is not final, oldest first."""
        rows = await self.pool.fetch(
            "SELECT * FROM orders WHERE prefix = $1 AND state = ANY($2::text[])"
            " ORDER BY created_ns, client_id",
            self.prefix, sorted(OPEN_STATES),
        )  # fmt: skip
        return [_intent(r) for r in rows]

    async def last_seq(self) -> int:
        """The highest decision sequence of this prefix's stored orders (0: none).

        A restarted runner continues after it, so a batch the journal never recorded (the
        process died between sending and journaling) does not hand its client ids to another.
        """
        value = await self.pool.fetchval(
            "SELECT coalesce(max(source_seq), 0) FROM orders WHERE prefix = $1", self.prefix
        )
        return int(value)

    async def filled(self) -> list[FilledOrder]:
        """This prefix's orders with stored fills, in decision order.

        The price is the average of their stored fills (else the limit price).
        """
        rows = await self.pool.fetch(
            "SELECT o.client_id, o.symbol, o.side, o.filled_qty,"
            " coalesce(sum(f.quote_qty) / nullif(sum(f.qty), 0), o.price) AS price"
            " FROM orders o LEFT JOIN fills f USING (client_id)"
            " WHERE o.prefix = $1 AND o.filled_qty > 0"
            " GROUP BY o.client_id ORDER BY o.source_seq, o.client_id",
            self.prefix,
        )
        return [FilledOrder(r["client_id"], r["symbol"], r["side"], r["filled_qty"], r["price"])
                for r in rows]  # fmt: skip

    async def sent_without_fills(self) -> list[tuple[str, str, int]]:
        """Sent orders of this prefix without a stored fill: ``(client id, symbol, venue id)``.

        The venue took them (it gave an id) and no fill of theirs is stored (the runner records
        answers, not fills); rejected ones are left out. In decision order.
        """
        rows = await self.pool.fetch(
            "SELECT client_id, symbol, venue_order_id FROM orders WHERE prefix = $1"
            " AND venue_order_id IS NOT NULL AND filled_qty = 0 AND state <> 'REJECTED'"
            " ORDER BY source_seq, client_id",
            self.prefix,
        )
        return [(r["client_id"], r["symbol"], r["venue_order_id"]) for r in rows]

    async def order(self, client_id: str) -> OrderState | None:
        """Return the stored state of one order, or None."""
        r = await self.pool.fetchrow(
            "SELECT client_id, state, venue_order_id, filled_qty FROM orders WHERE client_id = $1",
            client_id,
        )
        if r is None:
            return None
        return OrderState(r["client_id"], r["state"], r["venue_order_id"], r["filled_qty"])

    async def intent(self, client_id: str) -> OrderIntent:
        """Return the stored order of ``client_id``.

        Raises:
            KeyError: if no order has that id.
        """
        r = await self.pool.fetchrow("SELECT * FROM orders WHERE client_id = $1", client_id)
        if r is None:
            raise KeyError(client_id)
        return _intent(r)

    async def client_of(self, venue_order_id: int, symbol: str) -> str | None:
        """Return our client id of a venue order id (None: not ours or not yet acknowledged)."""
        cid: str | None = await self.pool.fetchval(
            "SELECT client_id FROM orders WHERE prefix = $1 AND symbol = $2"
            " AND venue_order_id = $3",
            self.prefix, symbol, venue_order_id,
        )  # fmt: skip
        return cid

    async def positions(self) -> dict[str, Decimal]:
        """Return this prefix's net quantity per asset (zeros left out)."""
        rows = await self.pool.fetch(
            "SELECT asset, qty FROM positions WHERE prefix = $1 AND qty <> 0", self.prefix
        )
        return {r["asset"]: r["qty"] for r in rows}

    async def fill_ids(self) -> set[tuple[str, int]]:
        """Return the ``(symbol, trade id)`` of every stored fill of this prefix."""
        rows = await self.pool.fetch(
            "SELECT f.symbol, f.trade_id FROM fills f JOIN orders o USING (client_id)"
            " WHERE o.prefix = $1",
            self.prefix,
        )
        return {(r["symbol"], r["trade_id"]) for r in rows}

    async def set_risk(self, problems: list[str]) -> None:
        """Record this runner's risk state: halted with the named problems, or active."""
        await self.pool.execute(
            "INSERT INTO risk_state (prefix, state, reason, updated_ns) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (prefix) DO UPDATE SET state = EXCLUDED.state,"
            " reason = EXCLUDED.reason, updated_ns = EXCLUDED.updated_ns",
            self.prefix, "halted" if problems else "active", "; ".join(problems),
            self.clock.now_ns(),
        )  # fmt: skip

    async def record_denial(self, symbol: str, rule: str, detail: str, decision: Decision) -> None:
        """Record an order the risk engine refused, with the decision it came from."""
        await self.pool.execute(
            "INSERT INTO denials (prefix, ts_ns, symbol, rule, detail, model_version,"
            " feature_spec, source_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            self.prefix, self.clock.now_ns(), symbol, rule, detail, decision.model_version,
            decision.feature_spec, decision.source_seq,
        )  # fmt: skip

    async def events(self, client_id: str) -> list[str]:
        """Return the kinds of an order's events in order (tests and audits)."""
        rows = await self.pool.fetch(
            "SELECT kind FROM order_events WHERE client_id = $1 ORDER BY id", client_id
        )
        return [r["kind"] for r in rows]


def _intent(r: asyncpg.Record) -> OrderIntent:
    return OrderIntent(
        r["client_id"], r["prefix"], r["symbol"], r["side"], r["order_type"], r["qty"],
        r["price"], Decision(r["model_version"], r["feature_spec"], r["source_seq"]), r["tif"],
    )  # fmt: skip
