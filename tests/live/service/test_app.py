"""The supervisor: named tasks, SIGTERM → phased shutdown with open orders canceled, exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal

import pytest

from rrr_live.service.app import LiveService
from rrr_live.service.bars import BarBuilder
from tests.live.service.test_trader import S, trader_rig, trades
from tests.live.venue.kit import intent

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]


async def test_sigterm_phased_shutdown_cancels_open_orders_and_exits_0(
    mlflow_tracking_uri, orders_dsn, tmp_path, monkeypatch
):
    async with trader_rig(mlflow_tracking_uri, orders_dsn, tmp_path, monkeypatch) as t:
        bid, _ = t.rig.best()
        resting = intent(999, "BUY", "1", (bid * Decimal("0.5")).quantize(Decimal("0.01")))
        assert (await t.rig.broker.submit(resting)).state == "NEW"
        produced = [0]

        async def feed():
            for trade in trades(t.mid, 1000):
                await asyncio.sleep(0)  # a live feed yields to the loop between frames
                produced[0] += 1
                yield trade

        batches = []

        def on_batch(report):
            batches.append(report)
            if len(batches) == 20:
                os.kill(os.getpid(), signal.SIGTERM)

        svc = LiveService(feed(), BarBuilder(S), t.trader, t.rig.broker, lifecycle=t.life,
                          poll_interval_s=3600, on_batch=on_batch)  # fmt: skip
        names = []
        real_create = asyncio.TaskGroup.create_task

        def spy(self, coro, *, name=None, context=None):
            names.append(name)
            return real_create(self, coro, name=name, context=context)

        monkeypatch.setattr(asyncio.TaskGroup, "create_task", spy)
        assert await svc.run() == 0
        assert names == ["intake", "trader", "registry-poll"]
        assert svc.report.trades_read == produced[0] < 3000  # stopped early, nothing unread lost
        assert svc.report.batches == len(batches) >= 20
        assert [o.client_id for o in svc.report.canceled] == [resting.client_id]
        assert svc.report.canceled[0].state == "CANCELED"
        assert (await t.rig.broker.store.events(resting.client_id))[-1] == "CANCELED"
        assert await t.rig.broker.open_orders() == []
