"""Reconciliation: the journal's orders, fills and positions against the venue's account.

Run on start and after every user-data-stream reconnect. Steps: settle every order whose outcome
is unknown (query by client id), take the fills the stream missed from ``myTrades`` (a venue
trade lands once, whoever saw it first), then compare open orders and balances. A disagreement
beyond tolerance halts trading and is named.

:func:`reconcile_owned` is the start-up reconciliation of a runner that shares its account with
others (the shards of one account): it settles and compares only what it owns, its client-id
prefix and its symbols, and never sends a dead session's order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from rrr_live.errors import RRRError
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.model import OrderState
from rrr_live.venue.store import FilledOrder
from rrr_live.venue.stream import pump, subscribe, trade_fill


class Disagreement(RRRError):
    """The journal and the venue disagree beyond tolerance; trading must not continue."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("reconciliation failed: " + "; ".join(problems))
        self.problems = problems


@dataclass
class ReconcileReport:
    """What one reconciliation found and did."""

    settled: int = 0  # orders whose unknown outcome was settled by a query
    missed_fills: int = 0  # fills taken from myTrades that the stream had not delivered
    problems: list[str] = field(default_factory=list)


async def reconcile(
    broker: BinanceBroker,
    baseline: Mapping[str, Decimal],
    tolerance: Decimal = Decimal("1e-8"),
) -> ReconcileReport:
    """Bring the journal up to the venue's truth for this runner's orders, then compare.

    Args:
        broker: this runner's broker (its prefix and symbols define what it owns).
        baseline: the account's balances that are not this runner's doing (its starting cash).
        tolerance: the largest balance difference accepted per asset.

    Raises:
        Disagreement: open orders or balances differ; the runner's risk state is set to halted.
    """
    report = ReconcileReport()
    store = broker.store
    for intent in await store.unresolved():  # acknowledged open ones may have changed too
        await broker.resolve(intent)
        report.settled += 1
    for symbol in sorted(broker.assets):
        base, quote = broker.assets[symbol]
        for trade in await broker.rest.signed("GET", "/api/v3/myTrades", {"symbol": symbol}):
            cid = await store.client_of(int(trade["orderId"]), symbol)
            if cid is not None and await store.record_fill(
                trade_fill(trade, cid), base, quote, "reconcile"
            ):
                report.missed_fills += 1
    report.problems = await _open_order_problems(broker) + await _balance_problems(
        broker, baseline, tolerance
    )
    await store.set_risk(report.problems)
    if report.problems:
        raise Disagreement(report.problems)
    return report


@dataclass
class OwnedReport:
    """What a start-up reconciliation of one runner's own orders found and did.

    Attributes:
        settled: The venue's answers for the orders a previous session left unknown.
        last_seq: The highest decision sequence of the runner's stored orders.
        unjournaled: Filled orders the runner journal does not hold (sent, then the process died
            before the batch was journaled): the positions they built must be added.
        problems: Disagreements found (empty when reconciled).
    """

    settled: list[OrderState] = field(default_factory=list)
    last_seq: int = 0
    unjournaled: list[FilledOrder] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def reconcile_owned(
    broker: BinanceBroker,
    journaled: Collection[str],
    baseline: Mapping[str, Decimal] | None = None,
    held: Mapping[str, Decimal] | None = None,
    tolerance: Decimal = Decimal("1e-8"),
) -> OwnedReport:
    """Settle and compare what this runner owns: its prefix's orders and its symbols only.

    Every order of the prefix whose outcome is unknown is settled by a query (never sent: see
    :meth:`BinanceBroker.settle`); the trades of every sent order the journal lacks (the process
    died before journaling its batch, whether or not the answer was recorded) are stored
    (``myTrades`` of that order, each trade once): those fills are the report's ``unjournaled``.
    The venue's open orders of the prefix on the runner's symbols must then be the journal's.
    Another shard's orders and symbols are never looked at: the store reads one prefix, the
    broker keeps only its prefix's ids on its symbols.

    Args:
        broker: This runner's broker (its store's prefix and its symbols define what it owns).
        journaled: Client ids of the orders the runner journal records (its batches').
        baseline: With ``held``, the account's balances of the base assets of the runner's
            symbols that are not its doing; the venue must then hold ``baseline + held``. The
            quote asset is shared by every shard of an account and is not compared here.
        held: Net quantity per symbol the runner holds (its journal's fills).
        tolerance: The largest difference accepted per asset.

    Raises:
        Disagreement: an order of another symbol under this prefix, open orders that differ,
            or (with ``baseline``) base-asset balances that differ.
    """
    report = OwnedReport()
    for intent in await broker.store.unresolved():
        if intent.symbol not in broker.assets:
            report.problems.append(
                f"order {intent.client_id} is on {intent.symbol}, which this runner does not trade"
            )
            continue
        report.settled.append(await broker.settle(intent))
    report.last_seq = await broker.store.last_seq()
    for client_id, symbol, order_id in await broker.store.sent_without_fills():
        if client_id not in journaled:  # the process died before journaling its batch
            await _order_fills(broker, symbol, order_id, client_id)
    report.unjournaled = [f for f in await broker.store.filled() if f.client_id not in journaled]
    report.problems += await _open_order_problems(broker)
    if baseline is not None and held is not None:
        report.problems += await _base_problems(broker, baseline, held, report, tolerance)
    if report.problems:
        raise Disagreement(report.problems)
    return report


async def _order_fills(broker: BinanceBroker, symbol: str, order_id: int, client_id: str) -> None:
    """Store the venue's trades of one order (``myTrades`` by ``orderId``; each lands once)."""
    base, quote = broker.assets[symbol]
    params = {"symbol": symbol, "orderId": order_id}
    for trade in await broker.rest.signed("GET", "/api/v3/myTrades", params):
        if int(trade["orderId"]) == order_id:
            await broker.store.record_fill(trade_fill(trade, client_id), base, quote, "reconcile")


async def _base_problems(
    broker: BinanceBroker,
    baseline: Mapping[str, Decimal],
    held: Mapping[str, Decimal],
    report: OwnedReport,
    tolerance: Decimal,
) -> list[str]:
    account = await broker.rest.signed("GET", "/api/v3/account", {})
    venue = {
        b["asset"]: Decimal(str(b["free"])) + Decimal(str(b["locked"])) for b in account["balances"]
    }
    mine = dict(held)
    for f in report.unjournaled:
        sign = Decimal(1) if f.side == "BUY" else Decimal(-1)
        mine[f.symbol] = mine.get(f.symbol, Decimal(0)) + sign * f.filled_qty
    out = []
    for symbol in sorted(broker.assets):
        base = broker.assets[symbol][0]
        expected = baseline.get(base, Decimal(0)) + mine.get(symbol, Decimal(0))
        actual = venue.get(base, Decimal(0))
        if abs(expected - actual) > tolerance:
            out.append(f"{base}: journal says {_fmt(expected)}, venue says {_fmt(actual)}")
    return out


async def _open_order_problems(broker: BinanceBroker) -> list[str]:
    venue = {s.client_id: s for s in await broker.open_orders()}
    ours = {i.client_id for i in await broker.store.unresolved()}
    out = [
        f"open order {cid} on the venue is not open in the journal" for cid in venue.keys() - ours
    ]
    out += [
        f"order {cid} open in the journal is not open on the venue" for cid in ours - venue.keys()
    ]
    for cid in venue.keys() & ours:
        stored = await broker.store.order(cid)
        if stored is not None and stored.filled_qty != venue[cid].filled_qty:
            out.append(
                f"order {cid} filled {stored.filled_qty} in the journal,"
                f" {venue[cid].filled_qty} on the venue"
            )
    return sorted(out)


async def _balance_problems(
    broker: BinanceBroker, baseline: Mapping[str, Decimal], tolerance: Decimal
) -> list[str]:
    account = await broker.rest.signed("GET", "/api/v3/account", {})
    venue = {
        b["asset"]: Decimal(str(b["free"])) + Decimal(str(b["locked"])) for b in account["balances"]
    }
    held = await broker.store.positions()
    assets = {a for pair in broker.assets.values() for a in pair}
    out = []
    for asset in sorted(assets):
        expected = baseline.get(asset, Decimal(0)) + held.get(asset, Decimal(0))
        actual = venue.get(asset, Decimal(0))
        if abs(expected - actual) > tolerance:
            out.append(f"{asset}: journal says {_fmt(expected)}, venue says {_fmt(actual)}")
    return out


async def run_user_stream(
    broker: BinanceBroker,
    ws_url: str,
    baseline: Mapping[str, Decimal],
    on_ready: Callable[[ReconcileReport], Awaitable[None]] | None = None,
    max_reconnects: int = 1_000_000,
    on_connect: Callable[[ClientConnection], None] | None = None,
) -> None:
    """Keep the user-data stream subscribed; reconcile after every (re)connect.

    Subscribing first and reconciling second means no fill can fall between the two: a fill
    that arrives on the stream during reconciliation is stored once either way.

    Raises:
        Disagreement: from a reconciliation (trading must stop).
    """
    for _ in range(max_reconnects + 1):
        try:
            ws = await subscribe(ws_url, broker.rest.creds, broker.rest.now_ms())
        except OSError:
            await broker.rest.sleeper(0.1)
            continue
        if on_connect is not None:
            on_connect(ws)
        pump_task = asyncio.ensure_future(pump(ws, broker.on_event))
        try:
            report = await reconcile(broker, baseline)
            if on_ready is not None:
                await on_ready(report)
            await pump_task
        except ConnectionClosed:
            pass
        finally:
            pump_task.cancel()
            await ws.close()


def _fmt(x: Decimal) -> str:
    return format(x.normalize(), "f")
