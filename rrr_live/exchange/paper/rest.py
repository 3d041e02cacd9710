"""The paper venue's REST order API: Binance's signed endpoints over :class:`PaperAccount`.

``POST/GET/DELETE /api/v3/order``, ``GET /api/v3/openOrders``, ``GET /api/v3/account`` and
``GET /api/v3/myTrades`` are SIGNED (``X-MBX-APIKEY`` header; ``timestamp``, optional
``recvWindow`` and ``signature`` in the query string or the form body). Every ``/api/`` request,
public ones included, counts against the request-weight limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from rrr_live.domain.orders import Side
from rrr_live.exchange.paper.account import NewOrder, PaperAccount, PaperOrder, fmt
from rrr_live.exchange.paper.auth import ApiKeys, signature_ok, timestamp_error
from rrr_live.exchange.paper.errors import BinanceError
from rrr_live.exchange.paper.limits import RateLimits
from rrr_live.exchange.venue import dumps

CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_TIF = ("GTC", "IOC", "FOK")
_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER")
# Binance's weights (openOrders: 6 for one symbol, 80 for all).
_WEIGHT = {"/api/v3/exchangeInfo": 20, "/api/v3/account": 20, "/api/v3/myTrades": 20,
           "/api/v3/depth": 5}  # fmt: skip

Answer = tuple[int, bytes, dict[str, str]]


@dataclass
class PaperRequest:
    """One HTTP request as the paper venue reads it."""

    method: str
    path: str
    query: str
    body: str
    headers: Mapping[str, str]

    def params(self) -> dict[str, str]:
        """Query and form parameters (the body wins on a repeated name)."""
        out = dict(parse_qsl(self.query, keep_blank_values=True))
        out.update(parse_qsl(self.body, keep_blank_values=True))
        return out


class PaperRest:
    """Binance's spot order endpoints for one account.

    Args:
        account: the account traded.
        keys: the account's API key pair.
        server_ms: the venue's time in milliseconds (the replay's event time).
        limits: request-weight and order limits.
    """

    PATHS = ("/api/v3/order", "/api/v3/openOrders", "/api/v3/account", "/api/v3/myTrades")

    def __init__(
        self,
        account: PaperAccount,
        keys: ApiKeys,
        server_ms: Callable[[], int],
        limits: RateLimits | None = None,
    ) -> None:
        self.account, self.keys, self.server_ms = account, keys, server_ms
        self.limits = limits or RateLimits()

    def handle(self, request: PaperRequest) -> Answer | None:
        """Answer a request to one of :attr:`PATHS`; None for any other path."""
        if request.path not in self.PATHS:
            return None
        try:
            headers = self.limits.admit(*_cost(request))
            self._authenticate(request)
            return 200, dumps(self._dispatch(request)), headers
        except BinanceError as err:
            return error_answer(err)

    def ws_call(self, method: str, path: str, fields: Mapping[str, str]) -> Any:
        """Answer an authenticated WebSocket API order request as its REST request.

        The same limits and the same dispatch as :meth:`handle`; the caller checked the key and
        the WebSocket API signature.

        Raises:
            BinanceError: what the REST endpoint would answer as an error.
        """
        request = PaperRequest(method, path, urlencode(fields), "", {})
        self.limits.admit(*_cost(request))
        return self._dispatch(request)

    def admit_public(self, path: str) -> Answer | None:
        """Count a public ``/api/`` request; an error answer when over the limit."""
        try:
            self.limits.admit(_WEIGHT.get(path, 1))
        except BinanceError as err:
            return error_answer(err)
        return None

    def _authenticate(self, request: PaperRequest) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        if key != self.keys.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        params = request.params()
        check_time(params, self.server_ms())
        if not signature_ok(self.keys.secret, request.query, request.body):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")

    def _dispatch(self, request: PaperRequest) -> Any:
        params, path, method = request.params(), request.path, request.method
        acc = self.account
        if path == "/api/v3/order":
            if method == "POST":
                kind = params.get("newOrderRespType", "FULL").upper()
                if kind not in ("ACK", "RESULT", "FULL"):
                    raise BinanceError(
                        400, -1100, "Illegal characters found in parameter 'newOrderRespType'."
                    )
                return order_ack(acc.place(parse_order(params, acc)), acc, kind)
            order = acc.find(*_order_ref(params, acc))
            if method == "DELETE":
                return acc.cancel(order).view() | {"origClientOrderId": order.client_id}
            return order.view()
        if path == "/api/v3/openOrders":
            symbol = params.get("symbol")
            if symbol is not None:
                _symbol(params, acc)
            open_ids = sorted(acc.open_by_client.values())  # open orders only, by order id
            return [
                o.view() for o in map(acc.orders.__getitem__, open_ids)
                if o.is_open and symbol in (None, o.symbol)
            ]  # fmt: skip
        if path == "/api/v3/account":
            return account_view(acc, self.server_ms())
        return my_trades(params, acc)


def _cost(request: PaperRequest) -> tuple[int, int]:
    if request.path == "/api/v3/order":
        return (1, 1) if request.method == "POST" else (4 if request.method == "GET" else 1, 0)
    if request.path == "/api/v3/openOrders":
        return (6 if "symbol=" in request.query + request.body else 80), 0
    return _WEIGHT.get(request.path, 1), 0


def error_answer(err: BinanceError) -> Answer:
    """Binance's error body with ``Retry-After`` when the venue asks to wait."""
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after else {}
    return err.status, dumps({"code": err.code, "msg": err.msg}), headers


def _mandatory(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        raise BinanceError(400, -1102, msg)
    return value


def _int(params: Mapping[str, str], name: str, default: int | None = None) -> int:
    raw = params.get(name) if default is not None else _mandatory(params, name)
    if raw is None:
        return default if default is not None else 0
    try:
        return int(raw)
    except ValueError:
        raise BinanceError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def check_time(params: Mapping[str, str], server_ms: int) -> None:
    """Binance's ``timestamp``/``recvWindow`` rule (-1102, -1131, -1021)."""
    timestamp = _int(params, "timestamp")
    window = _int(params, "recvWindow", 5000)
    if window > 60_000:
        raise BinanceError(400, -1131, "recvWindow must be less than 60000")
    problem = timestamp_error(timestamp, window, server_ms)
    if problem:
        raise BinanceError(400, -1021, problem)


def _symbol(params: Mapping[str, str], acc: PaperAccount) -> str:
    symbol = _mandatory(params, "symbol").upper()
    if symbol not in acc.assets:
        raise BinanceError(400, -1121, "Invalid symbol.")
    return symbol


def _decimal(params: Mapping[str, str], name: str) -> Decimal:
    raw = _mandatory(params, name)
    if not _DECIMAL.match(raw):
        msg = f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."  # noqa: E501
        raise BinanceError(400, -1100, msg)
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None


def _choice(
    params: Mapping[str, str], name: str, legal: tuple[str, ...], code: int, msg: str
) -> str:
    value = _mandatory(params, name).upper()
    if value not in legal:
        raise BinanceError(400, code, msg)
    return value


def parse_order(params: Mapping[str, str], acc: PaperAccount) -> NewOrder:
    """Validate a new order's parameters and filters (Binance's codes).

    Raises:
        BinanceError: -1102/-1100/-1116/-1115/-1117/-1121 bad parameters, -1013 filter failure.
    """
    symbol = _symbol(params, acc)
    side = _choice(params, "side", ("BUY", "SELL"), -1117, "Invalid side.")
    kind = _choice(params, "type", _TYPES, -1116, "Invalid orderType.")
    qty = _decimal(params, "quantity")
    price: Decimal | None = None
    tif = "GTC"
    if kind != "MARKET":
        price = _decimal(params, "price")
        if kind == "LIMIT":
            tif = _choice(params, "timeInForce", _TIF, -1115, "Invalid timeInForce.")
    elif "price" in params:
        raise BinanceError(400, -1106, "Parameter 'price' sent when not required.")
    client_id = params.get("newClientOrderId") or f"rrrpaper-{acc.next_order_id}"
    if not CLIENT_ID.match(client_id):
        msg = "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'."  # noqa: E501
        raise BinanceError(400, -1100, msg)
    _filters(acc, symbol, side, qty, price)
    return NewOrder(symbol, side, kind, "IOC" if kind == "MARKET" else tif, qty, price, client_id)


def _filters(
    acc: PaperAccount, symbol: str, side: str, qty: Decimal, price: Decimal | None
) -> None:
    inst = acc.assets[symbol].instrument
    if price is not None and (price <= 0 or price % inst.tick_size):
        raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")
    if qty < inst.lot_size or qty % inst.lot_size:
        raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
    ref = price if price is not None else acc.best(symbol, Side.SELL if side == "BUY" else Side.BUY)
    if ref is not None and ref * qty < inst.min_notional:
        raise BinanceError(400, -1013, "Filter failure: NOTIONAL")


def _order_ref(params: Mapping[str, str], acc: PaperAccount) -> tuple[int | None, str | None, str]:
    symbol = _symbol(params, acc)
    order_id = params.get("orderId")
    client_id = params.get("origClientOrderId")
    if order_id is None and client_id is None:
        msg = "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        raise BinanceError(400, -1102, msg)
    return (_int(params, "orderId") if order_id is not None else None), client_id, symbol


def order_ack(order: PaperOrder, acc: PaperAccount, kind: str = "FULL") -> dict[str, Any]:
    """The answer to a new order: ``ACK``, ``RESULT`` or ``FULL`` (with the fills made at once)."""
    if kind == "ACK":
        return {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
                "clientOrderId": order.client_id, "transactTime": order.time_ms}  # fmt: skip
    fills = [
        {"price": t["price"], "qty": t["qty"], "commission": t["commission"],
         "commissionAsset": t["commissionAsset"], "tradeId": t["id"]}
        for t in acc.trades_of(order.order_id)
    ]  # fmt: skip
    body = order.view()
    for drop in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking", "origQuoteOrderQty"):
        body.pop(drop)
    body["transactTime"] = order.time_ms
    return body if kind == "RESULT" else body | {"fills": fills}


def account_view(acc: PaperAccount, ms: int) -> dict[str, Any]:
    """The ``GET /api/v3/account`` body."""
    balances = [
        {"asset": name, "free": fmt(b.free), "locked": fmt(b.locked)}
        for name, b in sorted(acc.balances.items())
    ]
    return {
        "makerCommission": 0, "takerCommission": 0, "buyerCommission": 0,
        "sellerCommission": 0, "commissionRates": {"maker": fmt(Decimal(repr(acc.fees.maker_rate))),
        "taker": fmt(Decimal(repr(acc.fees.taker_rate))), "buyer": fmt(Decimal(0)),
        "seller": fmt(Decimal(0))}, "canTrade": True, "canWithdraw": False, "canDeposit": False,
        "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
        "updateTime": ms, "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"],
        "uid": 1,
    }  # fmt: skip


def my_trades(params: Mapping[str, str], acc: PaperAccount) -> list[dict[str, Any]]:
    """``GET /api/v3/myTrades``: the symbol's trades (``orderId``, ``fromId``, ``limit``)."""
    symbol = _symbol(params, acc)
    order_id = _int(params, "orderId", -1)
    from_id = _int(params, "fromId", 0)
    limit = min(_int(params, "limit", 500), 1000)
    rows = [
        t for t in acc.trades
        if t["symbol"] == symbol and t["id"] >= from_id and order_id in (-1, t["orderId"])
    ]  # fmt: skip
    return rows[:limit] if from_id else rows[-limit:]
