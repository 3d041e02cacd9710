"""Unit tests of the signed REST layer: backoff as the venue asks, on an injected sleeper.

The paper venue's own rate limits are exercised end to end in test_broker_paper.py; here an
httpx mock transport plays a venue that answers 429/418/5xx on cue.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest

from rrr_live.clock import SimulatedClock
from rrr_live.exchange.paper.auth import signature_ok
from rrr_live.venue.rest import (
    AmbiguousOutcome,
    Credentials,
    RateLimited,
    RestConfig,
    SignedRest,
    VenueRejected,
)

pytestmark = pytest.mark.asyncio
CREDS = Credentials("key-1", "s3cret")


def _rest(
    answers: list[httpx.Response], seen: list[httpx.Request], **cfg: float
) -> tuple[SignedRest, list[float]]:
    slept: list[float] = []

    async def sleeper(s: float) -> None:
        slept.append(s)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    config = RestConfig("http://venue.test", **cfg)  # type: ignore[arg-type]
    clock = SimulatedClock(1_700_000_000_000_000_000)
    rest = SignedRest(config, CREDS, clock, sleeper, httpx.MockTransport(handler))
    return rest, slept


async def test_429_waits_retry_after_then_succeeds_with_a_fresh_signature() -> None:
    seen: list[httpx.Request] = []
    limited = {"code": -1003, "msg": "Too many requests."}
    answers = [httpx.Response(429, json=limited, headers={"Retry-After": "3"}),
               httpx.Response(418, json=limited, headers={"Retry-After": "7"}),
               httpx.Response(200, json={"ok": 1})]  # fmt: skip
    rest, slept = _rest(answers, seen)
    assert await rest.signed("GET", "/api/v3/account", {}) == {"ok": 1}
    assert slept == [3.0, 7.0] and rest.waits == slept
    assert len(seen) == 3
    for req in seen:
        assert req.headers["X-MBX-APIKEY"] == "key-1"
        assert signature_ok("s3cret", req.url.query.decode(), "")
        assert "s3cret" not in str(req.url)
    await rest.close()


async def test_a_long_ban_is_capped_and_gives_up_after_the_allowed_waits() -> None:
    seen: list[httpx.Request] = []
    ban = {"code": -1003, "msg": "Way too many requests; IP banned."}
    answers = [httpx.Response(418, json=ban, headers={"Retry-After": "600"}) for _ in range(3)]
    rest, slept = _rest(answers, seen, max_rate_limit_waits=2, max_wait_s=30.0)
    with pytest.raises(RateLimited) as err:
        await rest.signed("GET", "/api/v3/account", {})
    assert err.value.code == -1003 and err.value.status == 418
    assert slept == [30.0, 30.0] and len(seen) == 3
    await rest.close()


async def test_5xx_and_timeouts_are_ambiguous_4xx_are_refusals() -> None:
    seen: list[httpx.Request] = []
    unknown = {"code": -2013, "msg": "Order does not exist."}
    answers = [httpx.Response(503, text="busy"), httpx.Response(400, json=unknown)]
    rest, slept = _rest(answers, seen)
    with pytest.raises(AmbiguousOutcome):
        await rest.signed("POST", "/api/v3/order", {"symbol": "BTCUSDT"})
    with pytest.raises(VenueRejected) as err:
        await rest.signed("GET", "/api/v3/order", {"symbol": "BTCUSDT"})
    assert (err.value.status, err.value.code) == (400, -2013)
    assert slept == []
    params = dict(parse_qsl(seen[0].url.query.decode()))
    assert params["timestamp"] == "1700000000000" and params["recvWindow"] == "5000"
    await rest.close()

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    rest = SignedRest(RestConfig("http://venue.test"), CREDS, SimulatedClock(0),
                      transport=httpx.MockTransport(timeout))  # fmt: skip
    with pytest.raises(AmbiguousOutcome, match="ReadTimeout"):
        await rest.signed("POST", "/api/v3/order", {})
    await rest.close()


async def test_a_stale_timestamp_resyncs_the_venue_clock_once() -> None:
    seen: list[httpx.Request] = []
    stale = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    venue_time = {"serverTime": 1_700_000_099_000}
    answers = [httpx.Response(400, json=stale), httpx.Response(200, json=venue_time),
               httpx.Response(200, json={"ok": 1})]  # fmt: skip
    rest, _ = _rest(answers, seen)
    assert await rest.signed("GET", "/api/v3/account", {}) == {"ok": 1}
    assert [r.url.path for r in seen] == ["/api/v3/account", "/api/v3/time", "/api/v3/account"]
    assert dict(parse_qsl(seen[2].url.query.decode()))["timestamp"] == "1700000099000"
    await rest.close()
