"""Recorded sessions (the format of ``shared/data/recorded``) as a replay tape.

Line format: ``<url> <-> <ts>`` (connection opened), ``<url> <- <ts>: <json>`` (client sent),
``<ts>: <json>`` (received: replayed), ``<url> -> <ts>: <json>`` (a REST response). The receive
time is the event time. REST logs sit beside the websocket log (``<stem>.rest-*.log``, where the
stem is the websocket log's name up to ``.ws.log`` / ``.partN.ws.log``).

Binance: depth diffs keep their ``U``/``u``; a recorded ``/api/v3/depth`` snapshot seeds the
server's book at its ``lastUpdateId`` (diffs at or below it were already in it). Coinbase: both
``level2`` and ``level2_batch`` recordings carry ``snapshot``/``l2update`` messages; they go to
the level-2 channel, ``match``/``last_match`` to ``matches``, ``ticker`` to ``ticker``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rrr_live.errors import RRRError
from rrr_live.exchange.tape import (
    BOOK_ONLY,
    DEPTH,
    LEVEL2,
    MATCHES,
    TICKER,
    PriceSize,
    ProtocolName,
    Tape,
    TapeEvent,
)

_NS = Decimal(1_000_000_000)
_COINBASE_CHANNEL = {
    "snapshot": LEVEL2,
    "l2update": LEVEL2,
    "match": MATCHES,
    "last_match": MATCHES,
    "ticker": TICKER,
}


class RecordingError(RRRError):
    """A recorded session file is missing or not in the expected format."""


def ts_ns(text: str) -> int:
    """Turn a recorded unix timestamp (``"1633998512.0633569"``) into integer nanoseconds."""
    return int(Decimal(text) * _NS)


def _levels(raw: list[list[str]]) -> tuple[PriceSize, ...]:
    return tuple((str(p), str(s)) for p, s, *_ in raw)


def parse_lines(path: Path) -> Iterator[tuple[str, int, str, str]]:
    """Yield ``(kind, ts_ns, url, json_text)`` per line (``open``, ``sent``, ``recv``, ``rest``).

    Raises:
        RecordingError: on a line in no known shape (the message names file and line).
    """
    try:
        handle = path.open(encoding="utf-8")
    except OSError as e:
        raise RecordingError(f"cannot read recording {path}: {e.strerror}") from e
    with handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            try:
                yield _parse_line(line)
            except (ValueError, IndexError) as e:
                raise RecordingError(f"{path}:{number}: not a recorded line ({e})") from e


def _parse_line(line: str) -> tuple[str, int, str, str]:
    if line[0].isdigit():
        ts, body = line.split(": ", 1)
        return "recv", ts_ns(ts), "", body
    for marker, kind in ((" <-> ", "open"), (" <- ", "sent"), (" -> ", "rest")):
        if marker in line:
            url, rest = line.split(marker, 1)
            if kind == "open":
                return kind, ts_ns(rest.strip()), url, ""
            ts, body = rest.split(": ", 1)
            return kind, ts_ns(ts), url, body
    raise ValueError("no timestamp or url marker")


def rest_logs_beside(ws_log: Path) -> list[Path]:
    """The REST logs recorded alongside a websocket log (same stem, ``.rest-*.log``)."""
    stem = re.sub(r"(\.part\d+)?\.ws\.log$", "", ws_log.name)
    return sorted(ws_log.parent.glob(f"{stem}.rest-*.log"))


def load_recording(ws_log: Path, rest_logs: list[Path] | None = None) -> Tape:
    """Parse a recorded websocket session (and its REST logs) into a tape.

    Args:
        ws_log: the ``*.ws.log`` file.
        rest_logs: REST logs to use; default: those beside ``ws_log``.

    Raises:
        RecordingError: unreadable file, unknown venue, or a malformed line.
    """
    lines = list(parse_lines(ws_log))
    opened = [url for kind, _, url, _ in lines if kind == "open"]
    if not opened:
        raise RecordingError(f"{ws_log}: no '<url> <-> <ts>' connection line")
    protocol = _venue(opened[0], ws_log)
    rests = [r for p in (rest_logs if rest_logs is not None else rest_logs_beside(ws_log))
             for r in parse_lines(p)]  # fmt: skip
    received = [(ts, body) for kind, ts, _, body in lines if kind == "recv"]
    if protocol == "binance":
        return _binance_tape(received, rests)
    return _coinbase_tape(received, rests)


def _venue(url: str, path: Path) -> ProtocolName:
    if "binance" in url:
        return "binance"
    if "coinbase" in url:
        return "coinbase"
    raise RecordingError(f"{path}: cannot tell the venue from {url!r}")


def _binance_tape(received: list[tuple[int, str]], rests: list[tuple[str, int, str, str]]) -> Tape:
    events: list[TapeEvent] = []
    rest: dict[str, bytes] = {}
    for _, ts, url, body in rests:
        path = urlsplit(url).path
        if path.endswith("/exchangeInfo"):
            rest["exchangeInfo"] = body.encode()
        elif path.endswith("/depth"):
            symbol = parse_qs(urlsplit(url).query)["symbol"][0]
            snap = json.loads(body)
            events.append(_binance_seed(symbol, ts, snap))
    seeded = {e.symbol for e in events}
    symbols: list[str] = sorted(seeded)
    for ts, body in received:
        event = _binance_event(ts, body)
        if event is None:
            continue
        if event.symbol not in symbols:
            symbols.append(event.symbol)
        events.append(event)
    return Tape("binance", _seed_first(events), rest=rest, symbols=symbols)


def _seed_first(events: list[TapeEvent]) -> list[TapeEvent]:
    seeds = [e for e in events if e.channel == BOOK_ONLY]
    rest = sorted((e for e in events if e.channel != BOOK_ONLY), key=lambda e: e.ts_ns)
    start = rest[0].ts_ns if rest else 0
    for seed in seeds:
        seed.ts_ns = min(seed.ts_ns, start)
    return seeds + rest


def _binance_seed(symbol: str, ts: int, snap: dict[str, Any]) -> TapeEvent:
    last = int(snap["lastUpdateId"])
    return TapeEvent(
        ts, symbol, BOOK_ONLY, b"", _levels(snap["bids"]), _levels(snap["asks"]),
        snapshot=True, first_seq=last, last_seq=last,
    )  # fmt: skip


def _binance_event(ts: int, body: str) -> TapeEvent | None:
    msg = json.loads(body)
    stream = msg.get("stream")
    data = msg.get("data")
    if not isinstance(stream, str) or not isinstance(data, dict):
        return None
    lower, _, channel = stream.partition("@")
    symbol = str(data.get("s") or lower.upper())
    payload = _data_bytes(body, data)
    if data.get("e") != "depthUpdate":
        return TapeEvent(ts, symbol, channel, payload)
    return TapeEvent(
        ts, symbol, DEPTH, payload, _levels(data["b"]), _levels(data["a"]),
        first_seq=int(data["U"]), last_seq=int(data["u"]),
    )  # fmt: skip


def _data_bytes(body: str, data: dict[str, Any]) -> bytes:
    """The recorded bytes of ``data`` in ``{"stream":…,"data":{…}}`` (else re-encoded)."""
    head = body.find('"data":')
    if head > 0 and body.endswith("}"):
        raw = body[head + 7 : -1]
        if json.loads(raw) == data:
            return raw.encode()
    return json.dumps(data, separators=(",", ":")).encode()


def _coinbase_tape(received: list[tuple[int, str]], rests: list[tuple[str, int, str, str]]) -> Tape:
    rest: dict[str, bytes] = {}
    for _, _, url, body in rests:
        if urlsplit(url).path.rstrip("/").endswith("/products"):
            rest["products"] = body.encode()
    events: list[TapeEvent] = []
    symbols: list[str] = []
    for ts, body in received:
        event = _coinbase_event(ts, body)
        if event is None:
            continue
        if event.symbol not in symbols:
            symbols.append(event.symbol)
        events.append(event)
    return Tape("coinbase", events, rest=rest, symbols=symbols)


def _coinbase_event(ts: int, body: str) -> TapeEvent | None:
    msg = json.loads(body)
    channel = _COINBASE_CHANNEL.get(str(msg.get("type")))
    product = msg.get("product_id")
    if channel is None or not isinstance(product, str):
        return None  # subscriptions acks, errors: the server makes its own
    payload = body.strip().encode()
    kind = msg["type"]
    if kind == "snapshot":
        bids, asks = _levels(msg["bids"]), _levels(msg["asks"])
        return TapeEvent(ts, product, channel, payload, bids, asks, snapshot=True)
    if kind == "l2update":
        bids = tuple((p, s) for side, p, s in msg["changes"] if side == "buy")
        asks = tuple((p, s) for side, p, s in msg["changes"] if side == "sell")
        return TapeEvent(ts, product, channel, payload, bids, asks)
    trade_id = int(msg.get("trade_id") or 0)  # matches: heartbeats report the last one
    return TapeEvent(ts, product, channel, payload, last_seq=trade_id)
