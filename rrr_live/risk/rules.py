"""The pure exposure and drawdown rules, shared by the risk engine and the portfolio ledger.

One implementation of each rule: :class:`~rrr_live.risk.limits.RiskEngine` applies them to one
runner's portfolio, :mod:`rrr_live.shards.ledger` to the whole account (every shard's row).
They take arrays and numbers, do no I/O and keep no state.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rrr_live.portfolio.portfolio import drawdown
from rrr_live.risk.reasons import DenyReason

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
_OK, _GROSS, _NET = int(DenyReason.OK), int(DenyReason.GROSS), int(DenyReason.NET)


def exposure_deltas(pos: F64, qty: F64, price: F64) -> tuple[F64, F64]:
    """Return how orders of signed ``qty`` at ``price`` change gross and net exposure.

    Args:
        pos: the symbols' current positions in units.
        qty: the orders' signed quantities in units.
        price: their reference prices.

    Returns:
        ``(d_gross, d_net)`` per order (``d_gross < 0``: the order shrinks its position).
    """
    return (np.abs(pos + qty) - np.abs(pos)) * price, qty * price


def not_reducing(pos: F64, qty: F64) -> npt.NDArray[np.bool_]:
    """Return which orders grow or flip their position (what a reduce-only state denies)."""
    post = pos + qty
    return (np.abs(post) > np.abs(pos)) | (post * pos < 0)


def drawdown_hit(equity: float, high_water_mark: float, max_drawdown: float) -> bool:
    """Return whether drawdown from ``high_water_mark`` reached ``max_drawdown`` (the halt)."""
    return drawdown(equity, high_water_mark) >= max_drawdown


def check_aggregate(
    codes: I8,
    d_gross: F64,
    d_net: F64,
    gross: float,
    net: float,
    max_gross: float,
    max_net: float,
    gross_code: int = _GROSS,
    net_code: int = _NET,
) -> None:
    """Deny, in place and in order, the orders that would push gross or net past its limit.

    Only orders still approved (``codes == 0``) are checked; each sees the exposure left by the
    ones approved before it. An order is denied by gross only if it grows gross, and by net only
    if it grows ``|net|``, so an order that shrinks an exposure is never denied by its limit.

    Args:
        codes: the orders' :class:`DenyReason` codes, updated in place.
        d_gross: per order, the change of gross exposure (:func:`exposure_deltas`).
        d_net: per order, the change of net exposure.
        gross: gross exposure before the orders.
        net: signed net exposure before the orders.
        max_gross: the gross limit (in the exposures' units).
        max_net: the limit on ``|net|``.
        gross_code: the code a gross denial gets.
        net_code: the code a net denial gets.
    """
    live = codes == _OK
    fast_gross = gross + float(np.maximum(d_gross[live], 0).sum()) <= max_gross
    if fast_gross and abs(net) + float(np.abs(d_net[live]).sum()) <= max_net:
        return
    for i in np.flatnonzero(live):
        g, n = gross + d_gross[i], net + d_net[i]
        if g > max_gross and d_gross[i] > 0:
            codes[i] = gross_code
        elif abs(n) > max_net and abs(n) > abs(net):
            codes[i] = net_code
        else:
            gross, net = g, n
