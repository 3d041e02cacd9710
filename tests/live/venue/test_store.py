"""The order store on the real PostgreSQL: persist once, fills once, positions from fills."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest

from rrr_live.clock import SimulatedClock
from rrr_live.venue.model import Decision, FillRecord, OrderIntent, client_order_id
from rrr_live.venue.store import OrderStore

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

D = Decimal
DECISION = Decision("model-7", "fs-3", 4242)


def _intent(prefix: str = "r1", seq: int = 4242) -> OrderIntent:
    d = Decision("model-7", "fs-3", seq)
    return OrderIntent(client_order_id(prefix, d), prefix, "BTCUSDT", "BUY", "LIMIT",
                       D("0.5"), D("100.10"), d)  # fmt: skip


def _fill(cid: str, trade_id: int, qty: str, px: str) -> FillRecord:
    return FillRecord("BTCUSDT", trade_id, cid, "BUY", D(qty), D(px), D(qty) * D(px),
                      D("0.01"), "USDT", 5)  # fmt: skip


async def test_persist_is_idempotent_and_names_the_decision(orders_dsn: str) -> None:
    async with asyncpg.create_pool(orders_dsn, min_size=1, max_size=2) as pool:
        store = OrderStore(pool, "r1", "paper", SimulatedClock(10))
        intent = _intent()
        assert intent.client_id == "r1-1092-0"
        assert await store.persist(intent) is True
        assert await store.persist(intent) is False  # the same decision replayed: one row
        row = await pool.fetchrow("SELECT * FROM orders WHERE client_id = $1", intent.client_id)
        assert (row["model_version"], row["feature_spec"], row["source_seq"]) == (
            "model-7",
            "fs-3",
            4242,
        )
        assert row["state"] == "pending_send"
        assert await store.unresolved() == [intent]
        assert await store.events(intent.client_id) == ["persisted"]


async def test_a_fill_seen_twice_changes_positions_once(orders_dsn: str) -> None:
    async with asyncpg.create_pool(orders_dsn, min_size=1, max_size=2) as pool:
        store = OrderStore(pool, "r1", "paper", SimulatedClock(10))
        intent = _intent()
        await store.persist(intent)
        await store.set_state(intent.client_id, "NEW", venue_order_id=77)
        assert await store.record_fill(
            _fill(intent.client_id, 1, "0.2", "100"), "BTC", "USDT", "stream"
        )
        assert not await store.record_fill(
            _fill(intent.client_id, 1, "0.2", "100"), "BTC", "USDT", "reconcile"
        )
        assert await store.record_fill(
            _fill(intent.client_id, 2, "0.3", "101"), "BTC", "USDT", "stream"
        )
        await store.set_state(intent.client_id, "FILLED")
        assert await store.positions() == {
            "BTC": D("0.5"),
            "USDT": -(D("20") + D("30.3") + D("0.02")),
        }
        assert await store.fill_ids() == {("BTCUSDT", 1), ("BTCUSDT", 2)}
        state = await store.order(intent.client_id)
        assert state is not None and state.filled_qty == D("0.5") and state.venue_order_id == 77
        assert await store.unresolved() == []
        assert await store.events(intent.client_id) == [
            "persisted",
            "NEW",
            "fill",
            "fill",
            "FILLED",
        ]


async def test_denials_and_risk_state_are_journaled(orders_dsn: str) -> None:
    async with asyncpg.create_pool(orders_dsn, min_size=1, max_size=2) as pool:
        store = OrderStore(pool, "r1", "paper", SimulatedClock(99))
        await store.record_denial("BTCUSDT", "max_position", "1.5 > 1", DECISION)
        await store.set_risk(["USDT: journal says 1, venue says 2"])
        row = await pool.fetchrow("SELECT * FROM denials")
        assert (row["prefix"], row["ts_ns"], row["rule"], row["source_seq"]) == (
            "r1",
            99,
            "max_position",
            4242,
        )
        assert (row["model_version"], row["feature_spec"]) == ("model-7", "fs-3")
        risk = await pool.fetchrow("SELECT state, reason FROM risk_state WHERE prefix = 'r1'")
        assert tuple(risk) == ("halted", "USDT: journal says 1, venue says 2")
