"""Plain records of the order flow: what the runner decided, what the venue reported."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from rrr_live.domain.orders import OrderStatus

# Order states as the venue names them, plus the two the runner has before an answer.
PENDING_SEND = "pending_send"  # committed to the store, not yet handed to the network
IN_FLIGHT = "in_flight"  # sent (or maybe sent); the outcome is not known yet

# Binance's order status for each core order status (the paper venue answers with it; brokers
# read it back). A pending order is "NEW" to the venue once accepted for matching.
BINANCE_STATUS: dict[OrderStatus, str] = {
    OrderStatus.PENDING_NEW: "NEW",
    OrderStatus.ACCEPTED: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.REJECTED: "REJECTED",
}
OPEN_STATES = frozenset({PENDING_SEND, IN_FLIGHT, "NEW", "PARTIALLY_FILLED"})
TERMINAL_STATES = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})

# Binance's newClientOrderId is at most 36 characters: "<prefix>-<seq hex>-<leg>" keeps 10 hex
# digits for the batch sequence (a trillion batches) and 4 for the leg, so a prefix fits in 20.
MAX_ID = 36
MAX_PREFIX = MAX_ID - len("-") - 10 - len("-") - 4
_SUFFIX = re.compile(r"[0-9a-f]+-[0-9]+")

CrashPoint = Callable[[str], None]
"""Called with a boundary's name at every persistence boundary (crash tests kill there)."""


def no_crash(_name: str) -> None:
    """The production crash point: nothing happens."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Where an order came from: the model, its feature spec and the market-data sequence."""

    model_version: str
    feature_spec: str
    source_seq: int


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the runner wants on the venue, under its deterministic client id."""

    client_id: str
    prefix: str
    symbol: str
    side: str  # BUY / SELL
    order_type: str  # LIMIT / MARKET
    qty: Decimal
    price: Decimal | None
    decision: Decision
    tif: str = "GTC"


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One venue trade of one of our orders (the venue's trade id makes it unique)."""

    symbol: str
    trade_id: int
    client_id: str
    side: str
    qty: Decimal
    price: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class OrderState:
    """The venue's answer about one order."""

    client_id: str
    state: str
    venue_order_id: int | None
    filled_qty: Decimal
    avg_price: Decimal | None = None  # average fill price when the answer carries it
    commission: Decimal = Decimal(0)  # quote-asset fees of the fills the answer lists


def client_order_id(prefix: str, decision: Decision, leg: int = 0) -> str:
    """Return the deterministic client order id of a decision's ``leg``.

    The same decision always gets the same id, so a restarted runner that replays it finds the
    order it already persisted instead of creating a second one. Binance allows
    ``^[.A-Z:/a-z0-9_-]{1,36}$``.

    Raises:
        ValueError: if the prefix has characters outside that set or the id is too long.
    """
    cid = f"{prefix}-{decision.source_seq:x}-{leg}"
    if len(cid) > 36 or not all(c.isalnum() or c in ".:/_-" for c in cid) or not cid.isascii():
        raise ValueError(f"client order id {cid!r} breaks the venue's id rules")
    return cid


def owns_client_id(prefix: str, client_id: str) -> bool:
    """Whether ``client_id`` is one :func:`client_order_id` made under exactly ``prefix``.

    ``"live-s0of2-1a-0"`` is not runner ``live``'s although it starts with ``live-``: after the
    prefix must come nothing but the sequence and the leg.
    """
    head = f"{prefix}-"
    return client_id.startswith(head) and _SUFFIX.fullmatch(client_id[len(head) :]) is not None
