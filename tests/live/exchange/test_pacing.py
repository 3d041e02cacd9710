"""Free clocks: N x event time through an injected clock and sleeper."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect

from rrr_live.exchange import ExchangeServer, load_recording
from rrr_live.exchange.pacing import Pacer
from tests.live.exchange.kit import BINANCE_WS, received_lines, recv_n


class FakeTime:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 5_000_000_000
        self.sleeps: list[float] = []

    def clock(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += round(seconds * 1e9)


@pytest.mark.asyncio
async def test_pacer_spaces_events_by_event_time_over_speed() -> None:
    fake = FakeTime()
    pacer = Pacer(4.0, fake.clock, fake.sleep)
    for ts in (10_000_000_000, 11_000_000_000, 11_000_100_000, 13_000_000_000):
        await pacer.wait(ts)
    # 1 s of event time -> 0.25 s; 0.1 ms -> under the minimum sleep, paid by the next one
    assert fake.sleeps == pytest.approx([0.25, 0.5])
    pacer.reset()
    await pacer.wait(20_000_000_000)  # after a reset the next event is due at once
    assert len(fake.sleeps) == 2


def test_pacer_rejects_a_non_positive_speed() -> None:
    with pytest.raises(ValueError, match="speed"):
        Pacer(0.0)


@pytest.mark.asyncio
@pytest.mark.parametrize("speed", [1.0, 10.0])
async def test_server_paces_the_recording_at_n_times_event_time(speed: float) -> None:
    diffs = [m for m in received_lines(BINANCE_WS) if m["stream"] == "nknusdt@depth@100ms"]
    fake = FakeTime()
    tape = load_recording(BINANCE_WS)
    first_ts = next(e.ts_ns for e in tape.events if e.channel)  # type: ignore[attr-defined]
    last_ts = max(e.ts_ns for e in tape.events)  # type: ignore[attr-defined]
    async with (
        ExchangeServer(tape, speed=speed, clock=fake.clock, sleeper=fake.sleep) as ex,
        connect(ex.ws_url + "/stream?streams=nknusdt@depth@100ms") as ws,
    ):
        await recv_n(ws, len(diffs))
        await ex.finished()
    span = (last_ts - first_ts) / 1e9
    assert sum(fake.sleeps) == pytest.approx(span / speed, abs=0.001)
    assert fake.sleeps
