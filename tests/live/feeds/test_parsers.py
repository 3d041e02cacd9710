"""Parsers on the recorded real sessions: exact ticks and lots, rejections by reason, fuzz."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrr_live.domain.events import TradeTick
from rrr_live.domain.market import BookUpdate, BookUpdateKind, TopOfBook
from rrr_live.domain.orders import Side
from rrr_live.feeds.binance_wire import BinanceParser
from rrr_live.feeds.coinbase_wire import CoinbaseParser
from rrr_live.feeds.errors import Rejected
from rrr_live.feeds.instruments import binance_instruments, coinbase_instruments
from rrr_live.feeds.parsed import Parsed
from tests.live.feeds.reference import (
    BINANCE_INFO,
    BINANCE_WS,
    COINBASE_PRODUCTS,
    COINBASE_WS,
    binance_snapshots,
    received,
    rest_body,
)

CB = CoinbaseParser(coinbase_instruments(rest_body(COINBASE_PRODUCTS)))
BN_INSTRUMENTS = binance_instruments(rest_body(BINANCE_INFO))
BN = BinanceParser(BN_INSTRUMENTS)
CB_LINES = received(COINBASE_WS)
BN_LINES = received(BINANCE_WS)


def kinds(parser: CoinbaseParser | BinanceParser, lines: list[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for line in lines:
        parsed = parser.parse(line)
        out[parsed.control or type(parsed.events[0]).__name__] += 1
    return out


def test_instrument_metadata_comes_from_the_recorded_rest_responses() -> None:
    cb = coinbase_instruments(rest_body(COINBASE_PRODUCTS))
    assert len(cb) == 162
    assert cb["SKL-BTC"].tick_size == Decimal("0.00000001")
    assert cb["SKL-BTC"].lot_size == Decimal("0.1")
    assert cb["SKL-BTC"].min_notional == Decimal("0.0001")
    order = binance_instruments(rest_body(BINANCE_INFO), grid="order")
    assert len(order) == 1695 and len(BN_INSTRUMENTS) == 1695
    assert order["NKNUSDT"].tick_size == Decimal("0.0001")
    assert order["NKNUSDT"].lot_size == Decimal("1")
    assert order["NKNUSDT"].min_notional == Decimal("10")
    assert BN_INSTRUMENTS["NKNUSDT"].tick_size == Decimal("1E-8")  # the book grid
    assert BN_INSTRUMENTS["RUNEEUR"].quote_currency == "EUR"


def test_every_recorded_coinbase_line_parses() -> None:
    assert kinds(CB, CB_LINES) == {
        "BookUpdate": 4911, "TopOfBook": 41, "TradeTick": 41, "subscriptions": 3,
    }  # fmt: skip


def test_every_recorded_binance_line_parses_and_klines_are_ignored() -> None:
    assert kinds(BN, BN_LINES) == {"BookUpdate": 177, "TopOfBook": 84, "TradeTick": 2, "ignored": 2}
    kline = next(line for line in BN_LINES if "kline_1m" in line)
    assert BN.parse(kline) == Parsed(control="ignored", detail="kline_1m")


def test_coinbase_l2update_is_exact() -> None:
    # {"type":"l2update","product_id":"SKL-BTC","changes":[["sell","0.00001306","660.5"]],
    #  "time":"2021-04-17T16:43:37.075687Z"}; SKL-BTC: quote_increment 1e-8, base_increment 0.1
    line = next(x for x in CB_LINES if '"l2update"' in x)
    (ev,) = CB.parse(line).events
    assert ev == BookUpdate(
        BookUpdateKind.DIFF, "SKL-BTC", 1_618_677_817_075_687_000, (), ((1306, 6605),)
    )


def test_coinbase_snapshot_match_and_ticker_are_exact() -> None:
    snap = next(x for x in CB_LINES if '"snapshot"' in x and '"BAND-GBP"' in x)
    (ev,) = CB.parse(snap).events
    assert isinstance(ev, BookUpdate) and ev.kind is BookUpdateKind.SNAPSHOT
    # asks start [["14.8024","12.77"],["14.8069","12.49"]...]; tick 0.0001, lot 0.01
    assert ev.asks[:2] == ((148024, 1277), (148069, 1249))
    raw = json.loads(snap)
    assert len(ev.bids) == len(raw["bids"]) and len(ev.asks) == len(raw["asks"])
    match = next(x for x in CB_LINES if '"type":"match"' in x)
    # trade_id 280232, maker side sell (so a buyer took), size 985, price 0.00001305 SKL-BTC
    (tick,) = CB.parse(match).events
    assert tick == TradeTick(1_618_677_817_089_723_000, "SKL-BTC", 1305, 9850, Side.BUY, 280232)
    ticker = next(x for x in CB_LINES if '"type":"ticker"' in x)
    (top,) = CB.parse(ticker).events
    # BAND-GBP best_bid 14.7550, best_ask 14.8060, sequence 333938798 (no sizes in 2021)
    assert top == TopOfBook("BAND-GBP", 1_618_677_810_244_075_000, 147550, 0, 148060, 0, 333938798)


def test_binance_depth_aggtrade_bookticker_are_exact() -> None:
    (diff,) = BN.parse(BN_LINES[0]).events
    # NKNUSDT U=499869750 u=499869752 b=[["0.35130000","6195.00000000"], ...]; grid 1e-8
    assert diff == BookUpdate(
        BookUpdateKind.DIFF, "NKNUSDT", 1_633_998_512_068_000_000,
        ((35130000, 619500000000), (34750000, 554800000000), (34640000, 622200000000)), (),
        499869750, 499869752,
    )  # fmt: skip
    agg = next(x for x in BN_LINES if "nknusdt@aggTrade" in x)
    # a=15683430 p=0.35280000 q=58 T=1633998523963 m=false (buyer took)
    assert BN.parse(agg).events == [
        TradeTick(1_633_998_523_963_000_000, "NKNUSDT", 35280000, 5800000000, Side.BUY, 15683430)
    ]
    bt = next(x for x in BN_LINES if "nknusdt@bookTicker" in x)
    # u=499869768 b=0.35210000 B=672 a=0.35260000 A=3199
    assert BN.parse(bt).events == [
        TopOfBook("NKNUSDT", 0, 35210000, 67200000000, 35260000, 319900000000, 499869768)
    ]


def test_binance_rest_snapshots_parse_exactly() -> None:
    snaps = binance_snapshots()
    snap = BN.snapshot("NKNUSDT", snaps["NKNUSDT"])
    assert snap.first_seq == snap.last_seq == 499869752
    assert snap.bids[0] == (35210000, 67200000000)  # ["0.35210000","672.00000000"]
    for symbol, body in snaps.items():
        raw = json.loads(body)
        ev = BN.snapshot(symbol, body)
        inst = BN_INSTRUMENTS[symbol]
        assert [(inst.ticks_to_decimal(p), inst.lot_size * s) for p, s in ev.bids] == [
            (Decimal(p), Decimal(s)) for p, s in raw["bids"]
        ]


def test_subscribe_replies_are_control_frames() -> None:
    assert BN.parse('{"result":null,"id":3}') == Parsed(control="ack", detail="3")
    err = BN.parse('{"error":{"code":2,"msg":"Invalid request"},"id":1}')
    assert err.control == "error" and "Invalid request" in err.detail
    cb = CB.parse('{"type":"error","message":"Failed to subscribe","reason":"auth required"}')
    assert cb == Parsed(control="error", detail="Failed to subscribe: auth required")
    hb = '{"type":"heartbeat","sequence":1,"last_trade_id":5,"product_id":"SKL-BTC","time":"x"}'
    assert CB.parse(hb).control == "heartbeat"
    assert CB.parse('{"type":"status","products":[]}') == Parsed(control="ignored", detail="status")


L2 = '{"type":"l2update","product_id":"%s","changes":[["%s","%s","%s"]],"time":"%s"}'
T0 = "2021-04-17T16:43:37.075687Z"
DEPTH = '{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"%s","U":%s,"u":%s,"b":[[%s,%s]],"a":[]}}'  # noqa: E501


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{not json", "invalid_json"),
        (L2.replace('"%s","%s"]]', "NaN,1]]") % ("SKL-BTC", "buy", T0), "invalid_json"),
        ('{"type":"l2update","product_id":"SKL-BTC","changes":[["buy",Infinity,"1"]],"time":"x"}',
         "invalid_json"),
        (L2 % ("SKL-BTC", "buy", "NaN", "1", T0), "bad_number"),
        (L2 % ("SKL-BTC", "buy", "Infinity", "1", T0), "bad_number"),
        (L2 % ("SKL-BTC", "buy", "-0.00001306", "1", T0), "negative"),
        (L2 % ("SKL-BTC", "buy", "0.00001306", "-1", T0), "negative"),
        (L2 % ("SKL-BTC", "buy", "0", "1", T0), "non_positive_price"),
        (L2 % ("SKL-BTC", "buy", "0.000013061", "1", T0), "off_grid"),
        (L2 % ("SKL-BTC", "up", "0.00001306", "1", T0), "schema"),
        (L2 % ("NOPE-USD", "buy", "0.00001306", "1", T0), "unknown_symbol"),
        (L2 % ("SKL-BTC", "buy", "0.00001306", "1", "yesterday"), "bad_time"),
        ('{"type":"l2update","product_id":"SKL-BTC","changes":[["buy",1.5,"1"]],"time":"x"}',
         "schema"),
        ('{"type":"match","product_id":"SKL-BTC","trade_id":"7"}', "schema"),
        ("[1,2,3]", "schema"),
    ],
)  # fmt: skip
def test_malformed_coinbase_frames_are_rejected_by_reason(frame: str, reason: str) -> None:
    with pytest.raises(Rejected) as e:
        CB.parse(frame)
    assert e.value.reason == reason


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ((DEPTH % ("NKNUSDT", 5, 6, '"0.1"', '"1"')).replace('"0.1"', "NaN"), "invalid_json"),
        (DEPTH % ("NKNUSDT", 5, 6, '"0.1"', '"-1"'), "negative"),
        (DEPTH % ("NKNUSDT", 5, 6, "0.1", '"1"'), "schema"),
        (DEPTH % ("NKNUSDT", 7, 6, '"0.1"', '"1"'), "schema"),
        (DEPTH % ("NKNUSDT", '"5"', 6, '"0.1"', '"1"'), "schema"),
        (DEPTH % ("ZZZ", 5, 6, '"0.1"', '"1"'), "unknown_symbol"),
        ('{"stream":"nknusdt@depth@100ms","data":null}', "schema"),
        ('{"hello":1}', "schema"),
    ],
)  # fmt: skip
def test_malformed_binance_frames_are_rejected_by_reason(frame: str, reason: str) -> None:
    with pytest.raises(Rejected) as e:
        BN.parse(frame)
    assert e.value.reason == reason


# --- fuzz ------------------------------------------------------------------------------------
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _mutate(line: str, data: st.DataObject) -> str:
    kind = data.draw(st.sampled_from(["truncate", "flip", "replace_value", "raw"]))
    if kind == "truncate":
        return line[: data.draw(st.integers(0, len(line)))]
    if kind == "flip":
        i = data.draw(st.integers(0, len(line) - 1))
        return line[:i] + data.draw(st.characters(codec="utf-8")) + line[i + 1 :]
    if kind == "raw":
        return data.draw(st.text(max_size=60))
    msg = json.loads(line)
    target = msg.get("data", msg)
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(JSONISH)
    return json.dumps(msg)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_frames_parse_or_are_rejected_never_crash(data: st.DataObject) -> None:
    venue = data.draw(st.sampled_from(["coinbase", "binance"]))
    parser: CoinbaseParser | BinanceParser = CB if venue == "coinbase" else BN
    lines = CB_LINES[:400] if venue == "coinbase" else BN_LINES
    frame = _mutate(data.draw(st.sampled_from(lines)), data)
    try:
        parsed = parser.parse(frame)
    except Rejected as e:
        assert e.reason in {
            "invalid_json", "schema", "bad_number", "negative", "non_positive_price", "off_grid",
            "unknown_symbol", "bad_time",
        }  # fmt: skip
        return
    for ev in parsed.events:  # whatever got through is well-formed
        levels = (ev.bids + ev.asks) if isinstance(ev, BookUpdate) else ()
        assert all(type(p) is int and p > 0 and type(s) is int and s >= 0 for p, s in levels)


DECIMALS = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("99999"), places=8)


@settings(max_examples=300, deadline=None)
@given(DECIMALS, DECIMALS, st.sampled_from(["buy", "sell"]))
def test_generated_decimal_strings_convert_exactly(
    price: Decimal, size: Decimal, side: str
) -> None:
    inst = BN_INSTRUMENTS["NKNUSDT"]
    frame = json.dumps({"stream": "nknusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1, "s": "NKNUSDT", "U": 1, "u": 2,
        "b" if side == "buy" else "a": [[f"{price:f}", f"{size:f}"]],
        "a" if side == "buy" else "b": []}})  # fmt: skip
    (ev,) = BN.parse(frame).events
    assert isinstance(ev, BookUpdate)
    ((p, s),) = ev.bids if side == "buy" else ev.asks
    assert inst.ticks_to_decimal(p) == price and inst.lot_size * s == size
