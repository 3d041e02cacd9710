"""Events that flow through the core: market data in, execution reports and fills out.

Every event carries ``ts_ns``: integer nanoseconds since the Unix epoch in *event time*.
Prices are integer ticks and sizes integer lots of the event's instrument.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rrr_live.domain.orders import OrderStatus, Side


class Liquidity(Enum):
    """Whether a fill added (maker) or removed (taker) liquidity."""

    MAKER = "maker"
    TAKER = "taker"


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order.

    ``fee`` is in the quote currency and positive when paid (negative for a maker rebate).
    """

    ts_ns: int
    order_id: int
    symbol: str
    side: Side
    price_ticks: int
    qty_lots: int
    price: float
    qty: float
    fee: float
    liquidity: Liquidity

    @property
    def signed_qty(self) -> float:
        """Return the position change (+ for buys)."""
        return self.qty * int(self.side)


class ExecKind(Enum):
    """What an execution report says happened."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FILL = "fill"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    CANCEL_REJECTED = "cancel_rejected"
    REPLACE_REJECTED = "replace_rejected"


@dataclass(frozen=True, slots=True)
class ExecReport:
    """The venue's answer about one order at one event time."""

    ts_ns: int
    order_id: int
    kind: ExecKind
    status: OrderStatus
    reason: str = ""
    fill: Fill | None = None


@dataclass(frozen=True, slots=True)
class TradeTick:
    """A public trade; ``aggressor`` is the taker's side, ``trade_id`` the venue's (0: none)."""

    ts_ns: int
    symbol: str
    price_ticks: int
    size_lots: int
    aggressor: Side
    trade_id: int = 0


@dataclass(frozen=True, slots=True)
class BarEvent:
    """A closed bar (prices as floats, as in the canonical bar frame).

    ``ts_ns`` is the bar *open* time; the bar closes (and the event happens) at ``close_ns``.
    """

    ts_ns: int
    close_ns: int
    symbol: str
    open: float
    high: float
    low: float
    close: float
    volume: float
