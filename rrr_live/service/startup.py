"""Start-up reconciliation of a runner (sharded or not): what it owns, before it trades.

After the positions are restored from the runner journal, :func:`reconcile_at_start` settles the
orders a previous session of this runner left unknown (by query; never resent), adds the fills of
orders the journal never recorded (the process died between sending and journaling) to the
trader's portfolio, and continues the batch sequence after every stored order of the runner's
prefix, so no client id is ever reused. Only the runner's prefix and symbols are read: a shard
never touches another shard's orders or positions.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from rrr_live.service.journal_sink import JournaledFill, RunnerJournal, replay_fills
from rrr_live.service.trader import Trader
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.reconcile import OwnedReport, reconcile_owned

logger = logging.getLogger(__name__)


async def reconcile_at_start(
    broker: BinanceBroker, rj: RunnerJournal, trader: Trader
) -> OwnedReport:
    """Reconcile the runner's own orders and bring the trader up to them.

    The trader's portfolio and batch sequence must be the journal's (restored).

    A fill the journal lacks moves the position at its stored average price (the venue's trades
    of the order; else a limit order's price, else the average cost: ``replay_fills``' rule for
    an unpriced fill); its fee is left to the account reconciliation.

    Raises:
        Disagreement: the venue's open orders of this runner differ from the journal's.
    """
    report = await reconcile_owned(broker, await rj.client_ids())
    trader.seq = max(trader.seq, report.last_seq)
    fills = [
        JournaledFill(
            f.symbol, f.filled_qty if f.side == "BUY" else -f.filled_qty, f.price, Decimal(0)
        )
        for f in report.unjournaled
    ]
    replay_fills(trader.p.step.portfolio, trader.p.lot_qty, fills)
    logger.info(
        "start-up reconciliation of %s: %d unknown orders settled (%s), %d unjournaled fills,"
        " batches continue after %d",
        broker.store.prefix, len(report.settled),
        ", ".join(f"{s.client_id} {s.state}" for s in report.settled) or "none",
        len(fills), trader.seq,
    )  # fmt: skip
    return report
