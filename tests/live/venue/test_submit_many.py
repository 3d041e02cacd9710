"""BinanceBroker.submit_many: one decision's orders, two transactions, sent concurrently."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from urllib.parse import parse_qsl

import asyncpg
import httpx
import pytest

from rrr_live.venue.rest import VenueRejected
from tests.live.venue.kit import broker_on, intent, paper_venue

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]


async def test_all_rows_commit_before_any_send_and_answers_keep_intent_order(
    orders_dsn: str,
) -> None:
    async with paper_venue() as venue, broker_on(venue, orders_dsn) as rig:
        bid, ask = rig.best()
        orders = [
            intent(21, "BUY", "1", None),  # market: fills
            intent(22, "BUY", "1", bid - Decimal("0.05")),  # limit below the bid: rests
            intent(23, "BUY", "10000000", ask),  # more than the account holds: refused
        ]
        ids = [o.client_id for o in orders]
        seen: list[list[str]] = []
        inner = rig.transport.inner
        watcher = await asyncpg.connect(orders_dsn)  # another session: committed rows only
        one_at_a_time = asyncio.Lock()  # the sends are concurrent; the watcher is one session

        class Watch(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if request.method == "POST":
                    assert dict(parse_qsl(request.url.query.decode()))["newOrderRespType"] == "FULL"
                    async with one_at_a_time:
                        rows = await watcher.fetch(
                            "SELECT client_id FROM orders WHERE client_id = ANY($1)", ids
                        )
                    seen.append(sorted(r["client_id"] for r in rows))
                return await inner.handle_async_request(request)

        rig.broker.rest.client._transport = Watch()
        answers = await rig.broker.submit_many(orders, 3, time.monotonic_ns)
        await watcher.close()

        assert seen and all(s == sorted(ids) for s in seen)  # every row before the first send
        assert [a.outcome.client_id for a in answers[:2]] == ids[:2]  # type: ignore[union-attr]
        assert answers[0].outcome.state == "FILLED"  # type: ignore[union-attr]
        assert answers[1].outcome.state == "NEW"  # type: ignore[union-attr]
        assert isinstance(answers[2].outcome, VenueRejected) and answers[2].outcome.code == -2010
        assert all(a.sent_ns <= a.answered_ns for a in answers)
        events = [await rig.broker.store.events(c) for c in ids]
        assert events == [["persisted", "FILLED"], ["persisted", "NEW"], ["persisted", "REJECTED"]]
        assert rig.broker.sends == 3

        # the same decision again (a restart replaying it): stored orders are resolved, not sent
        again = await rig.broker.submit_many(orders[:2], 3, time.monotonic_ns)
        assert [a.outcome.state for a in again] == ["FILLED", "NEW"]  # type: ignore[union-attr]
        assert rig.broker.sends == 3
