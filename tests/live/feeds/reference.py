"""Reference books by a short dict-and-Decimal replay of the recorded sessions.

Deliberately independent of ``rrr_live``: plain ``json`` and ``Decimal``, the venues' own
documented rules, so a final book computed by the adapters can be checked against it.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

RECORDED = Path(os.environ.get("RRR_RECORDED_DIR", "/work/shared/data/recorded"))
COINBASE_WS = RECORDED / "coinbase-exchange-2021-04-17.part1.ws.log"
COINBASE_PRODUCTS = RECORDED / "coinbase-exchange-2021-04-17.rest-products.log"
BINANCE_WS = RECORDED / "binance-spot-2021-10-12.ws.log"
BINANCE_DEPTH = RECORDED / "binance-spot-2021-10-12.rest-depth.log"
BINANCE_INFO = RECORDED / "binance-spot-2021-10-12.rest-exchangeinfo.log"

Book = dict[str, dict[Decimal, Decimal]]


def received(path: Path) -> list[str]:
    """Return the JSON bodies of the received lines (``<ts>: <json>``)."""
    return [
        line.split(": ", 1)[1].strip()
        for line in path.read_text().splitlines()
        if line[:1].isdigit()
    ]


def rest_body(path: Path, contains: str = "") -> str:
    """Return the JSON body of the first REST line whose URL contains ``contains``."""
    for line in path.read_text().splitlines():
        head, sep, body = line.partition(": {")
        if not sep:
            head, sep, body = line.partition(": [")
            body = "[" + body
        else:
            body = "{" + body
        if sep and contains in head:
            return body.strip()
    raise LookupError(f"{contains!r} not in {path}")


def _set(side: dict[Decimal, Decimal], price: str, size: str) -> None:
    p, s = Decimal(price), Decimal(size)
    if s == 0:
        side.pop(p, None)
    else:
        side[p] = s


def coinbase_books(lines: list[str]) -> dict[str, Book]:
    """Replay ``snapshot``/``l2update`` messages into books keyed by product."""
    books: dict[str, Book] = {}
    for body in lines:
        msg = json.loads(body)
        if msg["type"] == "snapshot":
            books[msg["product_id"]] = {
                "bids": {Decimal(p): Decimal(s) for p, s in msg["bids"] if Decimal(s)},
                "asks": {Decimal(p): Decimal(s) for p, s in msg["asks"] if Decimal(s)},
            }
        elif msg["type"] == "l2update":
            book = books[msg["product_id"]]
            for side, price, size in msg["changes"]:
                _set(book["bids" if side == "buy" else "asks"], price, size)
    return books


def binance_books(lines: list[str], snapshots: dict[str, str]) -> dict[str, Book]:
    """Replay depth diffs onto the REST snapshots by the documented rules."""
    books: dict[str, Book] = {}
    last: dict[str, int] = {}
    for symbol, body in snapshots.items():
        snap = json.loads(body)
        books[symbol] = {
            "bids": {Decimal(p): Decimal(s) for p, s in snap["bids"]},
            "asks": {Decimal(p): Decimal(s) for p, s in snap["asks"]},
        }
        last[symbol] = snap["lastUpdateId"]
    for body in lines:
        data = json.loads(body)["data"]
        if data.get("e") != "depthUpdate" or data["u"] <= last[data["s"]]:
            continue
        assert data["U"] <= last[data["s"]] + 1, "the recorded vector has a gap"
        last[data["s"]] = data["u"]
        for price, size in data["b"]:
            _set(books[data["s"]]["bids"], price, size)
        for price, size in data["a"]:
            _set(books[data["s"]]["asks"], price, size)
    return books


def binance_snapshots() -> dict[str, str]:
    """Return the recorded REST depth snapshots by symbol."""
    out = {}
    for line in BINANCE_DEPTH.read_text().splitlines():
        head, sep, body = line.partition(": {")
        if sep:
            out[head.split("symbol=")[1].split("&")[0]] = "{" + body.strip()
    return out
