"""``rrr feed watch`` against the replay exchange running in a background thread."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from rrr_pipelines.cli.feed import feed
from tests.live.feeds.harness import COINBASE_SYMBOLS, server
from tests.live.feeds.reference import COINBASE_WS, coinbase_books, received


@pytest.fixture
def coinbase_exchange() -> Iterator[str]:
    """Serve the recorded Coinbase session on 127.0.0.1:0 from another thread's loop."""
    ready: list[str] = []
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        async with server("coinbase") as ex:
            ready.append(ex.ws_url)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    yield ready[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def top5(book: dict[Decimal, Decimal], reverse: bool) -> list[list[str]]:
    best = sorted(book, reverse=reverse)[:5]
    return [[f"{p.normalize():f}", f"{book[p].normalize():f}"] for p in best]


def test_watch_prints_events_and_writes_exact_top5_books(
    coinbase_exchange: str, tmp_path: Path
) -> None:
    out = tmp_path / "books.json"
    result = CliRunner().invoke(
        feed,
        ["watch", "--venue", "coinbase", "--url", coinbase_exchange, "--seconds", "2",
         "--symbols", ",".join(COINBASE_SYMBOLS), "--books-json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(lines) == 4993 and {x["type"] for x in lines} == {
        "BookUpdate",
        "TradeTick",
        "TopOfBook",
    }
    assert [x["seq"] for x in lines] == list(range(1, 4994))
    assert "4993 events, 1 connects, rejected: none" in result.stderr
    books = json.loads(out.read_text())
    reference = coinbase_books(received(COINBASE_WS))
    assert set(books) == set(reference)
    for symbol, ref in reference.items():
        assert books[symbol] == {"bids": top5(ref["bids"], True), "asks": top5(ref["asks"], False)}


def test_watch_unknown_symbol_is_one_clear_line(coinbase_exchange: str) -> None:
    result = CliRunner().invoke(
        feed, ["watch", "--venue", "coinbase", "--url", coinbase_exchange, "--symbols", "NOPE-USD"]
    )
    assert result.exit_code == 1
    assert result.output.strip() == "Error: unknown symbol(s) for this venue: NOPE-USD"


def test_watch_unreachable_venue_is_one_clear_line() -> None:
    result = CliRunner().invoke(feed, ["watch", "--venue", "binance", "--url", "ws://127.0.0.1:9"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("Error: cannot read instruments from http://127.0.0.1:9")
