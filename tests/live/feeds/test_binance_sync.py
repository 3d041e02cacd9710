"""Binance depth sync rules on the recorded vector and under random gaps, repeats, swaps."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind
from rrr_live.domain.orders import Side
from rrr_live.feeds.binance_sync import DepthSync
from rrr_live.feeds.binance_wire import BinanceParser
from rrr_live.feeds.instruments import binance_instruments
from rrr_live.feeds.keeper import BookKeeper
from tests.live.feeds.reference import (
    BINANCE_DEPTH,
    BINANCE_INFO,
    BINANCE_WS,
    binance_books,
    binance_snapshots,
    received,
    rest_body,
)

INSTRUMENTS = binance_instruments(rest_body(BINANCE_INFO))


def decimal_book(keeper: BookKeeper, symbol: str) -> dict[str, dict[Decimal, Decimal]]:
    book = keeper.books[symbol]
    inst = book.instrument
    return {
        name: {inst.ticks_to_decimal(p): inst.lot_size * s for p, s in book.levels(side)}
        for name, side in (("bids", Side.BUY), ("asks", Side.SELL))
    }


def _timed(path_lines: list[str]) -> list[tuple[float, str]]:
    out = []
    for line in path_lines:
        head, _, body = line.partition(": ")
        out.append((float(head.split()[-1]), body.strip()))
    return out


def test_recorded_snapshot_and_diffs_synchronise_exactly() -> None:
    """Snapshots arrive at their recorded times, interleaved with the stream (buffering)."""
    ws = _timed([x for x in BINANCE_WS.read_text().splitlines() if x[:1].isdigit()])
    rest = _timed([x for x in BINANCE_DEPTH.read_text().splitlines() if ": {" in x])
    snaps = binance_snapshots()
    assert len(rest) == len(snaps) == 4
    assert all(json.loads(body)["lastUpdateId"] > 0 for _, body in rest)
    events = [(t, "ws", body) for t, body in ws]
    events += [(t, "rest", s) for (t, _), s in zip(rest, snaps, strict=True)]
    parser = BinanceParser(INSTRUMENTS)
    sync, keeper = DepthSync(), BookKeeper({s: INSTRUMENTS[s] for s in snaps})
    emitted: list[BookUpdate] = []
    for _, kind, item in sorted(events):
        if kind == "rest":
            step = sync.on_snapshot(parser.snapshot(item, snaps[item]))
        else:
            events_in = parser.parse(item).events
            ev = events_in[0] if events_in else None
            if not isinstance(ev, BookUpdate):
                continue
            step = sync.on_diff(ev)
        assert step.cause == ""
        emitted.extend(step.events)
    for ev in emitted:
        assert keeper.apply(ev, 0) == ""
    reference = binance_books(received(BINANCE_WS), snaps)
    for symbol in snaps:
        assert sync.synced(symbol)
        assert decimal_book(keeper, symbol) == reference[symbol]
    nkn = [e for e in emitted if e.symbol == "NKNUSDT"]
    assert nkn[0].kind is BookUpdateKind.SNAPSHOT and nkn[0].last_seq == 499869752
    assert nkn[1].first_seq <= 499869753 <= nkn[1].last_seq  # the documented straddle


# --- property: random gaps, duplicates, swaps ----------------------------------------------
INST = Instrument.create("X", "1", "1")
LEVEL = st.tuples(st.integers(1, 30), st.integers(0, 4))


def _truths(diffs: list[list[tuple[int, int]]]) -> list[dict[int, int]]:
    book: dict[int, int] = {100: 1}
    out = [dict(book)]
    for diff in diffs:
        for price, size in diff:
            if size:
                book[price] = size
            else:
                book.pop(price, None)
        out.append(dict(book))
    return out


def _perturb(updates: list[BookUpdate], faults: list[tuple[str, int]]) -> list[BookUpdate]:
    delivered = list(updates)
    for kind, pos in faults:
        pos = min(pos, len(delivered) - 2)
        if pos < 0:
            continue
        if kind == "gap":
            del delivered[pos]
        elif kind == "dup":
            delivered.insert(pos, delivered[pos])
        else:
            delivered[pos], delivered[pos + 1] = delivered[pos + 1], delivered[pos]
    if delivered[-1] is not updates[-1]:
        delivered.append(updates[-1])  # the venue's newest update always arrives last
    return delivered


def _snapshot(truth: dict[int, int], last: int) -> BookUpdate:
    return BookUpdate(BookUpdateKind.SNAPSHOT, "X", 0, tuple(sorted(truth.items())), (), last, last)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(LEVEL, min_size=1, max_size=3), min_size=3, max_size=30),
    st.data(),
)
def test_gaps_duplicates_and_swaps_resync_to_the_true_book(
    diffs: list[list[tuple[int, int]]], data: st.DataObject
) -> None:
    n = len(diffs)
    updates = [
        BookUpdate(BookUpdateKind.DIFF, "X", 0, tuple(d), (), i + 1, i + 1)
        for i, d in enumerate(diffs)
    ]
    faults = data.draw(st.lists(st.tuples(st.sampled_from(["gap", "dup", "swap"]),
                                          st.integers(0, n - 2)), max_size=5))  # fmt: skip
    delivered = _perturb(updates, faults)
    truths = _truths(diffs)
    sync, keeper = DepthSync(), BookKeeper({"X": INST})
    sent = 0

    def apply(step_events: list[BookUpdate]) -> None:
        for ev in step_events:
            keeper.apply(ev, 0)

    apply(sync.on_snapshot(_snapshot(truths[0], 0)).events)
    causes = []
    for upd in delivered:
        sent = max(sent, upd.last_seq)  # the server has sent at least this much
        step = sync.on_diff(upd)
        apply(step.events)
        while step.need_snapshot:
            causes.append(step.cause)
            step = sync.on_snapshot(_snapshot(truths[sent], sent))
            apply(step.events)
    assert sync.synced("X")
    assert dict(keeper.books["X"].levels(Side.BUY)) == truths[n]
    if any(k == "gap" for k, _ in faults) and len(delivered) < n:
        assert "gap" in causes


def test_a_snapshot_older_than_the_buffer_is_refetched() -> None:
    sync = DepthSync()
    diff = BookUpdate(BookUpdateKind.DIFF, "X", 0, ((5, 1),), (), 10, 12)
    assert sync.on_diff(diff).need_snapshot
    old = sync.on_snapshot(_snapshot({1: 1}, 5))
    assert old.need_snapshot and old.cause == "snapshot_too_old" and old.events == []
    good = sync.on_snapshot(_snapshot({1: 1}, 10))
    assert [e.kind for e in good.events] == [BookUpdateKind.SNAPSHOT, BookUpdateKind.DIFF]
    assert sync.synced("X")
