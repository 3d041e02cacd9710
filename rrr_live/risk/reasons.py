"""Why the risk engine denied an order.

An enum whose values are the compact codes the batch checks store (``int8`` arrays) and whose
labels are what reports and journals show.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class DenyReason(IntEnum):
    """Outcome of a pre-trade check; ``OK`` (0) means approved."""

    OK = 0
    HALTED = 1
    REDUCING_ONLY = 2
    ORDER_NOTIONAL = 3
    PRICE_BAND = 4
    POSITION = 5
    GROSS = 6
    NET = 7
    RATE = 8
    VAR = 9
    SYMBOL_REDUCING = 10
    PORTFOLIO_GROSS = 11
    PORTFOLIO_NET = 12

    @property
    def label(self) -> str:
        """Return the human-readable reason (empty for ``OK``)."""
        return _LABELS[self]

    @classmethod
    def from_code(cls, code: int) -> DenyReason:
        """Return the reason stored as ``code`` in a batch result."""
        return cls(int(code))


_LABELS: Final[dict[DenyReason, str]] = {
    DenyReason.OK: "",
    DenyReason.HALTED: "halted",
    DenyReason.REDUCING_ONLY: "reducing only",
    DenyReason.ORDER_NOTIONAL: "order notional limit",
    DenyReason.PRICE_BAND: "price outside band around mid",
    DenyReason.POSITION: "position limit",
    DenyReason.GROSS: "gross notional limit",
    DenyReason.NET: "net notional limit",
    DenyReason.RATE: "order rate limit",
    DenyReason.VAR: "portfolio VaR limit",
    DenyReason.SYMBOL_REDUCING: "symbol reducing only (data quality)",
    DenyReason.PORTFOLIO_GROSS: "portfolio-wide gross notional limit (risk ledger)",
    DenyReason.PORTFOLIO_NET: "portfolio-wide net notional limit (risk ledger)",
}

#: label of every code, indexable by the ``int8`` codes of a batch check
LABELS: Final[tuple[str, ...]] = tuple(_LABELS[r] for r in DenyReason)
