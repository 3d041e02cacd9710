"""The paper venue's account: Binance orders, balances and trades over the venue simulation.

Matching is :class:`~rrr_live.execution.venue.SimulatedVenue` (fees, latency, partial fills,
queue position), fed from the same tape events the market-data side sends. The venue's client id
for an order is its Binance ``orderId`` (``newClientOrderId`` only has to be unique among open
orders; the simulation wants ids unique forever). Quantities are exact decimals on the
instrument's grid; commissions are charged in the quote asset.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rrr_live.domain.events import ExecKind, ExecReport, Fill, Liquidity, TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind
from rrr_live.domain.orders import OrderType, Side, TimeInForce
from rrr_live.exchange.paper.errors import BinanceError
from rrr_live.exchange.tape import BOOK_ONLY, DEPTH, Tape, TapeEvent
from rrr_live.execution.models import FeeModel, LatencyModel
from rrr_live.execution.venue import OrderRequest, SimulatedVenue, VenueReport
from rrr_live.feeds.errors import Rejected
from rrr_live.feeds.units import InstrumentScales, Scale
from rrr_live.venue.model import BINANCE_STATUS

Z = Decimal(0)
_STATUS = BINANCE_STATUS
_EXEC = {
    ExecKind.ACCEPTED: "NEW",
    ExecKind.FILL: "TRADE",
    ExecKind.CANCELED: "CANCELED",
    ExecKind.EXPIRED: "EXPIRED",
    ExecKind.REJECTED: "REJECTED",
    ExecKind.REPLACED: "REPLACED",
}


def fmt(value: Decimal) -> str:
    """Binance's decimal strings: eight places."""
    return f"{value:.8f}"


_SHARED_SCALES: dict[Decimal, Scale] = {}  # by grid step: symbols on one grid share a cache


@dataclass(frozen=True)
class Asset:
    """One symbol's assets and grid (from the tape's instruments or its exchangeInfo)."""

    instrument: Instrument
    base: str
    quote: str
    scales: InstrumentScales = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the feed's exact string -> ticks/lots conversion (cached): the tape's book levels
        # are converted per event, so Decimal here would cost the venue most of its time
        object.__setattr__(self, "scales", InstrumentScales(self.instrument, _SHARED_SCALES))


@dataclass
class PaperOrder:
    """A Binance order as the account sees it."""

    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    tif: str
    price: Decimal
    orig_qty: Decimal
    time_ms: int
    status: str = "NEW"
    executed: Decimal = Z
    quote: Decimal = Z
    update_ms: int = 0
    lock_left: Decimal = Z  # what is still locked for this order (quote for buys, base for sells)
    lock_price: Decimal = Z

    @property
    def is_open(self) -> bool:
        """Whether the order can still trade."""
        return self.status in ("NEW", "PARTIALLY_FILLED")

    def view(self) -> dict[str, Any]:
        """The ``GET /api/v3/order`` body."""
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_id, "price": fmt(self.price),
            "origQty": fmt(self.orig_qty), "executedQty": fmt(self.executed),
            "cummulativeQuoteQty": fmt(self.quote), "status": self.status,
            "timeInForce": self.tif, "type": self.type, "side": self.side,
            "stopPrice": fmt(Z), "icebergQty": fmt(Z), "time": self.time_ms,
            "updateTime": self.update_ms or self.time_ms, "isWorking": True,
            "workingTime": self.time_ms, "origQuoteOrderQty": fmt(Z),
            "selfTradePreventionMode": "NONE",
        }  # fmt: skip


@dataclass
class Balance:
    """Free and locked amounts of one asset."""

    free: Decimal = Z
    locked: Decimal = Z


Listener = Callable[[dict[str, Any]], None]


@dataclass
class NewOrder:
    """A validated new order (decimals on the grid)."""

    symbol: str
    side: str
    type: str
    tif: str
    qty: Decimal
    price: Decimal | None
    client_id: str


@dataclass
class PaperAccount:
    """One account on the paper venue (see the module docstring).

    Args:
        assets: tradable symbols.
        balances: starting free balances by asset.
        fees: maker/taker fee model.
        latency: order-to-venue latency (event time).
    """

    assets: dict[str, Asset]
    balances: dict[str, Balance] = field(default_factory=dict)
    fees: FeeModel = field(default_factory=FeeModel)
    latency: LatencyModel = field(default_factory=LatencyModel)
    now_ns: int = 0

    def __post_init__(self) -> None:
        self.venue = SimulatedVenue(
            [a.instrument for a in self.assets.values()], self.fees, self.latency
        )
        self.orders: dict[int, PaperOrder] = {}
        self.open_by_client: dict[str, int] = {}
        self.by_client: dict[str, int] = {}  # latest order under each client id
        self.trades: list[dict[str, Any]] = []
        self._trades_by_order: dict[int, list[dict[str, Any]]] = {}
        self.listeners: list[Listener] = []
        self._next_order = 1
        self._next_trade = 1
        self._placing = 0  # the order whose rejection is the REST answer (no event for it)

    # ---------------------------------------------------------------- market data
    def on_tape(self, event: TapeEvent) -> None:
        """Feed one replayed event (book changes and trades move the simulation)."""
        asset = self.assets.get(event.symbol)
        self.now_ns = max(self.now_ns, event.ts_ns)
        if asset is None:
            return
        if event.channel in (DEPTH, BOOK_ONLY) and (event.bids is not None or event.snapshot):
            kind = BookUpdateKind.SNAPSHOT if event.snapshot else BookUpdateKind.DIFF
            update = BookUpdate(
                kind, event.symbol, event.ts_ns, _levels(asset.scales, event.bids or ()),
                _levels(asset.scales, event.asks or ()), event.first_seq, event.last_seq,
            )  # fmt: skip
            self._apply(self.venue.on_market(update))
        elif event.channel == "trade":
            body = json.loads(event.payload)
            aggressor = Side.SELL if body.get("m") else Side.BUY
            tick = TradeTick(
                event.ts_ns, event.symbol, *_levels(asset.scales, ((body["p"], body["q"]),))[0],
                aggressor, int(body.get("t", 0)),
            )  # fmt: skip
            self._apply(self.venue.on_market(tick))

    def best(self, symbol: str, side: Side) -> Decimal | None:
        """The best price on ``side`` of the simulated book (None when empty)."""
        level = self.venue.engines[symbol].book.best(side)
        if level is None:
            return None
        return self.assets[symbol].instrument.ticks_to_decimal(level[0])

    # ------------------------------------------------------------------- requests
    def place(self, new: NewOrder) -> PaperOrder:
        """Lock funds, submit to the simulation, process what arrives now; return the order.

        Raises:
            BinanceError: insufficient balance, duplicate client id, or an immediate rejection.
        """
        if new.client_id in self.open_by_client:
            raise BinanceError(400, -2010, "Duplicate order sent.")
        asset = self.assets[new.symbol]
        lock_asset, lock, lock_price = self._lock_needed(new, asset)
        bal = self.balances.setdefault(lock_asset, Balance())
        if bal.free < lock:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        ms = self.now_ns // 1_000_000
        order = PaperOrder(
            self._next_order, new.client_id, new.symbol, new.side, new.type, new.tif,
            new.price or Z, new.qty, ms, lock_left=lock, lock_price=lock_price,
        )  # fmt: skip
        self._next_order += 1
        request = _request(order, asset.instrument, new)
        self.venue.submit(request, self.now_ns)
        bal.free -= lock
        bal.locked += lock
        self.orders[order.order_id] = order
        self.open_by_client[order.client_id] = order.order_id
        self.by_client[order.client_id] = order.order_id
        self._placing = order.order_id
        try:
            self._apply(self.venue.advance(self.now_ns))
        finally:
            self._placing = 0
        if order.status == "REJECTED":
            raise BinanceError(
                400, -2010, _reject_msg(self.venue.order(str(order.order_id)).reason)
            )
        return order

    def cancel(self, order: PaperOrder) -> PaperOrder:
        """Cancel an open order now (answered as the simulation processes it).

        Raises:
            BinanceError: -2011 when the order is not open.
        """
        if not order.is_open:
            raise BinanceError(400, -2011, "Unknown order sent.")
        self.venue.cancel(str(order.order_id), self.now_ns)
        self._apply(self.venue.advance(self.now_ns))
        return order

    def find(self, order_id: int | None, client_id: str | None, symbol: str) -> PaperOrder:
        """The order by ``orderId`` or ``origClientOrderId`` (the latest with that id).

        Raises:
            BinanceError: -2013 when there is none.
        """
        oid = order_id if order_id is not None else self.by_client.get(client_id or "")
        order = self.orders.get(oid) if oid is not None else None
        if order is None or order.symbol != symbol:
            raise BinanceError(400, -2013, "Order does not exist.")
        return order

    @property
    def next_order_id(self) -> int:
        """The ``orderId`` the next order gets."""
        return self._next_order

    def trades_of(self, order_id: int) -> list[dict[str, Any]]:
        """The trades of one order, oldest first."""
        return list(self._trades_by_order.get(order_id, ()))

    def _lock_needed(self, new: NewOrder, asset: Asset) -> tuple[str, Decimal, Decimal]:
        if new.side == "SELL":
            return asset.base, new.qty, Z
        price = new.price if new.price is not None else self._sweep_price(new.symbol, new.qty)
        if price is None:
            raise BinanceError(400, -2010, "Market is closed.")
        return asset.quote, price * new.qty, price

    def _sweep_price(self, symbol: str, qty: Decimal) -> Decimal | None:
        """The worst ask a market buy of ``qty`` reaches now (what it locks per unit).

        The engine may fill deeper when our earlier takes still hide liquidity; the excess is
        charged to free balance at the fill.
        """
        inst = self.assets[symbol].instrument
        need, worst = inst.size_to_lots(qty), None
        for level in self.venue.engines[symbol].book.levels(Side.SELL):
            worst, need = level[0], need - level[1]
            if need <= 0:
                break
        return None if worst is None else inst.ticks_to_decimal(worst)

    # ------------------------------------------------------------------- reports
    def _apply(self, reports: list[VenueReport]) -> None:
        for vr in reports:
            order = self.orders[int(vr.client_id)]
            report = vr.report
            if report.fill is not None:
                self._fill(order, report.fill)
            order.status = _STATUS[report.status]
            order.update_ms = report.ts_ns // 1_000_000
            if not order.is_open:
                self._release(order)
            answered = report.kind is ExecKind.REJECTED and order.order_id == self._placing
            if report.kind in _EXEC and not answered:
                self._emit(order, report)

    def _fill(self, order: PaperOrder, fill: Fill) -> None:
        asset = self.assets[order.symbol]
        inst = asset.instrument
        px, qty = inst.ticks_to_decimal(fill.price_ticks), inst.lot_size * fill.qty_lots
        fee = Decimal(repr(fill.fee)).quantize(Decimal("1e-8"))
        base, quote = (
            self.balances.setdefault(asset.base, Balance()),
            self.balances.setdefault(asset.quote, Balance()),
        )
        if order.side == "BUY":
            release = min(order.lock_left, order.lock_price * qty)
            quote.locked -= release
            quote.free += release - px * qty - fee
            base.free += qty
        else:
            release = min(order.lock_left, qty)
            base.locked -= release
            base.free -= qty - release
            quote.free += px * qty - fee
        order.lock_left -= release
        order.executed += qty
        order.quote += px * qty
        trade = {
            "symbol": order.symbol, "id": self._next_trade, "orderId": order.order_id,
            "orderListId": -1, "price": fmt(px), "qty": fmt(qty), "quoteQty": fmt(px * qty),
            "commission": fmt(fee), "commissionAsset": asset.quote,
            "time": fill.ts_ns // 1_000_000, "isBuyer": order.side == "BUY",
            "isMaker": fill.liquidity is Liquidity.MAKER, "isBestMatch": True,
        }  # fmt: skip
        self._next_trade += 1
        self.trades.append(trade)
        self._trades_by_order.setdefault(order.order_id, []).append(trade)

    def _release(self, order: PaperOrder) -> None:
        self.open_by_client.pop(order.client_id, None)
        if order.lock_left:
            asset = self.assets[order.symbol]
            bal = self.balances[asset.quote if order.side == "BUY" else asset.base]
            bal.locked -= order.lock_left
            bal.free += order.lock_left
            order.lock_left = Z

    def _emit(self, order: PaperOrder, report: ExecReport) -> None:
        if not self.listeners:
            return
        event = execution_report(order, report, self.trades[-1] if report.fill else None)
        position = self.position_event(report.ts_ns // 1_000_000, order.symbol)
        for listener in list(self.listeners):
            listener(event)
            if report.fill is not None or report.kind is ExecKind.ACCEPTED:
                listener(position)

    def position_event(self, ms: int, symbol: str) -> dict[str, Any]:
        """``outboundAccountPosition`` for the two assets of ``symbol``."""
        asset = self.assets[symbol]
        rows = []
        for name in (asset.base, asset.quote):
            bal = self.balances.setdefault(name, Balance())
            rows.append({"a": name, "f": fmt(bal.free), "l": fmt(bal.locked)})
        return {"e": "outboundAccountPosition", "E": ms, "u": ms, "B": rows}


def execution_report(
    order: PaperOrder, report: ExecReport, trade: dict[str, Any] | None
) -> dict[str, Any]:
    """Binance's ``executionReport`` user-data event for one simulation report."""
    t = trade or {}
    ms = report.ts_ns // 1_000_000
    return {
        "e": "executionReport", "E": ms, "s": order.symbol, "c": order.client_id,
        "S": order.side, "o": order.type, "f": order.tif, "q": fmt(order.orig_qty),
        "p": fmt(order.price), "P": fmt(Z), "F": fmt(Z), "g": -1, "C": "",
        "x": _EXEC[report.kind], "X": order.status, "r": "NONE", "i": order.order_id,
        "l": t.get("qty", fmt(Z)), "z": fmt(order.executed), "L": t.get("price", fmt(Z)),
        "n": t.get("commission", "0"), "N": t.get("commissionAsset"), "T": ms,
        "t": t.get("id", -1), "v": 0, "I": 0, "w": order.is_open, "m": t.get("isMaker", False),
        "M": False, "O": order.time_ms, "Z": fmt(order.quote),
        "Y": t.get("quoteQty", fmt(Z)), "Q": fmt(Z), "W": order.time_ms, "V": "NONE",
    }  # fmt: skip


def _levels(
    sc: InstrumentScales, levels: tuple[tuple[str, str], ...]
) -> tuple[tuple[int, int], ...]:
    try:
        return tuple((sc.price(p), sc.size(s)) for p, s in levels)
    except Rejected:  # off the grid: the instrument rounds it, as before
        inst = sc.instrument
        return tuple((inst.price_to_ticks(p), inst.size_to_lots(s)) for p, s in levels)


def _request(order: PaperOrder, inst: Instrument, new: NewOrder) -> OrderRequest:
    side = Side.BUY if new.side == "BUY" else Side.SELL
    tif = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}[new.tif]
    is_market = new.type == "MARKET"
    return OrderRequest(
        str(order.order_id), new.symbol, side,
        OrderType.MARKET if is_market else OrderType.LIMIT, inst.size_to_lots(new.qty),
        None if is_market else inst.price_to_ticks(new.price or Z),
        TimeInForce.IOC if is_market else tif, post_only=new.type == "LIMIT_MAKER",
    )  # fmt: skip


def _reject_msg(reason: str) -> str:
    if "post" in reason.lower():
        return "Order would immediately match and take."
    return f"Order rejected: {reason}"


def assets_of(tape: Tape) -> dict[str, Asset]:
    """Symbols and grids from the tape's instruments, or its recorded ``exchangeInfo``."""
    out: dict[str, Asset] = {}
    for spec in tape.instruments:
        inst = Instrument.create(spec.symbol, spec.tick, spec.lot, spec.min_notional, spec.quote)
        out[spec.symbol] = Asset(inst, spec.base, spec.quote)
    recorded = tape.rest.get("exchangeInfo")
    if not out and recorded is not None:
        for sym in json.loads(recorded).get("symbols", []):
            filters = {f["filterType"]: f for f in sym.get("filters", [])}
            notional = filters.get("NOTIONAL", filters.get("MIN_NOTIONAL", {}))
            inst = Instrument.create(
                sym["symbol"], filters["PRICE_FILTER"]["tickSize"],
                filters["LOT_SIZE"]["stepSize"], notional.get("minNotional", "0"),
                sym["quoteAsset"],
            )  # fmt: skip
            out[sym["symbol"]] = Asset(inst, sym["baseAsset"], sym["quoteAsset"])
    return out
