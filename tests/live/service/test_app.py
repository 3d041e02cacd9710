"""The supervisor: named tasks, SIGTERM → phased shutdown with open orders canceled, exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal

import pytest

from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import Received
from rrr_live.domain.orders import Side
from rrr_live.service.app import LiveService
from rrr_live.service.bars import BarBuilder
from rrr_live.service.intake import Intake
from tests.live.paper.kit import SYMBOL
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

        inst = Instrument.create(SYMBOL, "0.01", "0.001")

        async def feed():
            for n, (sym, ts, px, qty) in enumerate(trades(t.mid, 1000)):
                await asyncio.sleep(0)  # a live feed yields to the loop between frames
                produced[0] += 1
                tick = TradeTick(ts, sym, inst.price_to_ticks(px), inst.size_to_lots(qty), Side.BUY)
                yield Received("s", n + 1, ts, "binance", tick)

        batches = []

        def on_batch(report):
            batches.append(report)
            if len(batches) == 20:
                os.kill(os.getpid(), signal.SIGTERM)

        intake = Intake(BarBuilder(S), [SYMBOL], {SYMBOL: inst}, watermark_ns=S)
        svc = LiveService(feed(), intake, t.trader, t.rig.broker, lifecycle=t.life,
                          poll_interval_s=3600, on_batch=on_batch)  # fmt: skip
        names = []
        real_create = asyncio.TaskGroup.create_task

        def spy(self, coro, *, name=None, context=None):
            names.append(name)
            return real_create(self, coro, name=name, context=context)

        monkeypatch.setattr(asyncio.TaskGroup, "create_task", spy)
        assert await svc.run() == 0
        assert names[:3] == ["intake", "trader", "registry-poll"]
        assert all(n.startswith("order-") for n in names[3:])  # a batch's orders, named too
        assert svc.report.frames == produced[0] < 3000  # stopped early, nothing unread lost
        assert svc.report.exit == "sigterm"
        assert svc.report.batches == len(batches) >= 20
        assert [o.client_id for o in svc.report.canceled] == [resting.client_id]
        assert svc.report.canceled[0].state == "CANCELED"
        assert (await t.rig.broker.store.events(resting.client_id))[-1] == "CANCELED"
        assert await t.rig.broker.open_orders() == []


async def test_max_seconds_stops_a_quiet_feed_and_exits_0():
    forever = asyncio.Event()

    async def quiet():
        await forever.wait()  # a feed that never sends anything
        yield  # pragma: no cover

    intake = Intake(BarBuilder(S), [SYMBOL], {}, watermark_ns=S)
    svc = LiveService(quiet(), intake, trader=None, broker=None, open_orders_policy="leave",
                      max_seconds=0.05)  # type: ignore[arg-type]  # fmt: skip
    assert await asyncio.wait_for(svc.run(), 10) == 0
    assert svc.report.exit == "max-seconds" and svc.report.frames == 0


class _RecordingTrader:
    """Unit-test stand-in for the trader (the real one runs in the test above)."""

    def __init__(self):
        self.last_end_ns = -1
        self.batches = []

    async def on_bars(self, bars, closing_send_ns=0):
        self.batches.append(sorted(b.symbol for b in bars))
        self.last_end_ns = bars[0].end_ns


async def test_feed_end_decides_the_bars_already_closed():
    inst = {s: Instrument.create(s, "0.01", "0.001") for s in ("AAA", "BBB")}

    def feed(trades):
        async def gen():
            for n, (sym, ts) in enumerate(trades):
                tick = TradeTick(ts, sym, 10_000, 1_000, Side.BUY)
                yield Received("s", n + 1, ts, "binance", tick)

        return gen()

    # AAA's bar (0, 1 s] closed, BBB's not yet traded past it: the feed ends -> decided
    trades = [("AAA", S // 2), ("BBB", S // 2), ("AAA", S + 1)]
    intake = Intake(BarBuilder(S), ["AAA", "BBB"], inst, watermark_ns=60 * S)
    trader = _RecordingTrader()
    svc = LiveService(feed(trades), intake, trader, broker=None,
                      open_orders_policy="leave")  # type: ignore[arg-type]  # fmt: skip
    assert await svc.run() == 0
    assert svc.report.exit == "feed-ended" and trader.batches == [["AAA"]]
