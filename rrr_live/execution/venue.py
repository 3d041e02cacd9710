"""The one venue simulation: matching engines per symbol behind client order ids.

:class:`SimulatedVenue` is what a venue does, without any I/O: it takes orders and cancels
under the client's ids, is fed market-data events (:class:`~rrr_live.domain.market.BookUpdate`
snapshots and diffs, :class:`~rrr_live.domain.events.TradeTick`) in event time, and answers
with execution reports (fills included) tagged with the client id. One
:class:`~rrr_live.execution.matching.MatchingEngine` per symbol applies the fee, latency and
queue models (its docstring has the conventions). An async server (the paper venue) drives it
by calling these methods from its message handlers with an injected clock's time; the tick
backtest drives it in process through :class:`SimulatedBroker`.

A :class:`~rrr_live.domain.market.TopOfBook` carries no depth and does not move the simulated
book (venues that publish it publish depth too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rrr_live.domain.errors import TradingCoreError, UnknownOrderError
from rrr_live.domain.events import ExecReport, TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind, MarketEvent
from rrr_live.domain.orders import Order, OrderIdGenerator, OrderType, Side, TimeInForce
from rrr_live.execution.matching import MatchingEngine
from rrr_live.execution.models import FeeModel, LatencyModel


class VenueRequestError(TradingCoreError):
    """A request the venue cannot take (duplicate client id, unknown symbol or client id)."""


@dataclass(frozen=True, slots=True)
class VenueReport:
    """An execution report about the order the client calls ``client_id``."""

    client_id: str
    report: ExecReport


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as a client sends it (sizes in lots, prices in ticks of the instrument)."""

    client_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty_lots: int
    price_ticks: int | None = None
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False


class SimulatedVenue:
    """Matching engines for a set of instruments (see the module docstring).

    Args:
        instruments: the tradable instruments.
        fees: maker/taker fee model.
        latency: order-to-venue latency model.
        wait_for_open: park orders that reach an untradable book until it reopens.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        fees: FeeModel | None = None,
        latency: LatencyModel | None = None,
        wait_for_open: bool = False,
    ) -> None:
        self.engines = {
            inst.symbol: MatchingEngine(inst, fees, latency, wait_for_open) for inst in instruments
        }
        self._rank = {symbol: i for i, symbol in enumerate(self.engines)}
        self._travelling: set[str] = set()  # symbols whose engine has requests in flight
        self._ids = OrderIdGenerator()
        self._orders: dict[str, Order] = {}
        self._client: dict[int, str] = {}

    # --- requests ----------------------------------------------------------------------------
    def submit(self, request: OrderRequest, now_ns: int) -> Order:
        """Accept ``request`` for routing; it reaches its engine after the latency.

        Returns:
            The venue's order (status PENDING_NEW; its ``order_id`` is the venue's id).

        Raises:
            VenueRequestError: on a reused client id or an unknown symbol.
            ValueError: if the order itself is malformed.
        """
        if request.client_id in self._orders:
            raise VenueRequestError(f"client order id {request.client_id!r} already used")
        engine = self.engines.get(request.symbol)
        if engine is None:
            raise VenueRequestError(f"symbol {request.symbol!r} is not traded here")
        order = Order(
            self._ids.next_id(),
            request.symbol,
            request.side,
            request.order_type,
            request.qty_lots,
            request.price_ticks,
            request.tif,
            request.post_only,
            now_ns,
        )
        engine.submit(order, now_ns)
        self._travelling.add(request.symbol)
        self._orders[request.client_id] = order
        self._client[order.order_id] = request.client_id
        return order

    def cancel(self, client_id: str, now_ns: int) -> None:
        """Request cancellation of the client's order (answered on arrival)."""
        order = self.order(client_id)
        self.engines[order.symbol].cancel(order.order_id, now_ns)
        self._travelling.add(order.symbol)

    def replace(
        self, client_id: str, now_ns: int, qty_lots: int, price_ticks: int | None = None
    ) -> None:
        """Request a new total size and/or limit price (answered on arrival)."""
        order = self.order(client_id)
        self.engines[order.symbol].replace(order.order_id, now_ns, qty_lots, price_ticks)
        self._travelling.add(order.symbol)

    def order(self, client_id: str) -> Order:
        """Return the venue's view of the client's order.

        Raises:
            UnknownOrderError: if no order has that client id.
        """
        try:
            return self._orders[client_id]
        except KeyError:
            raise UnknownOrderError(f"unknown client order id {client_id!r}") from None

    def client_id(self, order_id: int) -> str:
        """Return the client id of the venue's order ``order_id``."""
        return self._client[order_id]

    def open_orders(self, symbol: str) -> list[Order]:
        """Return the resting orders of ``symbol`` in priority order."""
        return self.engines[symbol].open_orders()

    # --- market data and time ----------------------------------------------------------------
    def on_market(self, event: MarketEvent) -> list[VenueReport]:
        """Apply one market-data event and return the reports it caused."""
        engine = self.engines.get(event.symbol)
        if engine is None:
            return []
        if isinstance(event, BookUpdate):
            seq = event.last_seq or None
            if event.kind is BookUpdateKind.SNAPSHOT:
                reports = engine.on_snapshot(list(event.bids), list(event.asks), event.ts_ns, seq)
            else:
                changes = [(Side.BUY, p, n) for p, n in event.bids]
                changes += [(Side.SELL, p, n) for p, n in event.asks]
                reports = engine.on_diff(changes, event.ts_ns, seq)
        elif isinstance(event, TradeTick):
            reports = engine.on_trade(
                event.price_ticks, event.size_lots, event.aggressor, event.ts_ns
            )
        else:
            reports = engine.advance(event.ts_ns)
        return self._tag(reports)

    def advance(self, now_ns: int) -> list[VenueReport]:
        """Process every in-flight request that has arrived by ``now_ns`` (all symbols).

        Only engines with requests in flight are visited (in universe order, as a pass over
        all would): an order on one of 1000 symbols costs one engine, not 1000. The others
        catch up with event time on their next market event.
        """
        out: list[VenueReport] = []
        for symbol in sorted(self._travelling, key=self._rank.__getitem__):
            engine = self.engines[symbol]
            out.extend(self._tag(engine.advance(now_ns)))
            if not engine.in_flight:
                self._travelling.discard(symbol)
        return out

    def _tag(self, reports: Sequence[ExecReport]) -> list[VenueReport]:
        return [VenueReport(self._client[r.order_id], r) for r in reports]


class SimulatedBroker:
    """The in-process broker of the tick backtest: our integer order ids on a simulated venue.

    Args:
        venue: the venue simulation.
    """

    def __init__(self, venue: SimulatedVenue) -> None:
        self.venue = venue

    def send(self, order_id: int, request: OrderRequest, now_ns: int) -> Order:
        """Submit ``request`` as our order ``order_id`` (its client id is ``str(order_id)``)."""
        if request.client_id != str(order_id):
            raise ValueError(f"client id {request.client_id!r} is not order id {order_id}")
        return self.venue.submit(request, now_ns)

    def cancel(self, order_id: int, now_ns: int) -> None:
        """Request cancellation of our order ``order_id``."""
        self.venue.cancel(str(order_id), now_ns)

    def on_market(self, event: MarketEvent) -> list[tuple[int, ExecReport]]:
        """Feed one market event; return ``(our order id, report)`` pairs."""
        return [(int(r.client_id), r.report) for r in self.venue.on_market(event)]

    def advance(self, now_ns: int) -> list[tuple[int, ExecReport]]:
        """Let time pass to ``now_ns``; return ``(our order id, report)`` pairs."""
        return [(int(r.client_id), r.report) for r in self.venue.advance(now_ns)]
