"""Random gap positions over the wire: the replay exchange withholds depth frames, the adapter
resyncs from REST, and every final book still equals the Decimal reference."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrr_live.domain.market import Received
from rrr_live.feeds.connection import FeedSettings
from rrr_live.feeds.keeper import BookKeeper
from tests.live.feeds.harness import BINANCE_SYMBOLS, Run, is_snapshot, make_feed, server
from tests.live.feeds.reference import BINANCE_WS, binance_books, binance_snapshots, received
from tests.live.feeds.test_binance_sync import decimal_book

SNAPSHOTS = binance_snapshots()
REFERENCE = binance_books(received(BINANCE_WS), SNAPSHOTS)
LAST_ID = {s: json.loads(body)["lastUpdateId"] for s, body in SNAPSHOTS.items()}
DEPTH_U: dict[str, list[int]] = {s: [] for s in BINANCE_SYMBOLS}
for _line in received(BINANCE_WS):
    _data = json.loads(_line)["data"]
    if _data.get("e") == "depthUpdate":
        DEPTH_U[_data["s"]].append(_data["u"])


async def _run(skips: dict[str, int]) -> tuple[dict[str, int], BookKeeper | None]:
    async with server("binance", autostart=False) as ex:
        feed = await make_feed("binance", ex, FeedSettings(max_reconnects=0, idle_timeout_s=30))
        for symbol, count in skips.items():
            if count:
                ex.skip(count, symbol=symbol)
        seen = 0

        def start_after_snapshots(item: Received) -> None:
            nonlocal seen
            seen += is_snapshot(item)
            if seen == len(BINANCE_SYMBOLS):
                ex.start()

        run = Run(feed, start_after_snapshots)
        await run.finish(ex)
    return dict(feed.resyncs), feed.keeper


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({s: st.integers(0, len(DEPTH_U[s]) - 1) for s in BINANCE_SYMBOLS}))
def test_withheld_depth_frames_resync_to_the_exact_books(skips: dict[str, int]) -> None:
    """The first ``count`` depth frames of each symbol are not sent; its last one always is."""
    resyncs, keeper = asyncio.run(_run(skips))
    gapped = [s for s, c in skips.items() if any(u > LAST_ID[s] for u in DEPTH_U[s][:c])]
    assert resyncs.get("gap", 0) == len(gapped)
    assert keeper is not None
    for symbol, ref in REFERENCE.items():
        assert decimal_book(keeper, symbol) == ref, symbol
