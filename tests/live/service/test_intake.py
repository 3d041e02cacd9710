"""Intake: one decision batch per bar close (universe complete, watermark, lockstep), stamps."""

from __future__ import annotations

from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import Received
from rrr_live.domain.orders import Side
from rrr_live.service.bars import BarBuilder
from rrr_live.service.intake import (
    BarClosedSignal,
    Intake,
    control_signal,
    send_ns_of,
)

S = 1_000_000_000
UNIVERSE = ("AAA", "BBB", "CCC")
INST = {s: Instrument.create(s, "0.01", "0.001") for s in UNIVERSE}


def _intake(watermark_s: float = 5.0) -> Intake:
    return Intake(BarBuilder(60 * S), UNIVERSE, INST, int(watermark_s * S))


def _trade(sym: str, ts: int, price: float = 100.0) -> Received:
    inst = INST[sym]
    tick = TradeTick(ts, sym, inst.price_to_ticks(price), inst.size_to_lots(1.0), Side.BUY)
    return Received("s", 1, ts, "binance", tick)


def test_bars_of_one_close_are_one_batch_released_when_the_universe_is_complete():
    it = _intake()
    for sym in UNIVERSE:
        assert it.on_received(_trade(sym, 10 * S)) == []
    assert it.on_received(_trade("AAA", 61 * S), send_ns=111) == []
    assert it.on_received(_trade("BBB", 62 * S), send_ns=222) == []
    (batch,) = it.on_received(_trade("CCC", 62 * S + 1), send_ns=333)
    assert batch.end_ns == 60 * S and not batch.ack
    assert sorted(b.symbol for b in batch.bars) == list(UNIVERSE)
    assert batch.closing_send_ns == 333  # the frame whose arrival released it
    assert it.frames == it.trades == 6


def test_quiet_symbols_are_closed_by_the_watermark_in_event_time():
    it = _intake(watermark_s=5)
    for sym in ("AAA", "BBB"):
        it.on_received(_trade(sym, 30 * S))
    it.on_received(_trade("CCC", 30 * S))
    assert it.on_received(_trade("AAA", 64 * S)) == []  # AAA closed; 4 s past the end
    assert it.on_received(_trade("AAA", 65 * S)) == []  # exactly the watermark: not yet
    (batch,) = it.on_received(_trade("AAA", 65 * S + 1), send_ns=7)
    assert batch.end_ns == 60 * S and len(batch.bars) == 3 and batch.closing_send_ns == 7
    # a trade of a symbol whose bar the watermark closed is late: dropped, not a new batch
    assert it.on_received(_trade("BBB", 59 * S)) == []
    assert it.bars.late_trades == 1


def test_lockstep_bar_closed_releases_the_batch_and_asks_for_an_answer():
    it = _intake()
    it.on_received(_trade("AAA", 20 * S))
    it.on_received(_trade("BBB", 60 * S))  # a trade at the close time is the bar's last
    sig = Received("s", 3, 0, "binance", BarClosedSignal(60 * S, ("AAA", "BBB")))  # type: ignore[arg-type]
    (batch,) = it.on_received(sig, send_ns=99)
    assert batch.ack and batch.end_ns == 60 * S and batch.closing_send_ns == 99
    assert sorted(b.symbol for b in batch.bars) == ["AAA", "BBB"]
    assert [b.close for b in batch.bars if b.symbol == "BBB"] == [100.0]
    # a bar_closed with nothing pending still gets its answer (an empty batch)
    (empty,) = it.on_received(Received("s", 4, 0, "binance", BarClosedSignal(120 * S, ())), 5)  # type: ignore[arg-type]
    assert empty.ack and empty.bars == [] and empty.end_ns == 120 * S


def test_batches_come_out_in_close_order_and_drain_keeps_closed_bars():
    it = _intake(watermark_s=600)
    it.on_received(_trade("AAA", 10 * S))
    it.on_received(_trade("BBB", 10 * S))
    it.on_received(_trade("AAA", 70 * S))  # AAA's first bar closed; BBB is quiet
    it.on_received(_trade("CCC", 70 * S))
    it.on_received(_trade("BBB", 70 * S))  # CCC had no bar ending at 60 s: the batch waits
    out = it.on_received(_trade("CCC", 130 * S))
    out += it.on_received(_trade("AAA", 130 * S))
    # ... every universe symbol closed a bar at 120 s: 60 s and 120 s released, in order
    out += it.on_received(_trade("BBB", 121 * S))
    assert [b.end_ns for b in out] == [60 * S, 120 * S]
    assert [len(b.bars) for b in out] == [2, 3]
    it.on_received(_trade("AAA", 200 * S))
    (last,) = it.drain()
    assert last.end_ns == 180 * S and [b.symbol for b in last.bars] == ["AAA"]


def test_send_stamps_and_control_frames_are_read_from_the_wire():
    assert send_ns_of('{"stream":"a@trade","data":{"p":"1"},"rrr_send_ns":123456}') == 123456
    assert send_ns_of('{"stream":"a@trade","data":{"p":"1"}}') == 0
    b = '{"stream":"rrr@bar_closed","data":{"e":"bar_closed","bar_close_ns":5,"symbols":["A"]}}'
    assert control_signal(b) == BarClosedSignal(5, ("A",))
    c = '{"type":"bar_closed","bar_close_ns":7,"symbols":[],"rrr_send_ns":1}'
    assert control_signal(c) == BarClosedSignal(7, ())
    assert control_signal('{"stream":"a@trade","data":{}}') is None


def test_a_reconnect_marks_the_bars_spanning_it_as_gapped():
    it = _intake()
    for sym in UNIVERSE:
        it.on_received(_trade(sym, 10 * S))
    it.on_received(_trade("AAA", 50 * S))
    after = _trade("AAA", 70 * S)
    reconnected = Received("s2", 1, after.recv_ns, "binance", after.event)
    # a new session: frames between 50 s and 70 s may be lost; the watermark (5 s) then closes
    (batch,) = it.on_received(reconnected)
    assert it.gaps == 1
    assert all(b.gapped for b in batch.bars)  # every symbol's bar (0, 60] spans the gap
