"""Coinbase / Binance REST sources against local fakes: pagination, 429, 5xx, bad bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from rrr_pipelines.lib.quality.suite import failed, run_blocking_gates
from rrr_pipelines.lib.sources.base import BarSource
from rrr_pipelines.lib.sources.fakes import FakeBinance, FakeClock, FakeCoinbase, Reply
from rrr_pipelines.lib.sources.ratelimit import RetryPolicy, TokenBucket
from rrr_pipelines.lib.sources.rest import RestSourceError, parse_retry_after
from rrr_pipelines.lib.sources.rest_binance import BinanceSource
from rrr_pipelines.lib.sources.rest_coinbase import CoinbaseSource
from rrr_pipelines.lib.sources.synthetic import SyntheticSource

T0 = datetime(2024, 5, 1, tzinfo=UTC)
END = T0 + timedelta(minutes=1000)  # 1000 one-minute bars per symbol


def _venue_bars(names: list[str]) -> pd.DataFrame:
    """Synthetic minute bars renamed to venue symbols (the fake serves them as real shapes)."""
    src = SyntheticSource(n_symbols=len(names), interval="1m", seed=21)
    bars = src.fetch(T0 - timedelta(hours=1), END + timedelta(hours=10))
    mapping = {f"SYN{i:04d}": n for i, n in enumerate(names)}
    bars["symbol"] = bars["symbol"].map(mapping).astype("str")
    return bars


def _expected(bars: pd.DataFrame, source: str) -> pd.DataFrame:
    out = bars[(bars["ts"] >= T0) & (bars["ts"] < END)].copy()
    out["source"] = source
    out["adj_close"] = out["close"]
    return out.sort_values(["symbol", "ts"], ignore_index=True)


@pytest.fixture(scope="module")
def coinbase_bars() -> pd.DataFrame:
    return _venue_bars(["BTC-USD", "ETH-USD"])


@pytest.fixture(scope="module")
def binance_bars() -> pd.DataFrame:
    return _venue_bars(["BTCUSDT", "ETHUSDT"])


def _coinbase(venue: FakeCoinbase, clock: FakeClock, **kw) -> CoinbaseSource:
    return CoinbaseSource(
        ["BTC-USD", "ETH-USD"], "1m", "http://coinbase.test", transport=venue.transport(),
        clock=clock, sleep=clock.sleep, wall_clock=clock, seed=1, **kw,
    )  # fmt: skip


def _binance(venue: FakeBinance, clock: FakeClock, **kw) -> BinanceSource:
    return BinanceSource(
        ["BTCUSDT", "ETHUSDT"], "1m", "http://binance.test", transport=venue.transport(),
        clock=clock, sleep=clock.sleep, wall_clock=clock, seed=1, **kw,
    )  # fmt: skip


def test_coinbase_paginates_300_per_request(coinbase_bars: pd.DataFrame) -> None:
    venue, clock = FakeCoinbase(coinbase_bars), FakeClock()
    src = _coinbase(venue, clock)
    assert isinstance(src, BarSource)
    got = src.fetch(T0, END)
    pd.testing.assert_frame_equal(got, _expected(coinbase_bars, "coinbase"), check_dtype=False)
    pages = [q for p, q in venue.requests if p == "/products/BTC-USD/candles"]
    assert [q["start"] for q in pages] == [
        "2024-05-01T00:00:00Z", "2024-05-01T05:00:00Z", "2024-05-01T10:00:00Z",
        "2024-05-01T15:00:00Z",
    ]  # fmt: skip
    assert pages[0]["end"] == "2024-05-01T04:59:59Z" and pages[0]["granularity"] == "60"
    assert failed(run_blocking_gates(got, calendar="24/7")) == []


def test_binance_paginates_1000_per_request(binance_bars: pd.DataFrame) -> None:
    venue, clock = FakeBinance(binance_bars), FakeClock()
    src = _binance(venue, clock)
    got = src.fetch(T0, END + timedelta(minutes=500))  # 1500 bars: two pages per symbol
    exp = binance_bars[
        (binance_bars["ts"] >= T0) & (binance_bars["ts"] < END + timedelta(minutes=500))
    ]
    assert len(got) == len(exp) == 3000
    assert got["close"].tolist() == exp.sort_values(["symbol", "ts"])["close"].tolist()
    starts = [int(q["startTime"]) for _, q in venue.requests if q["symbol"] == "BTCUSDT"]
    t0_ms = int(T0.timestamp() * 1000)
    assert starts == [t0_ms, t0_ms + 1000 * 60_000]
    assert {q["limit"] for _, q in venue.requests} == {"1000"}


def test_rate_limiter_spaces_requests_without_sleeping(coinbase_bars: pd.DataFrame) -> None:
    venue, clock = FakeCoinbase(coinbase_bars), FakeClock()
    src = _coinbase(venue, clock, rate_per_s=2.0, burst=1.0)
    src.fetch(T0, END)
    assert len(venue.requests) == 8
    assert clock.sleeps == pytest.approx([0.5] * 7)  # 8 requests at 2/s after a burst of 1


def test_429_honours_retry_after(coinbase_bars: pd.DataFrame) -> None:
    venue, clock = FakeCoinbase(coinbase_bars), FakeClock()
    venue.inject(Reply(429, b'{"message":"Too many requests"}', {"Retry-After": "7"}))
    got = _coinbase(venue, clock, rate_per_s=1000.0, burst=1000.0).fetch(T0, END)
    assert len(got) == 2000
    assert clock.sleeps == [7.0]
    assert len(venue.requests) == 9  # the refused request was repeated


def test_5xx_retried_with_capped_jittered_backoff(binance_bars: pd.DataFrame) -> None:
    venue, clock = FakeBinance(binance_bars), FakeClock()
    venue.inject(Reply(503, b"busy"), Reply(500, b"oops"), Reply(502, b"bad gateway"))
    retry = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=3.0)
    got = _binance(venue, clock, retry=retry, rate_per_s=1000.0, burst=1000.0).fetch(T0, END)
    assert len(got) == 2000
    assert len(clock.sleeps) == 3
    for attempt, wait in enumerate(clock.sleeps):
        assert 0.0 <= wait <= min(3.0, 1.0 * 2**attempt)


def test_retries_exhausted_is_a_clear_error(binance_bars: pd.DataFrame) -> None:
    venue, clock = FakeBinance(binance_bars), FakeClock()
    venue.inject(*[Reply(503, b"down")] * 3)
    src = _binance(venue, clock, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(RestSourceError, match=r"failed after 3 attempts; last error: HTTP 503"):
        src.fetch(T0, END)


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (Reply(200, b"<html>maintenance</html>"), "not JSON"),
        (Reply.json({"unexpected": "object"}), "expected a JSON array"),
        (Reply.json([[1714521600, "x", 1, 1, 1, 1]]), r"row 0 is not \[time, low, high"),
        (Reply.json([[1714521600, 1, 2]]), r"row 0 is not \[time, low, high"),
    ],
)
def test_coinbase_malformed_body(coinbase_bars: pd.DataFrame, reply: Reply, match: str) -> None:
    venue, clock = FakeCoinbase(coinbase_bars), FakeClock()
    venue.inject(reply)
    with pytest.raises(RestSourceError, match=match):
        _coinbase(venue, clock).fetch(T0, END)


def test_binance_malformed_row_and_fatal_status(binance_bars: pd.DataFrame) -> None:
    venue, clock = FakeBinance(binance_bars), FakeClock()
    venue.inject(Reply.json([[1714521600000, "1.0", "abc", "1", "1", "1", 0]]))
    with pytest.raises(RestSourceError, match=r"row 0 is not \[openTime"):
        _binance(venue, clock).fetch(T0, END)
    bad_symbol = BinanceSource(
        ["NOPE"], "1m", "http://binance.test", transport=venue.transport(),
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    with pytest.raises(RestSourceError, match=r"HTTP 400: .*Invalid symbol"):
        bad_symbol.fetch(T0, END)


def test_real_local_http_server(binance_bars: pd.DataFrame, coinbase_bars: pd.DataFrame) -> None:
    clock = FakeClock()
    venue = FakeBinance(binance_bars)
    venue.inject(Reply(429, b"{}", {"Retry-After": "2"}))
    with venue.serve() as url:
        assert url.startswith("http://127.0.0.1:")
        src = BinanceSource(["BTCUSDT"], "1m", url, clock=clock, sleep=clock.sleep, seed=3)
        got = src.fetch(T0, END)
        src.client.close()
    exp = _expected(binance_bars, "binance")
    assert got["close"].tolist() == exp[exp["symbol"] == "BTCUSDT"]["close"].tolist()
    assert clock.sleeps == [2.0]
    cb = FakeCoinbase(coinbase_bars)
    with cb.serve() as url:
        got = CoinbaseSource(["ETH-USD"], "1m", url, clock=clock, sleep=clock.sleep).fetch(T0, END)
    assert len(got) == 1000 and set(got["symbol"]) == {"ETH-USD"}


def test_token_bucket_refills_with_clock() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(rate=4.0, capacity=2.0, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(4)] == [0.0, 0.0, 0.25, 0.25]
    clock.advance(10.0)
    assert bucket.acquire() == 0.0 and bucket.acquire() == 0.0  # refilled to capacity only
    with pytest.raises(ValueError):
        bucket.acquire(3.0)


def test_retry_after_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("5", now) == 5.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
