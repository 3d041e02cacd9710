"""The Binance spot protocol of the replay exchange: combined/raw streams and public REST.

Websocket paths: ``/stream?streams=a@depth@100ms/b@trade`` (combined: each frame is
``{"stream": name, "data": payload}``), ``/ws/<stream>`` and ``/ws`` (raw payloads). On any of them
``{"method": "SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS", "params": [...], "id": n}`` works as
on Binance. REST: ``/api/v3/depth`` from the server's own book at the last ``u`` it emitted,
``/api/v3/exchangeInfo`` (the recorded body, or generated from the instruments), ``/api/v3/time``
(event time) and ``/api/v3/ping``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rrr_live.exchange.tape import DEPTH, InstrumentSpec, TapeEvent
from rrr_live.exchange.venue import Market, Reply, RestHandler, SubKey, dumps

_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)


def stream_key(name: str) -> SubKey | None:
    """``"nknusdt@depth@100ms"`` -> ``("NKNUSDT", "depth")``; None when not a stream name."""
    symbol, sep, channel = name.partition("@")
    if not sep or not symbol or not channel:
        return None
    if channel == "depth" or channel.startswith("depth@"):
        channel = DEPTH
    return symbol.upper(), channel


class BinanceProtocol:
    """Binance spot market data and public REST over one port (one instance per connection).

    Args:
        market: the server's market state.
    """

    name = "binance"

    def __init__(self, market: Market) -> None:
        self.market = market
        self._combined = True
        self._names: list[str] = []

    def accept_path(self, path: str) -> dict[SubKey, bytes] | None:
        """Streams named in the path (combined or raw); None for a path Binance does not serve."""
        parts = urlsplit(path)
        if parts.path.rstrip("/") == "/stream":
            names = parse_qs(parts.query).get("streams", [""])[0]
            return self._subs([n for n in names.split("/") if n], combined=True)
        if parts.path in ("/ws", "/ws/"):
            self._combined = False
            return {}
        if parts.path.startswith("/ws/"):
            return self._subs(parts.path[4:].split("/"), combined=False)
        return None

    def _subs(self, names: list[str], combined: bool) -> dict[SubKey, bytes]:
        self._combined = combined
        out: dict[SubKey, bytes] = {}
        for name in names:
            key = stream_key(name)
            if key is not None:
                out[key] = _prefix(name) if combined else b""
                self._names.append(name)
        return out

    def on_message(self, msg: dict[str, Any]) -> Reply:
        """Answer SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS like Binance."""
        method, ident, params = msg.get("method"), msg.get("id"), msg.get("params", [])
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return Reply([_error(ident, "Invalid request: params must be a list of streams")])
        keys = {name: stream_key(name) for name in params}
        bad = [name for name, key in keys.items() if key is None]
        if bad:
            return Reply([_error(ident, f"Invalid request: not a stream name: {bad[0]}")])
        ack = dumps({"result": None, "id": ident})
        if method == "SUBSCRIBE":
            self._names += [n for n in params if n not in self._names]
            subs = {key: (_prefix(n) if self._combined else b"") for n, key in keys.items() if key}
            return Reply([ack], subscribe=subs)
        if method == "UNSUBSCRIBE":
            self._names = [n for n in self._names if n not in params]
            return Reply([ack], unsubscribe=[key for key in keys.values() if key])
        if method == "LIST_SUBSCRIPTIONS":
            return Reply([dumps({"result": self._names, "id": ident})])
        return Reply([_error(ident, f"Invalid request: unknown method {method!r}")])

    def routes(self) -> dict[str, RestHandler]:
        """REST endpoints: depth, exchangeInfo, time, ping."""
        return {
            "/api/v3/depth": self._depth,
            "/api/v3/exchangeInfo": self._exchange_info,
            "/api/v3/time": lambda q, t: (200, dumps({"serverTime": self.market.now_ns // 10**6})),
            "/api/v3/ping": lambda q, t: (200, b"{}"),
        }

    def _depth(self, query: dict[str, str], tail: str) -> tuple[int, bytes]:
        symbol = query.get("symbol", "").upper()
        if not symbol:
            return 400, dumps({"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent."})
        if not self.market.books.known(symbol):
            return 400, dumps({"code": -1121, "msg": "Invalid symbol."})
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            limit = -1
        if limit not in _DEPTH_LIMITS:
            msg = f"Illegal characters found in parameter 'limit'; legal: {_DEPTH_LIMITS}"
            return 400, dumps({"code": -1100, "msg": msg})
        book = self.market.books.get(symbol)
        bids, asks = book.top(limit)
        body = {"lastUpdateId": book.last_seq, "bids": bids, "asks": asks}
        return 200, dumps(body)

    def _exchange_info(self, query: dict[str, str], tail: str) -> tuple[int, bytes]:
        recorded = self.market.tape.rest.get("exchangeInfo")
        info: dict[str, Any] = (
            json.loads(recorded) if recorded is not None else _generated_info(self.market)
        )
        wanted = _wanted_symbols(query)
        if wanted is None:
            return 200, recorded if recorded is not None else dumps(info)
        info["symbols"] = [s for s in info["symbols"] if s["symbol"] in wanted]
        if not info["symbols"]:
            return 400, dumps({"code": -1121, "msg": "Invalid symbol."})
        return 200, dumps(info)

    def timed(self, ts_ns: int, subscribed: Callable[[SubKey], bool]) -> list[TapeEvent]:
        """Binance sends nothing on a timer."""
        return []

    def observe(self, event: TapeEvent) -> None:
        """Binance keeps no per-event state."""

    def control(self, kind: str, body: dict[str, Any]) -> bytes:
        """A control frame as a combined-stream message on the ``rrr@<kind>`` stream."""
        return dumps({"stream": f"rrr@{kind}", "data": {"e": kind, **body}})


def _prefix(name: str) -> bytes:
    return b'{"stream":"' + name.encode() + b'","data":'


def _error(ident: Any, msg: str) -> bytes:
    return dumps({"error": {"code": 2, "msg": msg}, "id": ident})


def _wanted_symbols(query: dict[str, str]) -> set[str] | None:
    if "symbol" in query:
        return {query["symbol"].upper()}
    if "symbols" in query:
        try:
            return {str(s).upper() for s in json.loads(query["symbols"])}
        except (ValueError, TypeError):
            return set()
    return None


def _generated_info(market: Market) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": market.now_ns // 10**6,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [_symbol_info(spec) for spec in market.instruments],
    }


def _plain(value: Decimal) -> str:
    return f"{value:.8f}"


def _symbol_info(spec: InstrumentSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "isSpotTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _plain(spec.tick),
             "maxPrice": "1000000.00000000", "tickSize": _plain(spec.tick)},
            {"filterType": "LOT_SIZE", "minQty": _plain(spec.lot), "maxQty": "9000000.00000000",
             "stepSize": _plain(spec.lot)},
            {"filterType": "MIN_NOTIONAL", "minNotional": _plain(spec.min_notional),
             "applyToMarket": True, "avgPriceMins": 5},
        ],
    }  # fmt: skip
