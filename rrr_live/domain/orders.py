"""Orders and their state machine.

States and the only allowed transitions::

    PENDING_NEW ──► ACCEPTED ──► PARTIALLY_FILLED ──► FILLED
         │             │  │            │  │
         │             │  └► FILLED    │  └► CANCELED / EXPIRED
         ▼             ▼               ▼
      REJECTED    CANCELED / EXPIRED   (PARTIALLY_FILLED ──► PARTIALLY_FILLED on further fills)

``FILLED``, ``CANCELED``, ``EXPIRED`` and ``REJECTED`` are terminal. A replace keeps the state
(an open order stays open). Prices are integer ticks and sizes integer lots of the instrument.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Final

from rrr_live.domain.errors import InvalidOrderTransition


class Side(IntEnum):
    """Order side; the value is the sign of the position change."""

    BUY = 1
    SELL = -1

    @property
    def opposite(self) -> Side:
        """Return the other side."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(Enum):
    """Market orders take any price; limit orders carry a limit price in ticks."""

    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(Enum):
    """GTC rests until canceled; IOC fills what it can now; FOK fills all now or nothing."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(Enum):
    """Lifecycle state of an order."""

    PENDING_NEW = "pending_new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        """Return whether the order can still trade."""
        return self in _OPEN

    @property
    def is_terminal(self) -> bool:
        """Return whether no further transition is possible."""
        return not VALID_TRANSITIONS[self]


_OPEN: Final = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})

VALID_TRANSITIONS: Final[dict[OrderStatus, frozenset[OrderStatus]]] = {
    OrderStatus.PENDING_NEW: frozenset({OrderStatus.ACCEPTED, OrderStatus.REJECTED}),
    OrderStatus.ACCEPTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


@dataclass(slots=True)
class Order:
    """A mutable order whose status only changes through :meth:`transition` and :meth:`fill`.

    Args:
        order_id: unique id (assigned by the caller, e.g. an ``OrderIdGenerator``).
        symbol: instrument symbol.
        side: BUY or SELL.
        order_type: MARKET or LIMIT.
        qty_lots: total size in lots (> 0).
        price_ticks: limit price in ticks (required for LIMIT, ``None`` for MARKET).
        tif: time in force.
        post_only: reject instead of taking liquidity (LIMIT GTC only).
        ts_ns: creation time (event time).
    """

    order_id: int
    symbol: str
    side: Side
    order_type: OrderType
    qty_lots: int
    price_ticks: int | None = None
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    ts_ns: int = 0
    status: OrderStatus = OrderStatus.PENDING_NEW
    filled_lots: int = 0
    filled_notional_ticks_lots: int = 0
    reason: str = ""

    def __post_init__(self) -> None:
        problem = self._validate()
        if problem:
            raise ValueError(f"order {self.order_id} ({self.symbol}): {problem}")

    def _validate(self) -> str:
        if self.qty_lots <= 0:
            return f"qty_lots must be > 0, got {self.qty_lots}"
        if self.order_type is OrderType.LIMIT and self.price_ticks is None:
            return "a LIMIT order needs price_ticks"
        if self.price_ticks is not None and self.price_ticks <= 0:
            return f"price_ticks must be > 0, got {self.price_ticks}"
        if self.order_type is OrderType.MARKET and self.price_ticks is not None:
            return "a MARKET order has no price"
        if self.order_type is OrderType.MARKET and self.tif is TimeInForce.GTC:
            return "a MARKET order cannot rest; use tif IOC or FOK"
        if self.post_only and (
            self.order_type is not OrderType.LIMIT or self.tif is not TimeInForce.GTC
        ):
            return "post_only needs a GTC LIMIT order"
        return ""

    @property
    def leaves_lots(self) -> int:
        """Return the size still open."""
        return self.qty_lots - self.filled_lots

    @property
    def avg_fill_ticks(self) -> float:
        """Return the average fill price in ticks (``nan`` before any fill)."""
        if self.filled_lots == 0:
            return float("nan")
        return self.filled_notional_ticks_lots / self.filled_lots

    def can_transition(self, new: OrderStatus) -> bool:
        """Return whether ``status -> new`` is allowed."""
        return new in VALID_TRANSITIONS[self.status]

    def transition(self, new: OrderStatus, reason: str = "") -> None:
        """Move to ``new``.

        Raises:
            InvalidOrderTransition: if the state machine does not allow it.
        """
        if new not in VALID_TRANSITIONS[self.status]:
            raise InvalidOrderTransition(
                f"order {self.order_id}: {self.status.value} -> {new.value} is not allowed"
            )
        if new in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
            raise InvalidOrderTransition(
                f"order {self.order_id}: use fill() to move to {new.value}"
            )
        self.status = new
        if reason:
            self.reason = reason

    def fill(self, lots: int, price_ticks: int) -> None:
        """Record a fill of ``lots`` at ``price_ticks`` and move to PARTIALLY_FILLED or FILLED.

        Raises:
            InvalidOrderTransition: if the order is not open or ``lots`` exceeds what is left.
        """
        if lots <= 0 or lots > self.leaves_lots:
            raise InvalidOrderTransition(
                f"order {self.order_id}: fill of {lots} lots with {self.leaves_lots} left"
            )
        new = OrderStatus.FILLED if lots == self.leaves_lots else OrderStatus.PARTIALLY_FILLED
        if new not in VALID_TRANSITIONS[self.status]:
            raise InvalidOrderTransition(
                f"order {self.order_id}: cannot fill in state {self.status.value}"
            )
        self.filled_lots += lots
        self.filled_notional_ticks_lots += lots * price_ticks
        self.status = new

    def amend(self, qty_lots: int, price_ticks: int | None) -> None:
        """Change size and/or price of an open order (a replace accepted by the venue).

        Raises:
            InvalidOrderTransition: if the order is not open or ``qty_lots`` is not above the
                size already filled.
        """
        if not self.status.is_open:
            raise InvalidOrderTransition(
                f"order {self.order_id}: cannot replace in state {self.status.value}"
            )
        if qty_lots <= self.filled_lots:
            raise InvalidOrderTransition(
                f"order {self.order_id}: new size {qty_lots} must exceed filled {self.filled_lots}"
            )
        self.qty_lots = qty_lots
        if price_ticks is not None:
            self.price_ticks = price_ticks


class OrderIdGenerator:
    """Deterministic increasing order ids (no randomness, no wall clock)."""

    __slots__ = ("_next",)

    def __init__(self, start: int = 1) -> None:
        self._next = start

    def next_id(self) -> int:
        """Return a fresh id."""
        value = self._next
        self._next += 1
        return value
