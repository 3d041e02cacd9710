"""The :class:`~rrr_live.venue.broker.Broker` protocol over the in-process venue simulation.

The backtest's :class:`~rrr_live.execution.venue.SimulatedBroker` keeps its integer-id,
synchronous interface (the tick loop's hot path); this adapter gives the same
:class:`~rrr_live.execution.venue.SimulatedVenue` the runner's broker interface (decimal sizes
and prices, client ids, venue state names), so one strategy driver can run on either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from rrr_live.domain.errors import UnknownOrderError
from rrr_live.domain.market import MarketEvent
from rrr_live.domain.orders import Order, OrderStatus, OrderType, Side, TimeInForce
from rrr_live.execution.venue import OrderRequest, SimulatedVenue, VenueReport
from rrr_live.venue.broker import Answer
from rrr_live.venue.model import BINANCE_STATUS, IN_FLIGHT, OrderIntent, OrderState
from rrr_live.venue.rest import VenueRejected

# still travelling (the latency model): the broker does not know the outcome yet
_STATE = {**BINANCE_STATUS, OrderStatus.PENDING_NEW: IN_FLIGHT}


class SimulatedVenueBroker:
    """:class:`~rrr_live.venue.broker.Broker` on a :class:`SimulatedVenue` (event time).

    Args:
        venue: the venue simulation.
        now_ns: the event time requests are stamped with (advanced by :meth:`on_market`).
    """

    def __init__(self, venue: SimulatedVenue, now_ns: int = 0) -> None:
        self.venue = venue
        self.now_ns = now_ns
        self.reports: list[VenueReport] = []  # what requests caused at once (zero latency)

    async def submit(self, intent: OrderIntent) -> OrderState:
        """Send ``intent`` to the simulation under its client id."""
        inst = self.venue.engines[intent.symbol].instrument
        price = inst.price_to_ticks(intent.price) if intent.price is not None else None
        request = OrderRequest(
            intent.client_id,
            intent.symbol,
            Side.BUY if intent.side == "BUY" else Side.SELL,
            OrderType.LIMIT if intent.order_type == "LIMIT" else OrderType.MARKET,
            inst.size_to_lots(intent.qty),
            price,
            TimeInForce[intent.tif],
        )
        order = self.venue.submit(request, self.now_ns)
        self.reports += self.venue.advance(self.now_ns)  # arrives now unless latency says later
        return self._state(intent.client_id, order)

    async def submit_many(
        self, intents: Sequence[OrderIntent], concurrency: int, clock: Callable[[], int]
    ) -> list[Answer]:
        """Submit in order (the simulation answers at once; ``concurrency`` has no use here)."""
        out = []
        for intent in intents:
            sent = clock()
            try:
                outcome: OrderState | VenueRejected = await self.submit(intent)
            except VenueRejected as e:
                outcome = e
            out.append(Answer(outcome, sent, clock()))
        return out

    async def cancel(self, client_id: str) -> OrderState:
        """Request cancellation (answered when it arrives, after the latency)."""
        self.venue.cancel(client_id, self.now_ns)
        self.reports += self.venue.advance(self.now_ns)
        return self._state(client_id, self.venue.order(client_id))

    async def query(self, client_id: str) -> OrderState | None:
        """The simulation's view of one order (None: never submitted)."""
        try:
            return self._state(client_id, self.venue.order(client_id))
        except UnknownOrderError:
            return None

    async def open_orders(self) -> list[OrderState]:
        """Resting orders of every symbol."""
        out = []
        for symbol in sorted(self.venue.engines):
            for order in self.venue.open_orders(symbol):
                out.append(self._state(self.venue.client_id(order.order_id), order))
        return out

    def on_market(self, event: MarketEvent) -> list[VenueReport]:
        """Feed one market event (advancing the broker's time); return the venue's reports."""
        self.now_ns = max(self.now_ns, event.ts_ns)
        return self.venue.on_market(event)

    def _state(self, client_id: str, order: Order) -> OrderState:
        inst = self.venue.engines[order.symbol].instrument
        filled = inst.lot_size * order.filled_lots
        return OrderState(client_id, _STATE[order.status], order.order_id, Decimal(filled))


def client_ids(reports: Iterable[VenueReport]) -> list[str]:
    """The client ids a batch of reports is about, in order (tests and logs)."""
    return [r.client_id for r in reports]
