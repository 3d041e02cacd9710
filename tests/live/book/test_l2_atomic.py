"""Atomic book updates: a bad message changes no level and leaves the book untradable."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_live.book.l2 import BookState, OrderBook
from rrr_live.domain.errors import BookError
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.orders import Side

INST = Instrument.create("X", "0.01", "1")
BIDS = [(9900, 10), (9800, 20)]
ASKS = [(10000, 5), (10100, 10)]


def levels(book: OrderBook) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return list(book.levels(Side.BUY)), list(book.levels(Side.SELL))


def fresh() -> OrderBook:
    book = OrderBook(INST)
    book.apply_snapshot(BIDS, ASKS, ts_ns=1, sequence=1)
    return book


BAD_CHANGES = [
    (Side.BUY, 0, 1),
    (Side.SELL, -5, 1),
    (Side.BUY, 9000, -1),
    (Side.BUY, 9000.5, 1),
    (Side.BUY, 9000, 1.0),
    (Side.BUY, True, 1),
    ("up", 9000, 1),
    (Side.BUY, 9000),
    "garbage",
]


@pytest.mark.parametrize("bad", BAD_CHANGES, ids=repr)
def test_a_bad_change_anywhere_leaves_levels_untouched_and_book_untradable(bad: object) -> None:
    book = fresh()
    before, version = levels(book), book.version
    good = [(Side.BUY, 9950, 7), (Side.SELL, 10000, 0)]
    with pytest.raises(BookError):
        book.apply_diff([*good, bad], ts_ns=2, sequence=2)  # type: ignore[list-item]
    assert levels(book) == before and book.version == version and book.last_sequence == 1
    assert book.state is BookState.UNTRADABLE
    assert book.untradable_reason().startswith("rejected update")
    book.apply_snapshot(BIDS, ASKS, ts_ns=3, sequence=3)  # a fresh snapshot heals it
    assert book.state is BookState.TRADABLE


@pytest.mark.parametrize("bad", [(0, 1), (100, -1), (100.0, 1), (100,), None], ids=repr)
def test_a_bad_snapshot_level_keeps_the_old_levels_and_flags_the_book(bad: object) -> None:
    book = fresh()
    before = levels(book)
    with pytest.raises(BookError, match="snapshot rejected"):
        book.apply_snapshot([(9990, 1), bad], [(10010, 1)], ts_ns=2, sequence=9)  # type: ignore[list-item]
    assert levels(book) == before and book.last_sequence == 1
    assert book.state is BookState.UNTRADABLE


def test_iterables_of_changes_are_consumed_once_and_validated_whole() -> None:
    book = fresh()
    gen = ((Side.BUY, p, 1) for p in (9901, 9902, -1))
    with pytest.raises(BookError):
        book.apply_diff(gen, ts_ns=2)
    assert levels(book) == (BIDS, ASKS)


Change = tuple[Side, int, int]
change = st.tuples(
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(min_value=-3, max_value=40),
    st.integers(min_value=-2, max_value=5),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(change, min_size=1, max_size=6), min_size=1, max_size=12))
def test_book_equals_a_dict_replay_of_the_accepted_diffs(diffs: list[list[Change]]) -> None:
    book = OrderBook(INST)
    book.apply_snapshot([(10, 1)], [(30, 1)], ts_ns=0)
    ref = {Side.BUY: {10: 1}, Side.SELL: {30: 1}}
    for diff in diffs:
        valid = all(p > 0 and s >= 0 for _, p, s in diff)
        try:
            book.apply_diff(diff, ts_ns=1)
        except BookError:
            assert not valid
            assert book.state is BookState.UNTRADABLE
            continue
        assert valid
        for side, p, s in diff:
            if s == 0:
                ref[side].pop(p, None)
            else:
                ref[side][p] = s
    assert dict(book.levels(Side.BUY)) == ref[Side.BUY]
    assert dict(book.levels(Side.SELL)) == ref[Side.SELL]
    assert [p for p, _ in book.levels(Side.BUY)] == sorted(ref[Side.BUY], reverse=True)
    assert [p for p, _ in book.levels(Side.SELL)] == sorted(ref[Side.SELL])
