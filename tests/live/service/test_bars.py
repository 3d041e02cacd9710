"""Event-time bars: close on the first message past the end, watermark, gap policy."""

from __future__ import annotations

import pytest

from rrr_live.service.bars import BarBuilder

S = 1_000_000_000


def test_bar_closes_on_first_trade_past_its_end():
    b = BarBuilder(60 * S)
    assert b.on_trade("BTC", 1, 100.0, 1.0) is None
    assert b.on_trade("BTC", 30 * S, 105.0, 2.0) is None
    assert b.on_trade("ETH", 61 * S, 10.0, 1.0) is None  # another symbol closes nothing here
    assert b.on_trade("BTC", 59 * S, 99.0, 0.5) is None
    # a trade stamped exactly at the end is the bar's last (the backtest's ts <= t)
    assert b.on_trade("BTC", 60 * S, 98.0, 1.0) is None
    bar = b.on_trade("BTC", 60 * S + 1, 101.0, 1.0)
    assert bar is not None and not bar.gapped
    assert (bar.start_ns, bar.end_ns, bar.ts_ns) == (0, 60 * S, 60 * S)
    assert (bar.open, bar.high, bar.low, bar.close) == (100.0, 105.0, 98.0, 98.0)
    assert (bar.volume, bar.trades) == (4.5, 4)


def test_watermark_closes_quiet_symbols_and_empty_intervals_make_no_bar():
    b = BarBuilder(60 * S)
    b.on_trade("ETH", 5 * S, 10.0, 1.0)
    b.on_trade("BTC", 6 * S, 100.0, 1.0)
    assert b.watermark(59 * S) == []
    closed = b.watermark(60 * S)
    assert [c.symbol for c in closed] == ["BTC", "ETH"]
    assert b.watermark(600 * S) == []  # nothing traded since: no bar
    bar_after_silence = b.on_trade("BTC", 300 * S, 90.0, 1.0)
    assert bar_after_silence is None  # the previous bar was already closed by the watermark


def test_late_trade_is_dropped_and_counted():
    b = BarBuilder(60 * S)
    b.on_trade("BTC", 70 * S, 100.0, 1.0)
    assert b.on_trade("BTC", 10 * S, 1.0, 1.0) is None
    assert b.late_trades == 1
    (bar,) = b.watermark(120 * S)
    assert bar.low == 100.0
    assert b.on_trade("BTC", 119 * S, 1.0, 1.0) is None  # its bar was closed by the watermark
    assert b.late_trades == 2 and b.watermark(10_000 * S) == []


def test_bar_spanning_a_feed_gap_is_marked_and_others_are_not():
    b = BarBuilder(60 * S)
    b.on_trade("BTC", 1 * S, 100.0, 1.0)
    b.on_trade("ETH", 1 * S, 10.0, 1.0)
    b.feed_gap(["BTC"], 20 * S, 25 * S)
    # a gap reaching into the next interval taints the bar opened after it, too
    b.feed_gap(None, 50 * S, 65 * S)
    btc = b.on_trade("BTC", 70 * S, 100.0, 1.0)
    eth = b.on_trade("ETH", 130 * S, 10.0, 1.0)
    assert btc is not None and btc.gapped
    assert eth is not None and eth.gapped  # the all-symbols gap overlaps [0, 60)
    nxt = b.on_trade("BTC", 125 * S, 100.0, 1.0)
    assert nxt is not None and nxt.gapped and nxt.start_ns == 60 * S
    (clean,) = b.watermark(180 * S)[:1]
    assert clean.symbol == "BTC" and clean.start_ns == 120 * S and not clean.gapped


def test_non_positive_interval_is_refused():
    with pytest.raises(ValueError, match="positive"):
        BarBuilder(0)
