"""Backoff, exact unit conversion, the book keeper and Coinbase bookkeeping, without a socket."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_live.book.l2 import BookState
from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind
from rrr_live.domain.orders import Side
from rrr_live.feeds.coinbase import CoinbaseCredentials, CoinbaseFeed, TradeIds
from rrr_live.feeds.connection import Backoff
from rrr_live.feeds.errors import Rejected
from rrr_live.feeds.keeper import BookKeeper
from rrr_live.feeds.timeparse import iso_to_ns
from rrr_live.feeds.units import Scale


def test_backoff_grows_is_capped_jittered_and_resets() -> None:
    b = Backoff(initial_s=0.1, max_s=1.0, factor=2.0, jitter=0.25, rng=random.Random(1))
    delays = [b.next() for _ in range(12)]
    bases = [min(1.0, 0.1 * 2**i) for i in range(12)]
    assert all(0.75 * base <= d <= base for d, base in zip(delays, bases, strict=True))
    assert max(delays) <= 1.0 and len(set(delays)) == 12  # jittered: no two alike
    b.reset()
    assert b.next() <= 0.1
    with pytest.raises(ValueError):
        Backoff(initial_s=2.0, max_s=1.0)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["0.00000001", "0.0001", "0.01", "0.25", "0.5", "1", "10", "0.1"]),
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=6),
)
def test_scale_is_exact_and_agrees_with_decimal(step: str, units: int, pad: int) -> None:
    scale = Scale(Decimal(step))
    text = f"{Decimal(step) * units:f}"
    if "." in text or pad:
        text = (text if "." in text else text + ".") + "0" * pad
    assert scale.units(text) == units == int(Decimal(text) / Decimal(step))


@pytest.mark.parametrize(
    ("step", "text", "reason"),
    [("0.01", "1.005", "off_grid"), ("0.25", "0.3", "off_grid"), ("1", "-3", "negative"),
     ("0.01", "1e-2", "bad_number"), ("0.01", " 1", "bad_number"), ("0.01", "١٢", "bad_number"),
     ("0.01", "", "bad_number"), ("0.01", "1.2.3", "bad_number")],
)  # fmt: skip
def test_scale_rejects_instead_of_rounding(step: str, text: str, reason: str) -> None:
    with pytest.raises(Rejected) as e:
        Scale(Decimal(step)).units(text)
    assert e.value.reason == reason


def test_iso_times_keep_nanoseconds_and_need_a_zone() -> None:
    assert iso_to_ns("1970-01-01T00:00:01.000000001Z") == 1_000_000_001
    assert iso_to_ns("2021-04-17T16:43:37.075687Z") == 1_618_677_817_075_687_000
    for bad in ("2021-04-17T16:43:37", "2021-04-17T16:43:37.x5Z", "soon"):
        with pytest.raises(Rejected):
            iso_to_ns(bad)


INST = {"X": Instrument.create("X", "0.01", "1")}


def snap(bids: tuple[tuple[int, int], ...], asks: tuple[tuple[int, int], ...]) -> BookUpdate:
    return BookUpdate(BookUpdateKind.SNAPSHOT, "X", 0, bids, asks)


def test_keeper_flags_crossed_rejected_and_stale_books() -> None:
    keeper = BookKeeper(INST, max_age_ns=1_000)
    assert keeper.apply(snap(((100, 1),), ((101, 2),)), recv_ns=10) == ""
    assert keeper.books["X"].state is BookState.TRADABLE
    crossed = BookUpdate(BookUpdateKind.DIFF, "X", 0, ((102, 1),), ())
    assert keeper.apply(crossed, recv_ns=20) == "crossed"
    assert keeper.books["X"].untradable_reason() == "crossed book"
    keeper.apply(snap(((100, 1),), ((101, 2),)), recv_ns=30)
    bad = BookUpdate(BookUpdateKind.DIFF, "X", 0, ((99, 1), (0, 1)), ())
    assert keeper.apply(bad, recv_ns=40) == "rejected_update"
    assert keeper.books["X"].size_at(Side.BUY, 99) == 0  # nothing half-applied
    keeper.apply(snap(((100, 1),), ((101, 2),)), recv_ns=50)
    assert keeper.check_stale(1_050) == []
    assert keeper.check_stale(1_051) == ["X"]
    assert keeper.books["X"].untradable_reason() == "stale"
    assert keeper.apply(TradeTick(0, "X", 100, 1, Side.BUY, 1), 60) == ""
    assert (
        keeper.apply(snap(((1, 1),), ()).__class__(BookUpdateKind.SNAPSHOT, "Y", 0, (), ()), 0)
        == ""
    )


def test_keeper_top_json_is_exact_decimal_strings() -> None:
    keeper = BookKeeper({"X": Instrument.create("X", "0.0001", "0.1")})
    keeper.apply(snap(((3513, 66720), (3500, 1)), ((3526, 5),)), recv_ns=0)
    assert keeper.top_json(1) == {"X": {"bids": [["0.3513", "6672"]], "asks": [["0.3526", "0.5"]]}}


def test_trade_ids_detect_repeats_and_gaps_per_product() -> None:
    ids = TradeIds()

    def t(sym: str, i: int) -> TradeTick:
        return TradeTick(0, sym, 1, 1, Side.BUY, i)

    assert ids.check(t("A", 10), baseline=True) == ""
    assert ids.check(t("A", 11), baseline=False) == ""
    assert ids.check(t("A", 11), baseline=False) == "dup"
    assert ids.check(t("B", 500), baseline=False) == ""
    assert ids.check(t("A", 13), baseline=False) == "gap"
    assert ids.check(t("A", 14), baseline=False) == ""


def test_coinbase_credentials_sign_like_the_documented_example_and_hide_the_secret() -> None:
    creds = CoinbaseCredentials("key", "c2VjcmV0", "pass")  # base64("secret")
    fields = creds.sign("1618677817")
    expected = hmac.new(b"secret", b"1618677817GET/users/self/verify", hashlib.sha256).digest()
    assert fields == {"key": "key", "passphrase": "pass", "timestamp": "1618677817",
                      "signature": base64.b64encode(expected).decode()}  # fmt: skip
    assert "c2VjcmV0" not in repr(creds) and "pass" not in repr(creds)


def test_staleness_is_reported_per_symbol_on_the_injected_clock() -> None:
    keeper = BookKeeper(INST, max_age_ns=2_000_000_000)
    keeper.apply(snap(((100, 1),), ((101, 2),)), recv_ns=1_000_000_000)
    feed = CoinbaseFeed("ws://127.0.0.1:1", INST, keeper=keeper)
    feed._report_staleness(keeper, 2_500_000_000)
    sample = {"venue": "coinbase", "symbol": "X"}
    assert feed.metrics.registry.get_sample_value("rrr_book_staleness_seconds", sample) == 1.5
    assert keeper.books["X"].state is BookState.TRADABLE
    feed._report_staleness(keeper, 3_000_000_001)
    assert keeper.books["X"].untradable_reason() == "stale"
    resyncs = {"venue": "coinbase", "cause": "stale"}
    assert feed.metrics.registry.get_sample_value("rrr_feed_resyncs_total", resyncs) == 1
