"""BinanceBroker against the real paper venue (websockets + REST on 127.0.0.1) and PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from rrr_live.venue.reconcile import Disagreement, ReconcileReport, reconcile, run_user_stream
from rrr_live.venue.rest import AmbiguousOutcome
from tests.live.venue.kit import BASELINE, broker_on, intent, paper_venue

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]


async def _venue_orders(rig: Any, client_id: str) -> int:
    """How many orders the venue holds under ``client_id``."""
    acc = rig.venue.paper.account
    return sum(1 for o in acc.orders.values() if o.client_id == client_id)


async def test_signed_order_fills_and_reconciles(orders_dsn: str) -> None:
    async with paper_venue() as venue, broker_on(venue, orders_dsn) as rig:
        _, ask = rig.best()
        order = intent(1, "BUY", "1", ask)
        state = await rig.broker.submit(order)
        assert state.state == "FILLED" and state.filled_qty == 1
        assert await rig.broker.store.events(order.client_id) == ["persisted", "FILLED"]
        report = await reconcile(rig.broker, BASELINE)
        assert report.missed_fills == 1  # no stream was running: the trade comes from myTrades
        held = await rig.broker.store.positions()
        assert held == {"SYN0000": 1, "USDT": -ask}  # default paper fees are zero
        row = await rig.pool.fetchrow("SELECT * FROM orders WHERE client_id = $1", order.client_id)
        assert (row["model_version"], row["feature_spec"], row["source_seq"]) == ("m-1", "fs-1", 1)
        assert (await reconcile(rig.broker, BASELINE)).missed_fills == 0


async def test_lost_answer_is_resolved_by_query_never_resent(orders_dsn: str) -> None:
    async with paper_venue() as venue, broker_on(venue, orders_dsn) as rig:
        bid, _ = rig.best()
        order = intent(2, "BUY", "1", bid - Decimal("0.05"))
        rig.transport.lose_answers = 1  # the venue takes the order, the answer never arrives
        state = await rig.broker.submit(order)
        assert state.state == "NEW" and state.venue_order_id is not None
        assert rig.transport.posts == 1 and rig.broker.sends == 1
        assert await _venue_orders(rig, order.client_id) == 1
        assert await rig.broker.store.events(order.client_id) == ["persisted", "in_flight", "NEW"]
        # The same decision submitted again (a restart replaying it) finds the stored order.
        assert (await rig.broker.submit(order)).state == "NEW"
        assert rig.transport.posts == 1 and await _venue_orders(rig, order.client_id) == 1
        assert (await rig.broker.cancel(order.client_id)).state == "CANCELED"
        await reconcile(rig.broker, BASELINE)


async def test_lost_request_is_resent_under_the_same_id_after_the_query(orders_dsn: str) -> None:
    async with paper_venue() as venue, broker_on(venue, orders_dsn) as rig:
        bid, _ = rig.best()
        order = intent(3, "BUY", "1", bid - Decimal("0.05"))
        rig.transport.lose_requests = 1  # never reached the venue: the query says -2013
        state = await rig.broker.submit(order)
        assert state.state == "NEW" and rig.transport.posts == 2
        assert await _venue_orders(rig, order.client_id) == 1
        events = await rig.broker.store.events(order.client_id)
        assert events == ["persisted", "in_flight", "NEW"]


async def test_disagreement_is_named_and_halts(orders_dsn: str) -> None:
    async with paper_venue() as venue, broker_on(venue, orders_dsn) as rig:
        bid, _ = rig.best()
        await rig.broker.submit(intent(4, "BUY", "1", bid - Decimal("0.05")))
        async with broker_on(venue, orders_dsn, prefix="r2") as other:  # another runner's order
            await other.broker.submit(intent(5, "BUY", "1", bid - Decimal("0.05"), prefix="r2"))
        # r2's order locks cash but is not r1's: only balances that r1 cannot explain differ.
        with pytest.raises(Disagreement) as err:
            await reconcile(rig.broker, {**BASELINE, "USDT": Decimal(99_000)})
        assert err.value.problems == ["USDT: journal says 99000, venue says 100000"]
        risk = await rig.pool.fetchrow("SELECT state, reason FROM risk_state WHERE prefix = 'r1'")
        assert risk["state"] == "halted" and "USDT" in risk["reason"]
        assert (await reconcile(rig.broker, BASELINE)).problems == []
        risk = await rig.pool.fetchrow("SELECT state FROM risk_state WHERE prefix = 'r1'")
        assert risk["state"] == "active"


async def test_dropped_stream_mid_fill_is_found_by_reconciliation_once(orders_dsn: str) -> None:
    async with paper_venue() as venue, broker_on(venue, orders_dsn) as rig:
        broker = rig.broker
        conns: list[ClientConnection] = []
        readies: list[ReconcileReport] = []
        ready = asyncio.Queue[ReconcileReport]()
        applied = broker.on_event

        async def drop_on_fill(event: dict[str, Any]) -> None:
            if event.get("x") == "TRADE" and len(conns) == 1:
                conns[-1].transport.abort()  # the connection dies with the fill on it
                return
            await applied(event)

        broker.on_event = drop_on_fill  # type: ignore[method-assign]

        async def on_ready(report: ReconcileReport) -> None:
            readies.append(report)
            await ready.put(report)

        stream = run_user_stream(
            broker, rig.ws_api, BASELINE, on_ready, max_reconnects=1, on_connect=conns.append
        )
        task = asyncio.create_task(stream)
        assert (await ready.get()).missed_fills == 0
        _, ask = rig.best()
        order = intent(6, "BUY", "1", ask)
        assert (await broker.submit(order)).state == "FILLED"
        after = await asyncio.wait_for(ready.get(), 10)  # reconnected and reconciled
        assert after.missed_fills == 1 and len(conns) == 2
        fills = await rig.pool.fetch(
            "SELECT source FROM fills WHERE client_id = $1", order.client_id
        )
        assert [f["source"] for f in fills] == ["reconcile"]
        assert (await reconcile(broker, BASELINE)).missed_fills == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        held = await broker.store.positions()
        assert held["SYN0000"] == 1
        assert [r.missed_fills for r in readies] == [0, 1]


async def test_the_order_row_is_committed_before_the_request_leaves(orders_dsn: str) -> None:
    async with paper_venue() as venue, broker_on(venue, orders_dsn) as rig:
        seen: list[str | None] = []
        inner = rig.transport.inner
        watcher = await asyncpg.connect(orders_dsn)  # another session: sees committed rows only

        class Watch(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if request.method == "POST":
                    cid = dict(parse_qsl(request.url.query.decode()))["newClientOrderId"]
                    seen.append(await watcher.fetchval(
                        "SELECT state FROM orders WHERE client_id = $1", cid))  # fmt: skip
                return await inner.handle_async_request(request)

        rig.broker.rest.client._transport = Watch()  # the broker's own client, one hop earlier
        _, ask = rig.best()
        await rig.broker.submit(intent(7, "BUY", "1", ask))
        await watcher.close()
        assert seen == ["pending_send"]


async def test_a_venue_that_stops_answering_leaves_the_order_in_flight(orders_dsn: str) -> None:
    async with paper_venue() as venue, broker_on(venue, orders_dsn) as rig:
        down = httpx.ConnectError("venue unreachable")
        rig.transport.lose_answers = 1
        bid, _ = rig.best()
        order = intent(8, "BUY", "1", bid - Decimal("0.05"))
        real = rig.transport.inner.handle_async_request

        async def unreachable_after_post(request: httpx.Request) -> httpx.Response:
            if request.method == "GET":
                raise down
            return await real(request)

        rig.transport.inner.handle_async_request = unreachable_after_post  # type: ignore[method-assign]
        slept: list[float] = []

        async def sleeper(s: float) -> None:
            slept.append(s)

        rig.broker.rest.sleeper = sleeper
        with pytest.raises(AmbiguousOutcome):
            await rig.broker.submit(order)
        assert rig.broker.sends == 1 and len(slept) == rig.broker.query_attempts - 1
        assert (await rig.broker.store.order(order.client_id)).state == "in_flight"  # type: ignore[union-attr]
        rig.transport.inner.handle_async_request = real  # type: ignore[method-assign]
        report = await reconcile(rig.broker, BASELINE)  # the venue is back: settled by query
        assert report.settled == 1 and rig.broker.sends == 1
        assert (await rig.broker.store.order(order.client_id)).state == "NEW"  # type: ignore[union-attr]
        assert await _venue_orders(rig, order.client_id) == 1
