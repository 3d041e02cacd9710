"""The ``Broker`` protocol and :class:`BinanceBroker` (a Binance-compatible venue).

Order flow (each arrow a persistence boundary the crash tests kill at)::

    persist (pending_send, committed) ─► send ─► record the answer (NEW/FILLED/...)
                      "after_persist"    "after_send"

An ambiguous send (timeout, disconnect, 5xx) leaves the order ``in_flight``; it is resolved by
querying ``origClientOrderId``. Only an answer "order does not exist" (-2013) lets the same
client id be sent again; the order is never resubmitted under a new id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from rrr_live.venue.model import (
    IN_FLIGHT,
    TERMINAL_STATES,
    CrashPoint,
    OrderIntent,
    OrderState,
    no_crash,
    owns_client_id,
)
from rrr_live.venue.rest import AmbiguousOutcome, SignedRest, VenueRejected
from rrr_live.venue.store import OrderStore, StateChange
from rrr_live.venue.stream import fill_of

UNKNOWN_ORDER = -2013  # Binance: "Order does not exist."
NEVER_SENT = "the venue never got it; a dead session's decision is not sent after a restart"


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of one order of :meth:`Broker.submit_many`.

    Attributes:
        outcome: What the venue said (a refusal as the :class:`VenueRejected` it raised).
        sent_ns: ``clock()`` when the order was handed to the venue.
        answered_ns: ``clock()`` when its answer came.
    """

    outcome: OrderState | VenueRejected
    sent_ns: int
    answered_ns: int


class Broker(Protocol):
    """What the runner needs from any venue adapter."""

    async def submit(self, intent: OrderIntent) -> OrderState:
        """Persist, then send ``intent``; return what is known about it."""
        ...

    async def submit_many(
        self, intents: Sequence[OrderIntent], concurrency: int, clock: Callable[[], int]
    ) -> list[Answer]:
        """Persist all, then send up to ``concurrency`` at once; the answers in intent order."""
        ...

    async def cancel(self, client_id: str) -> OrderState:
        """Cancel one of our orders."""
        ...

    async def query(self, client_id: str) -> OrderState | None:
        """The venue's view of one of our orders (None: the venue never got it)."""
        ...

    async def open_orders(self) -> list[OrderState]:
        """Our open orders as the venue reports them."""
        ...


class BinanceBroker:
    """:class:`Broker` on a Binance spot REST API (the paper venue or any compatible endpoint).

    Args:
        rest: signed REST access.
        store: the order store (this runner's prefix).
        assets: symbol -> (base asset, quote asset) of the symbols this runner trades.
        crash: called at the persistence boundaries (crash tests).
    """

    def __init__(
        self,
        rest: SignedRest,
        store: OrderStore,
        assets: Mapping[str, tuple[str, str]],
        crash: CrashPoint = no_crash,
    ) -> None:
        self.rest, self.store, self.assets, self.crash = rest, store, dict(assets), crash
        self.sends = 0  # POST /api/v3/order requests made (tests: no duplicate sends)
        self.query_attempts = 8

    async def submit(self, intent: OrderIntent) -> OrderState:
        """Persist ``intent`` (committed), then send it under its client id.

        A second submit of the same decision finds the stored order and resolves it instead.

        Raises:
            VenueRejected: the venue refused the order (stored as REJECTED first).
        """
        self._check(intent)
        if not await self.store.persist(intent):
            return await self.resolve(intent)
        self.crash("after_persist")
        return await self._send(intent)

    async def submit_many(
        self, intents: Sequence[OrderIntent], concurrency: int, clock: Callable[[], int]
    ) -> list[Answer]:
        """Submit one decision's orders with two transactions instead of two per order.

        One transaction persists them all (committed) before any is sent, up to
        ``concurrency`` are in flight at once, and one transaction records the answers. An
        ambiguous send is resolved (and recorded) on its own, as in :meth:`submit`; an intent
        already stored is resolved instead of sent.
        """
        for intent in intents:
            self._check(intent)
        fresh = await self.store.persist_many(intents)
        self.crash("after_persist")
        gate = asyncio.Semaphore(max(1, concurrency))
        answers: list[Answer | None] = [None] * len(intents)
        settled: list[StateChange] = []

        async def one(k: int) -> None:
            async with gate:
                sent = clock()
                outcome = await self._send_unrecorded(intents[k], fresh[k], settled)
                answers[k] = Answer(outcome, sent, clock())

        try:
            async with asyncio.TaskGroup() as tg:
                for k, intent in enumerate(intents):
                    tg.create_task(one(k), name=f"order-{intent.client_id}")
        finally:  # what the venue answered is recorded even when another send failed
            if settled:
                await self.store.set_states(settled)
        return [a for a in answers if a is not None]

    async def _send_unrecorded(
        self, intent: OrderIntent, fresh: bool, settled: list[StateChange]
    ) -> OrderState | VenueRejected:
        """Send a persisted intent.

        A clear answer is appended to ``settled`` for the caller to record; anything else is
        settled here (resolved and recorded).
        """
        if not fresh:
            return await self.resolve(intent)
        self.sends += 1
        try:
            body = await self.rest.signed("POST", "/api/v3/order", _order_params(intent))
        except AmbiguousOutcome as e:
            await self.store.set_state(intent.client_id, IN_FLIGHT, reason=str(e))
            return await self.resolve(intent)
        except VenueRejected as e:
            settled.append(StateChange.of(intent.client_id, "REJECTED", code=e.code, msg=e.msg))
            return e
        self.crash("after_send")
        state = _state(body, self.assets[intent.symbol])
        settled.append(StateChange(state.client_id, state.state, state.venue_order_id))
        return state

    def _check(self, intent: OrderIntent) -> None:
        if not intent.client_id.startswith(f"{self.store.prefix}-"):
            raise ValueError(f"client id {intent.client_id!r} lacks prefix {self.store.prefix!r}")
        if intent.symbol not in self.assets:
            raise ValueError(f"symbol {intent.symbol!r} is not traded by this runner")

    async def _send(self, intent: OrderIntent) -> OrderState:
        settled: list[StateChange] = []
        outcome = await self._send_unrecorded(intent, True, settled)
        if settled:
            await self.store.set_states(settled)
        if isinstance(outcome, VenueRejected):
            raise outcome
        return outcome

    async def resolve(self, intent: OrderIntent) -> OrderState:
        """Settle an order whose outcome is unknown by asking the venue; send it only if absent.

        The query is retried (backing off) while it stays ambiguous; nothing is sent before it
        answers.

        Raises:
            AmbiguousOutcome: no answer after ``query_attempts`` tries (the order stays in flight).
        """
        found = await self._ask(intent)
        if found is None:
            return await self._send(intent)
        return await self._record(found)

    async def settle(self, intent: OrderIntent) -> OrderState:
        """Settle an order a previous session left unknown: ask the venue, never send it.

        The answer is recorded; an order the venue never got is recorded ``EXPIRED`` (a
        decision of a session that died is stale: it is not sent after a restart).

        Raises:
            AmbiguousOutcome: no answer after ``query_attempts`` tries (the order stays unknown).
        """
        found = await self._ask(intent)
        if found is None:
            await self.store.set_state(intent.client_id, "EXPIRED", reason=NEVER_SENT)
            return OrderState(intent.client_id, "EXPIRED", None, Decimal(0))
        return await self._record(found)

    async def _ask(self, intent: OrderIntent) -> OrderState | None:
        """Query the order, retrying (backing off) while the answer stays ambiguous."""
        for attempt in range(self.query_attempts - 1):
            try:
                return await self.query(intent.client_id)
            except AmbiguousOutcome:
                await self.rest.sleeper(min(0.05 * 2**attempt, 2.0))
        return await self.query(intent.client_id)  # the last try: still in flight if it fails

    async def _record(self, state: OrderState) -> OrderState:
        stored = await self.store.order(state.client_id)
        if stored is None or stored.state != state.state or stored.venue_order_id is None:
            await self.store.set_state(state.client_id, state.state, state.venue_order_id)
        return state

    async def cancel(self, client_id: str) -> OrderState:
        """Cancel one of our orders by client id (an already final order is returned as is)."""
        stored = await self.store.order(client_id)
        if stored is None:
            raise ValueError(f"unknown client order id {client_id!r}")
        if stored.state in TERMINAL_STATES:
            return stored
        symbol = (await self.store.intent(client_id)).symbol
        try:
            body = await self.rest.signed(
                "DELETE", "/api/v3/order", {"symbol": symbol, "origClientOrderId": client_id}
            )
        except VenueRejected as e:
            if e.code != -2011:  # "Unknown order sent.": already final; the query says how
                raise
            found = await self.query(client_id)
            return await self._record(found) if found else stored
        return await self._record(_state(body))

    async def query(self, client_id: str) -> OrderState | None:
        """``GET /api/v3/order`` by ``origClientOrderId``; None when the venue never got it."""
        symbol = (await self.store.intent(client_id)).symbol
        try:
            body = await self.rest.signed(
                "GET", "/api/v3/order", {"symbol": symbol, "origClientOrderId": client_id}
            )
        except VenueRejected as e:
            if e.code == UNKNOWN_ORDER:
                return None
            raise
        return _state(body)

    async def open_orders(self) -> list[OrderState]:
        """Our open orders on the venue (this prefix, our symbols), by symbol.

        One request for every symbol (Binance's ``openOrders`` without ``symbol``): a runner
        of 1000 symbols would otherwise make 1000 at shutdown.
        """
        rows = await self.rest.signed("GET", "/api/v3/openOrders", {})
        mine = [r for r in rows if r["symbol"] in self.assets and self.owns(r["clientOrderId"])]
        return [_state(r) for r in sorted(mine, key=lambda r: str(r["symbol"]))]

    async def on_event(self, event: dict[str, Any]) -> None:
        """Apply one user-data event: a fill of ours is stored once, the order state follows."""
        if event.get("e") != "executionReport":
            return  # balances are checked by reconciliation, from the account endpoint
        cid = str(event.get("C") or event["c"])  # a cancel's report names the original in C
        if not self.owns(cid):
            return
        fill = fill_of(event)
        if fill is not None:
            base, quote = self.assets[fill.symbol]
            await self.store.record_fill(replace(fill, client_id=cid), base, quote, "stream")
        await self._record(
            OrderState(cid, str(event["X"]), int(event["i"]), Decimal(str(event["z"])))
        )

    def owns(self, client_id: str) -> bool:
        """Whether a client id is this runner's (its prefix)."""
        return owns_client_id(self.store.prefix, client_id)


def _order_params(intent: OrderIntent) -> dict[str, Any]:
    p: dict[str, Any] = {
        "symbol": intent.symbol,
        "side": intent.side,
        "type": intent.order_type,
        "quantity": _fmt(intent.qty),
        "newClientOrderId": intent.client_id,
        "newOrderRespType": "FULL",  # the fills, with their commissions
    }
    if intent.order_type == "LIMIT":
        p["timeInForce"] = intent.tif
        p["price"] = _fmt(intent.price or Decimal(0))
    return p


def _fmt(x: Decimal) -> str:
    return format(x.normalize(), "f")


def _state(body: Mapping[str, Any], pair: tuple[str, str] | None = None) -> OrderState:
    filled = Decimal(str(body.get("executedQty", "0")))
    quote = body.get("cummulativeQuoteQty")
    avg = Decimal(str(quote)) / filled if quote is not None and filled > 0 else None
    return OrderState(
        str(body["clientOrderId"]),
        str(body["status"]),
        int(body["orderId"]),
        filled,
        avg,
        _commission(body.get("fills", ()), pair) if pair else Decimal(0),
    )


def _commission(fills: Any, pair: tuple[str, str]) -> Decimal:
    """Fees of a ``FULL`` answer's fills in the quote asset (a base-asset fee at its price).

    Binance may charge a third asset (BNB discounts); such a fee is not converted here: the
    account reconciliation sees it.
    """
    base, quote = pair
    total = Decimal(0)
    for f in fills:
        fee, asset = Decimal(str(f.get("commission", "0"))), str(f.get("commissionAsset", ""))
        if asset == quote:
            total += fee
        elif asset == base:
            total += fee * Decimal(str(f["price"]))
    return total
