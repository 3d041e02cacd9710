"""Simulated venue: our orders against an exogenous L2 book, in event time.

Conventions (deterministic; the backtest, the paper venue and tests share them):

* **Latency.** ``submit``/``cancel``/``replace`` schedule an action that *arrives* at
  ``now + latency``. Actions are processed in ``(arrival, sequence)`` order by :meth:`advance`,
  which every market-data handler calls first, so an action arriving at or before a book update's
  time sees the book as it was before that update.
* **Taking liquidity.** An arriving order walks the opposite side best-first while the level
  price satisfies its limit (price priority; fills at the level price). The public book is not
  changed by our trades; instead the lots we took at a level are remembered until the feed next
  updates that level, so the same liquidity cannot be taken twice.
* **Resting orders.** A resting limit order joins the back of its level: its approximate queue
  position ``queue_ahead`` is the public size there at that moment. A public trade at our price
  first consumes ``queue_ahead`` then fills us; a level shrinking below ``queue_ahead`` moves us
  up (``queue_ahead = min(queue_ahead, new size)``); a trade through our price or an opposite
  quote crossing it fills us at our price as maker. Among our own orders: better price first,
  then earlier time (price-time priority). We never match against ourselves.
* **Order types.** MARKET (IOC/FOK) takes what exists and expires the rest; LIMIT IOC likewise;
  FOK fills completely or expires with no fill; post-only is rejected if it would take
  liquidity; GTC rests. A replace that raises the size or changes the price loses queue priority;
  a size reduction keeps it.
* **Rejections** (values, not exceptions): unknown symbol, untradable book, below minimum
  notional, post-only would cross. With ``wait_for_open=True`` a new order that arrives while the
  book is untradable (a closed session, a gap) is accepted and parked instead, and handled in
  arrival order right after the first update that makes the book tradable again (a
  market-on-open order); if it fails the checks then it expires with the reason.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from rrr_live.book.l2 import Level, OrderBook
from rrr_live.domain.errors import UnknownOrderError
from rrr_live.domain.events import ExecKind, ExecReport, Fill, Liquidity
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.orders import Order, OrderStatus, OrderType, Side, TimeInForce
from rrr_live.execution.models import FeeModel, LatencyModel


@dataclass(slots=True)
class _Resting:
    order: Order
    queue_ahead: int
    priority: int


@dataclass(order=True, slots=True)
class _Action:
    arrival_ns: int
    seq: int
    kind: str = field(compare=False)
    order_id: int = field(compare=False)
    order: Order | None = field(compare=False, default=None)
    qty_lots: int = field(compare=False, default=0)
    price_ticks: int | None = field(compare=False, default=None)


class MatchingEngine:
    """A simulated venue for one instrument.

    Args:
        instrument: the traded instrument.
        fees: maker/taker fee model.
        latency: order-to-venue latency model.
        wait_for_open: park new orders that arrive at an untradable book (see above).
    """

    def __init__(
        self,
        instrument: Instrument,
        fees: FeeModel | None = None,
        latency: LatencyModel | None = None,
        wait_for_open: bool = False,
    ) -> None:
        self.instrument = instrument
        self.book = OrderBook(instrument)
        self.fees = fees or FeeModel()
        self.latency = latency or LatencyModel()
        self.orders: dict[int, Order] = {}
        self._resting: dict[int, _Resting] = {}
        self._inflight: list[_Action] = []
        self._consumed: dict[tuple[Side, int], int] = {}
        self.wait_for_open = wait_for_open
        self._parked: list[Order] = []
        self._seq = 0
        self.now_ns = 0

    # --- order entry -------------------------------------------------------------------------
    def submit(self, order: Order, now_ns: int) -> None:
        """Send ``order`` (status PENDING_NEW); it reaches the venue after the latency."""
        if order.order_id in self.orders:
            raise ValueError(f"order id {order.order_id} already used")
        if order.status is not OrderStatus.PENDING_NEW:
            raise ValueError(f"order {order.order_id} must be PENDING_NEW to submit")
        self.orders[order.order_id] = order
        self._schedule(now_ns, "new", order.order_id, order=order)

    def cancel(self, order_id: int, now_ns: int) -> None:
        """Request cancellation of ``order_id`` (answered on arrival)."""
        self._known(order_id)
        self._schedule(now_ns, "cancel", order_id)

    def replace(self, order_id: int, now_ns: int, qty_lots: int, price_ticks: int | None) -> None:
        """Request a new total size and/or limit price for ``order_id`` (answered on arrival)."""
        self._known(order_id)
        self._schedule(now_ns, "replace", order_id, qty_lots=qty_lots, price_ticks=price_ticks)

    def open_orders(self) -> list[Order]:
        """Return our resting orders in priority order (best price, then time)."""
        return [r.order for r in self._sorted_resting(None)]

    def queue_ahead(self, order_id: int) -> int:
        """Return the approximate public size ahead of a resting order."""
        return self._resting[order_id].queue_ahead

    def _known(self, order_id: int) -> None:
        if order_id not in self.orders:
            raise UnknownOrderError(f"{self.instrument.symbol}: unknown order id {order_id}")

    def _schedule(
        self,
        now_ns: int,
        kind: str,
        order_id: int,
        order: Order | None = None,
        qty_lots: int = 0,
        price_ticks: int | None = None,
    ) -> None:
        self._seq += 1
        arrival = now_ns + self.latency.delay_ns(self._seq)
        action = _Action(arrival, self._seq, kind, order_id, order, qty_lots, price_ticks)
        heapq.heappush(self._inflight, action)

    # --- event time --------------------------------------------------------------------------
    @property
    def in_flight(self) -> bool:
        """Whether a request is still travelling to this engine (``advance`` has work)."""
        return bool(self._inflight)

    def advance(self, now_ns: int) -> list[ExecReport]:
        """Process every in-flight action that has arrived by ``now_ns``."""
        reports: list[ExecReport] = []
        while self._inflight and self._inflight[0].arrival_ns <= now_ns:
            action = heapq.heappop(self._inflight)
            self.now_ns = max(self.now_ns, action.arrival_ns)
            if action.kind == "new":
                assert action.order is not None
                reports.extend(self._on_new(action.order))
            elif action.kind == "cancel":
                reports.extend(self._on_cancel(action.order_id))
            else:
                reports.extend(
                    self._on_replace(action.order_id, action.qty_lots, action.price_ticks)
                )
        self.now_ns = max(self.now_ns, now_ns)
        return reports

    def on_snapshot(
        self, bids: list[Level], asks: list[Level], ts_ns: int, sequence: int | None = None
    ) -> list[ExecReport]:
        """Apply a book snapshot at ``ts_ns`` and return the resulting execution reports."""
        reports = self.advance(ts_ns)
        self.book.apply_snapshot(bids, asks, ts_ns, sequence)
        self._consumed.clear()
        for rest in self._resting.values():
            side = rest.order.side
            assert rest.order.price_ticks is not None
            rest.queue_ahead = min(
                rest.queue_ahead, self.book.size_at(side, rest.order.price_ticks)
            )
        reports.extend(self._match_crossing())
        reports.extend(self._release())
        return reports

    def on_diff(
        self, changes: list[tuple[Side, int, int]], ts_ns: int, sequence: int | None = None
    ) -> list[ExecReport]:
        """Apply a book diff at ``ts_ns`` and return the resulting execution reports."""
        reports = self.advance(ts_ns)
        if not self.book.apply_diff(changes, ts_ns, sequence):
            return reports
        for side, price, size in changes:
            self._consumed.pop((Side(side), price), None)
            for rest in self._resting.values():
                if rest.order.side is side and rest.order.price_ticks == price:
                    rest.queue_ahead = min(rest.queue_ahead, size)
        reports.extend(self._match_crossing())
        reports.extend(self._release())
        return reports

    def on_trade(
        self, price_ticks: int, size_lots: int, aggressor: Side, ts_ns: int
    ) -> list[ExecReport]:
        """Apply a public trade: it consumes queue ahead of our resting orders, then fills them."""
        reports = self.advance(ts_ns)
        remaining = size_lots
        for rest in self._sorted_resting(aggressor.opposite):
            order = rest.order
            assert order.price_ticks is not None
            through = (order.price_ticks - price_ticks) * int(order.side) > 0
            if through:
                take = order.leaves_lots
            elif order.price_ticks == price_ticks and remaining > 0:
                take = min(order.leaves_lots, max(0, remaining - rest.queue_ahead))
                rest.queue_ahead = max(0, rest.queue_ahead - remaining)
                remaining -= take
            else:
                continue
            if take > 0:
                reports.append(self._fill(order, take, order.price_ticks, Liquidity.MAKER))
        return reports

    # --- action handlers ---------------------------------------------------------------------
    def _reject(self, order: Order, reason: str) -> ExecReport:
        order.transition(OrderStatus.REJECTED, reason)
        return ExecReport(self.now_ns, order.order_id, ExecKind.REJECTED, order.status, reason)

    def _precheck(self, order: Order) -> str:
        if order.symbol != self.instrument.symbol:
            return f"symbol {order.symbol} not traded here ({self.instrument.symbol})"
        problem = self.book.untradable_reason()
        if problem:
            return f"book untradable: {problem}"
        ref = order.price_ticks
        if ref is None:
            best = self.book.best(order.side.opposite)
            ref = best[0] if best else 0
        if not self.instrument.meets_min_notional(ref, order.qty_lots):
            return f"below min notional {self.instrument.min_notional}"
        if order.post_only and self._crosses(order.side, order.price_ticks):
            return "post-only order would take liquidity"
        return ""

    def _on_new(self, order: Order) -> list[ExecReport]:
        problem = self._precheck(order)
        park = self.wait_for_open and problem.startswith("book untradable")
        if problem and not park:
            return [self._reject(order, problem)]
        order.transition(OrderStatus.ACCEPTED)
        reports = [ExecReport(self.now_ns, order.order_id, ExecKind.ACCEPTED, order.status)]
        if park:
            self._parked.append(order)
            return reports
        reports.extend(self._execute(order))
        return reports

    def _execute(self, order: Order) -> list[ExecReport]:
        if order.tif is TimeInForce.FOK and self._available(order) < order.qty_lots:
            order.transition(OrderStatus.EXPIRED, "fill-or-kill not fully fillable")
            return [self._report(order, ExecKind.EXPIRED)]
        return self._take(order) + self._finish(order)

    def _release(self) -> list[ExecReport]:
        """Handle parked orders once the book is tradable again (in arrival order)."""
        if not self._parked or self.book.untradable_reason():
            return []
        parked, self._parked = self._parked, []
        reports: list[ExecReport] = []
        for order in parked:
            problem = self._precheck(order)
            if problem:
                order.transition(OrderStatus.EXPIRED, problem)
                reports.append(self._report(order, ExecKind.EXPIRED))
            else:
                reports.extend(self._execute(order))
        return reports

    def _finish(self, order: Order) -> list[ExecReport]:
        if not order.status.is_open:
            return []
        if order.tif is TimeInForce.GTC:
            self._rest(order)
            return []
        order.transition(OrderStatus.EXPIRED, "unfilled remainder of immediate order")
        return [self._report(order, ExecKind.EXPIRED)]

    def _on_cancel(self, order_id: int) -> list[ExecReport]:
        order = self.orders[order_id]
        if not order.status.is_open:
            return [
                ExecReport(
                    self.now_ns, order_id, ExecKind.CANCEL_REJECTED, order.status, "order not open"
                )
            ]
        self._resting.pop(order_id, None)
        self._parked = [o for o in self._parked if o.order_id != order_id]
        order.transition(OrderStatus.CANCELED, "canceled by request")
        return [self._report(order, ExecKind.CANCELED)]

    def _on_replace(self, order_id: int, qty: int, price: int | None) -> list[ExecReport]:
        order = self.orders[order_id]
        new_price = order.price_ticks if price is None else price
        problem = self._replace_problem(order, qty, new_price)
        if problem:
            return [
                ExecReport(self.now_ns, order_id, ExecKind.REPLACE_REJECTED, order.status, problem)
            ]
        keeps_priority = new_price == order.price_ticks and qty <= order.qty_lots
        order.amend(qty, new_price)
        reports = [self._report(order, ExecKind.REPLACED)]
        if keeps_priority:
            return reports
        self._resting.pop(order_id, None)
        reports.extend(self._take(order))
        reports.extend(self._finish(order))
        return reports

    def _replace_problem(self, order: Order, qty: int, price: int | None) -> str:
        if not order.status.is_open:
            return "order not open"
        if order in self._parked:
            return "order waits for the book to become tradable"
        if order.order_type is not OrderType.LIMIT or price is None:
            return "only resting limit orders can be replaced"
        if qty <= order.filled_lots:
            return f"new size {qty} not above filled size {order.filled_lots}"
        if not self.instrument.meets_min_notional(price, qty):
            return f"below min notional {self.instrument.min_notional}"
        if order.post_only and self._crosses(order.side, price):
            return "post-only order would take liquidity"
        return ""

    # --- matching ----------------------------------------------------------------------------
    def _crosses(self, side: Side, price: int | None) -> bool:
        best = self.book.best(side.opposite)
        if best is None:
            return False
        return price is None or (best[0] - price) * int(side) <= 0

    def _marketable_levels(self, order: Order) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        opposite = order.side.opposite
        for price, size in self.book.levels(opposite):
            if order.price_ticks is not None and (price - order.price_ticks) * int(order.side) > 0:
                break
            free = size - self._consumed.get((opposite, price), 0)
            if free > 0:
                out.append((price, free))
        return out

    def _available(self, order: Order) -> int:
        return sum(free for _, free in self._marketable_levels(order))

    def _take(self, order: Order, as_maker: bool = False) -> list[ExecReport]:
        """Fill ``order`` against marketable public levels.

        A new order takes at each level's price (taker); a resting order crossed by the market
        fills at its own price (maker).
        """
        reports: list[ExecReport] = []
        opposite = order.side.opposite
        liquidity = Liquidity.MAKER if as_maker else Liquidity.TAKER
        for price, free in self._marketable_levels(order):
            if order.leaves_lots == 0:
                break
            take = min(free, order.leaves_lots)
            self._consumed[(opposite, price)] = self._consumed.get((opposite, price), 0) + take
            fill_price = order.price_ticks if as_maker and order.price_ticks else price
            reports.append(self._fill(order, take, fill_price, liquidity))
        return reports

    def _rest(self, order: Order) -> None:
        assert order.price_ticks is not None
        self._seq += 1
        ahead = self.book.size_at(order.side, order.price_ticks)
        self._resting[order.order_id] = _Resting(order, ahead, self._seq)

    def _sorted_resting(self, side: Side | None) -> list[_Resting]:
        rests = [r for r in self._resting.values() if side is None or r.order.side is side]
        rests.sort(key=lambda r: (-int(r.order.side) * (r.order.price_ticks or 0), r.priority))
        return rests

    def _match_crossing(self) -> list[ExecReport]:
        reports: list[ExecReport] = []
        for rest in self._sorted_resting(None):
            if rest.order.status.is_open:
                reports.extend(self._take(rest.order, as_maker=True))
        return reports

    def _fill(self, order: Order, lots: int, price: int, liquidity: Liquidity) -> ExecReport:
        order.fill(lots, price)
        notional = self.instrument.notional(price, lots)
        fill = Fill(
            self.now_ns,
            order.order_id,
            order.symbol,
            order.side,
            price,
            lots,
            self.instrument.ticks_to_price(price),
            self.instrument.lots_to_size(lots),
            self.fees.fee(notional, liquidity),
            liquidity,
        )
        if not order.status.is_open:
            self._resting.pop(order.order_id, None)
        return ExecReport(self.now_ns, order.order_id, ExecKind.FILL, order.status, fill=fill)

    def _report(self, order: Order, kind: ExecKind) -> ExecReport:
        return ExecReport(self.now_ns, order.order_id, kind, order.status, order.reason)
