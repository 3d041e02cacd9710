"""The runner side of the parity test: the recording over real websockets, in lockstep.

The replay exchange serves the tape with its paper venue on one port; the champion comes from a
real MLflow registry through :class:`~rrr_live.inference.lifecycle.ModelLifecycle`; orders go
through :class:`~rrr_live.venue.broker.BinanceBroker` (signed REST, the order store on the real
PostgreSQL) to the paper venue. The market data is read as a lockstep client reads it: trades
parsed by the feed's :class:`~rrr_live.feeds.binance_wire.BinanceParser`, event-time bars by the
runner's :class:`~rrr_live.service.bars.BarBuilder`, one decision batch per ``bar_closed``
through the runner's :class:`~rrr_live.service.trader.Trader`, then ``decision_done``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import asyncpg
import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from rrr_live.clock import SimulatedClock
from rrr_live.domain.events import TradeTick
from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.paper.venue import PaperConfig
from rrr_live.exchange.tape import Tape
from rrr_live.features.engine import FeatureEngine
from rrr_live.feeds.binance_wire import BinanceParser
from rrr_live.inference.lifecycle import LifecycleEvent, ModelLifecycle, RunningConfig
from rrr_live.inference.registry_client import RegistryClient
from rrr_live.inference.worker import InferenceWorker
from rrr_live.metrics import Metrics
from rrr_live.models import verdict as rule
from rrr_live.models.window import RingWindow
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine
from rrr_live.risk.reasons import DenyReason
from rrr_live.service.bars import ClosedBar
from rrr_live.service.trader import BatchReport, Trader, TraderParts
from rrr_live.strategy.decision import DecisionStep
from rrr_live.strategy.sizing import Strategy
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.rest import Credentials, RestConfig, SignedRest
from rrr_live.venue.store import OrderStore
from rrr_pipelines.lib.model_registry import ModelRegistry
from tests.live.models.conftest import WINDOW
from tests.live.paper.kit import KEYS
from tests.live.parity.kit import (
    INITIAL_CASH,
    INTERVAL,
    LIMITS,
    LOT,
    SPEC,
    STRATEGY,
    BarClosed,
    Batcher,
    Outcome,
    S,
    decision_record,
    fill_record,
    instruments,
    order_record,
    trade_of,
)


def register_champion(tracking_uri: str, model_dir: Path, name: str) -> None:
    """Register the saved model in MLflow as a passed version and promote it to champion."""
    registry = ModelRegistry(tracking_uri, model_name=name)
    spec = {**SPEC.to_dict(), "fingerprint": SPEC.fingerprint()}
    run_id = registry.log_training_run({}, {}, spec, {}, "parity", model_dir)
    crit = [
        rule.Criterion("sharpe", 1.0, 0.0),
        rule.Criterion("max_drawdown", 0.1, 0.25),
        rule.Criterion("var_99_1d", 0.01, 0.05),
        rule.Criterion("worst_stress_loss", 0.1, 0.5),
    ]
    v = registry.register(run_id, rule.verdict_tags("b", rule.BASELINE_SET, "e", crit)).version
    registry.promote(v, "parity test", "alice")


@asynccontextmanager
async def champion(
    tracking_uri: str, name: str, symbols: list[str], cache: Path
) -> AsyncIterator[InferenceWorker]:
    """The inference worker serving ``name@champion`` through the lifecycle (REST, verified)."""
    config = RunningConfig(SPEC.fingerprint(), SPEC.names, tuple(symbols), INTERVAL)
    client = RegistryClient(tracking_uri, attempts=2, backoff_s=0.0)
    events: list[LifecycleEvent] = []
    life = ModelLifecycle(client, config, cache, Metrics(), model_name=name,
                          on_event=events.append)  # fmt: skip
    worker = InferenceWorker(life, max_staleness_ns=5 * S)
    try:
        await life.poll([rule.CHAMPION])
        life.apply_pending()  # installed before the first batch (the worker would do it there)
        if life.serving() is None:
            raise RuntimeError(f"the champion was not installed: {events}")
        yield worker
    finally:
        worker.close()
        await client.aclose()


def paper_config(symbols: list[str]) -> PaperConfig:
    """Zero fees and latency (the backtest side's defaults); plenty of every asset."""
    balances = {"USDT": Decimal(10**9), **{s: Decimal(10**6) for s in symbols}}
    return PaperConfig(KEYS, balances)


@asynccontextmanager
async def broker(
    venue: ExchangeServer, dsn: str, symbols: list[str], prefix: str
) -> AsyncIterator[BinanceBroker]:
    """A signed broker on the paper venue, its order store in the database at ``dsn``."""
    clock = SimulatedClock(0)
    rest = SignedRest(RestConfig(venue.http_url, timeout_s=10.0),
                      Credentials(KEYS.api_key, KEYS.secret), clock)  # fmt: skip
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool:
        try:
            await rest.sync_time()
            store = OrderStore(pool, prefix, "paper", clock)
            yield BinanceBroker(rest, store, {s: (s, "USDT") for s in symbols})
        finally:
            await rest.close()


def make_trader(
    symbols: list[str], worker: InferenceWorker, venue: BinanceBroker, prefix: str
) -> Trader:
    """The runner's trader over the shared rules (strategy, limits, cash of the backtest side)."""
    portfolio = Portfolio(symbols, INITIAL_CASH, [float(LOT)] * len(symbols))
    step = DecisionStep(Strategy(STRATEGY), RiskEngine(LIMITS, portfolio), portfolio,
                        np.zeros(len(symbols)))  # fmt: skip
    return Trader(TraderParts(
        symbols, FeatureEngine(SPEC, symbols), RingWindow(len(symbols), WINDOW, len(SPEC.names)),
        worker, step, venue, prefix, [LOT] * len(symbols), SPEC.fingerprint(),
    ))  # fmt: skip


async def lockstep_batches(
    ws: ClientConnection, symbols: list[str], closes: int
) -> AsyncIterator[tuple[int, list[ClosedBar]]]:
    """Read the market as a lockstep client; yield ``(t, bars)`` at each ``bar_closed``."""
    insts = instruments(symbols)
    parser, batcher = BinanceParser(insts), Batcher(S)
    seen = 0
    while seen < closes:
        frame = await asyncio.wait_for(ws.recv(), 30)
        msg = json.loads(frame)
        if msg.get("stream") == "rrr@bar_closed":
            seen += 1
            t = int(msg["data"]["bar_close_ns"])
            yield t, batcher.on_step(BarClosed(t)) or []
            continue
        for tick in parser.parse(frame).events:
            if isinstance(tick, TradeTick):
                batcher.on_step(trade_of(tick, insts[tick.symbol]))


async def run_runner_side(
    tape: Tape, tracking_uri: str, model_name: str, dsn: str, cache: Path, prefix: str = "par"
) -> Outcome:
    """The recording through the runner's path (see the module docstring).

    ``prefix`` is the runner name (client order ids): a second run on the same order store
    needs another one.
    """
    symbols = sorted(tape.symbols)
    closes = len({e.closes_bar for e in tape.events if e.closes_bar})
    streams = "/".join(f"{s.lower()}@trade" for s in symbols)
    reports: list[BatchReport] = []
    async with (
        champion(tracking_uri, model_name, symbols, cache) as worker,
        ExchangeServer(tape, lockstep=True, paper=paper_config(symbols)) as ex,
        broker(ex, dsn, symbols, prefix) as venue,
        connect(f"{ex.ws_url}/stream?streams={streams}", max_size=2**22) as ws,
    ):
        trader = make_trader(symbols, worker, venue, prefix)
        async for t, bars in lockstep_batches(ws, symbols, closes):
            if bars:
                reports.append(await trader.on_bars(bars))
            await ws.send(json.dumps({"type": "decision_done", "bar_close_ns": t}))
        await asyncio.wait_for(ex.finished(), 30)
    return runner_outcome(reports, symbols)


def runner_outcome(reports: list[BatchReport], symbols: list[str]) -> Outcome:
    """Canonical records of the runner's batch reports."""
    out = Outcome()
    for r in reports:
        d = r.decision
        if d is None:
            continue
        out.decisions.append(decision_record(r.ts_ns, d.state.value, d.equity))
        for s, lots, code in zip(d.sym.tolist(), d.lots.tolist(), d.codes.tolist(), strict=True):
            status = "sent" if code == DenyReason.OK else "denied"
            out.orders.append(order_record(r.ts_ns, symbols[s], lots, status))
        for o in r.orders:
            if o.filled_qty <= 0 or o.avg_price is None:
                continue
            leg = int(o.client_id.rsplit("-", 1)[1])  # client ids end in the decision's leg
            sign = 1 if int(d.lots[leg]) > 0 else -1
            lots = int(o.filled_qty / LOT)
            symbol = symbols[int(d.sym[leg])]
            out.fills.append(fill_record(r.ts_ns, symbol, sign * lots, o.avg_price, 0.0))
    return out
