"""Configuration → a ready :class:`~rrr_live.service.app.LiveService`, and the run around it.

:func:`run_live` is the whole process (``rrr live run`` and ``python -m rrr_live``): resolve the
model the registry serves as ``champion`` (it defines the feature spec, universe and bar interval
the running configuration must keep), reach the database (orders and the runner journal), the
venue (instruments, account, signed REST) and the feed, restore the risk state and the batch
sequence from the journal, then run the supervisor and write the run summary at exit.

The first champion is verified by the same :class:`~rrr_live.inference.lifecycle.ModelLifecycle`
that later swaps it: the bootstrap only reads its manifest to learn the running configuration.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import torch

from rrr_live.clock import LiveClock
from rrr_live.config import get_settings
from rrr_live.domain.bars import INTERVAL_NS
from rrr_live.domain.instrument import Instrument
from rrr_live.errors import ConfigError, RRRError
from rrr_live.features.engine import FeatureEngine
from rrr_live.features.spec import FeatureSpec
from rrr_live.feeds.binance import rest_url_for
from rrr_live.feeds.connection import FeedSettings
from rrr_live.feeds.gc_tuning import tuned_gc
from rrr_live.feeds.instruments import binance_instruments, fetch_instruments
from rrr_live.inference.lifecycle import LifecycleEvent, ModelLifecycle, RunningConfig
from rrr_live.inference.registry_client import RegistryClient, VersionRef
from rrr_live.inference.worker import InferenceWorker
from rrr_live.metrics import Metrics, serve_metrics
from rrr_live.models.loader import LoadedEnsemble, load_model
from rrr_live.models.window import RingWindow
from rrr_live.persistence.databases import prepare_databases
from rrr_live.persistence.journal.pool import PoolConfig
from rrr_live.persistence.journal.writer import JournalWriter
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine
from rrr_live.service.app import LiveService
from rrr_live.service.bars import BarBuilder
from rrr_live.service.config import LiveConfig
from rrr_live.service.control import ControlServer, risk_handlers
from rrr_live.service.intake import (
    Intake,
    TappedBinanceFeed,
    TappedCoinbaseFeed,
    TappedFeed,
    answer_decision_done,
)
from rrr_live.service.journal_sink import (
    RunnerJournal,
    RunRecorder,
    replay_fills,
    write_json_atomic,
)
from rrr_live.service.parity import fee_rates, session_payload, tap_feed_sessions
from rrr_live.service.runner_metrics import RunnerGauges
from rrr_live.service.startup import reconcile_at_start
from rrr_live.service.trader import BatchReport, Trader, TraderParts
from rrr_live.service.warmup import WarmupSource, warm_up
from rrr_live.shards.control import LedgerCommands
from rrr_live.shards.ledger import RiskLedger
from rrr_live.shards.plan import shard_plan
from rrr_live.strategy.decision import DecisionStep
from rrr_live.strategy.sizing import Strategy
from rrr_live.venue.broker import BinanceBroker
from rrr_live.venue.rest import Credentials, RestConfig, SignedRest
from rrr_live.venue.store import OrderStore
from rrr_live.venue.wsapi import WsApiRest, ws_api_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFacts:
    """What the first champion fixes for the whole run."""

    version: str
    spec: FeatureSpec
    universe: tuple[str, ...]
    interval: str
    window: int
    model_universe: tuple[str, ...] = ()  # the whole universe when a shard trades part of it


@dataclass(frozen=True)
class VenueFacts:
    """What the venue says about the universe and the account."""

    instruments: dict[str, Instrument]
    assets: dict[str, tuple[str, str]]
    cash: float


@dataclass
class Observer:
    """Where batch reports and lifecycle events go: the summary, the journal, the metrics.

    Args:
        rec: The in-memory run record.
        rj: The runner journal.
        metrics: Prometheus metrics (stage latencies, the runner's state).
        risk: The risk engine (set once built, with ``gauges.watch_risk``).
        last_ts: Data time of the last batch: the time of operator commands too.
    """

    rec: RunRecorder
    rj: RunnerJournal
    metrics: Metrics
    risk: RiskEngine | None = None
    last_ts: int = 0
    gauges: RunnerGauges = field(init=False)

    def __post_init__(self) -> None:
        self.gauges = RunnerGauges(self.metrics)

    def now(self) -> int:
        """Data time now (the last batch's close)."""
        return self.last_ts

    def on_event(self, e: LifecycleEvent) -> None:
        """Record a lifecycle event."""
        self.rec.on_lifecycle(e)
        self.gauges.on_event(e)
        self.rj.lifecycle(e, self.last_ts)

    def on_batch(self, r: BatchReport) -> None:
        """Record a batch: latencies, summary, journal rows, the risk state."""
        self.last_ts = r.ts_ns
        stage = self.metrics.stage_latency
        if r.closing_send_ns and r.decided_ns:
            stage.labels("tick_to_decision").observe((r.decided_ns - r.closing_send_ns) / 1e9)
        for sent, answered in r.ack_ns:
            stage.labels("venue_ack").observe((answered - sent) / 1e9)
        self.gauges.on_batch(r)
        state = self.risk.state.name if self.risk is not None else ""
        changed = self.rec.on_batch(r, state)
        self.rj.batch(r)
        if self.risk is not None:
            self.rj.risk(r.ts_ns, self.risk)
        if changed:
            self.rj.event("risk_state", r.ts_ns, {"state": state, "by": "batch"})


async def run_live(cfg: LiveConfig) -> int:
    """Run the configured runner until it stops; return the exit status (0 when clean)."""
    async with AsyncExitStack() as stack:
        svc, rec, rj, writer = await assemble(cfg, stack)
        with tuned_gc():  # start-up built what lives all run: freeze it (see gc_tuning)
            code = await svc.run()
        if rj is not None:
            await rj.close()
        status = writer.status() if writer is not None else None
        journal = {
            "rows": (status.committed if status else 0) + (rj.rows if rj else 0),
            "spilled": status.spilled if status else 0,
            "dropped": status.dropped if status else 0,
            "frames": svc.report.journaled,
        }
        summary = rec.summary(svc.report.exit or "feed-ended", svc.report.frames, journal)
        summary["canceled"] = [
            {"client_id": o.client_id, "status": o.state} for o in svc.report.canceled
        ]
        if cfg.runner.summary_json:
            write_json_atomic(Path(cfg.runner.summary_json), summary)
        return code
    raise AssertionError("unreachable")  # pragma: no cover


async def assemble(
    cfg: LiveConfig, stack: AsyncExitStack
) -> tuple[LiveService, RunRecorder, RunnerJournal, JournalWriter | None]:
    """Build every part of the runner; resources are closed by ``stack``.

    Raises:
        ConfigError: no champion, or a champion the configuration cannot run.
    """
    settings = get_settings()
    cache = Path(cfg.runner.cache_dir or settings.home / "live" / cfg.runner.name)
    await asyncio.to_thread(cache.mkdir, parents=True, exist_ok=True)
    dsn = (await asyncio.to_thread(prepare_databases, settings)).rrr_url("libpq")
    # every order in flight holds a connection while the store writes it
    size = 4 + cfg.venue.order_concurrency
    pool = await stack.enter_async_context(asyncpg.create_pool(dsn, min_size=1, max_size=size))
    client = RegistryClient(cfg.model.registry_url or settings.tracking_uri)
    stack.push_async_callback(client.aclose)
    device = _device(cfg.model.device)
    facts = await _model_facts(cfg, client, cache, device)
    plan = shard_plan(cfg, facts.universe)  # a shard trades its symbols; the model keeps all
    facts = replace(facts, universe=plan.symbols, model_universe=plan.universe)
    venue = await _venue_facts(cfg, facts.universe)
    rest = _order_api(cfg)
    stack.push_async_callback(rest.close)
    await rest.sync_time()
    cash = cfg.venue.initial_cash or await _quote_balance(rest, venue)
    session = f"{cfg.runner.name}-{uuid.uuid4().hex[:12]}"
    rj = RunnerJournal(pool, cfg.runner.name, session)
    rj.start()
    stack.push_async_callback(rj.close)
    rec = RunRecorder(cfg.runner.name, cfg.limits())
    metrics = Metrics()
    obs = Observer(rec, rj, metrics)
    life = ModelLifecycle(client, _running(facts), cache / "models", metrics,
                          model_name=cfg.model.name, device=device,
                          on_event=obs.on_event)  # fmt: skip
    await life.poll()
    if life.serving() is None and not life.apply_pending():
        raise RRRError(f"{cfg.model.name}@champion v{facts.version} was refused (see the log)")
    worker = InferenceWorker(life, cfg.runner.max_staleness_bars * cfg.bar_interval_ns)
    stack.callback(worker.close)
    broker = BinanceBroker(rest, _store(pool, cfg, cfg.feed.protocol), venue.assets)
    trader = _trader(cfg, facts, venue, worker, broker, cash)
    trader.seq = await rj.last_seq()
    obs.risk = risk = trader.p.step.risk
    obs.gauges.watch_risk(risk)
    restored = await rj.restore_risk(risk)
    if restored is not None:
        logger.info("risk state restored from the journal: %s", restored)
    await _restore_positions(rj, trader)
    await reconcile_at_start(broker, rj, trader)  # this runner's prefix and symbols only
    if cfg.shard is not None:  # the account's shards share one risk ledger
        trader.p.ledger = await _ledger(cfg, pool, cash, metrics)
    market = await _market_instruments(cfg, facts.universe)
    depth = facts.spec.warmup_bars() + facts.window + 1  # warm-up bars per symbol
    rj.event("session", 0, session_payload(cfg, facts.version, venue.instruments, market, cash,
                                           await fee_rates(rest), depth))  # fmt: skip
    feed = _feed(cfg, market, metrics)
    stack.push_async_callback(feed.aclose)
    writer = await _journal_writer(cfg, dsn, cache, metrics, stack)

    async def before_first(end_ns: int) -> None:
        src = WarmupSource(dsn, cfg.runner.name, cfg.runner.warmup_source, facts.interval,
                           cfg.bar_interval_ns)  # fmt: skip
        report = await warm_up(trader, pool, src, end_ns, depth)
        logger.info("warm-up: %s", report)

    async def flush() -> None:
        if writer is not None:
            await writer.flush()
        await rj.flush()

    svc = LiveService(
        feed, Intake(BarBuilder(cfg.bar_interval_ns), facts.universe, market,
                     int(cfg.runner.watermark_s * 1e9)),
        trader, broker, lifecycle=life, poll_interval_s=cfg.model.poll_interval_s,
        send_stamp=lambda: feed.last_send_ns,
        journal=None if writer is None else tap_feed_sessions(writer.put, rj.event, obs.now),
        on_batch=obs.on_batch,
        answer=(lambda t: answer_decision_done(feed, t)) if cfg.feed.lockstep else None,
        before_first=before_first, flush=flush,
        open_orders_policy=cfg.runner.open_orders_policy, max_seconds=cfg.runner.max_seconds,
    )  # fmt: skip
    svc.control = _control(cfg, risk, rj, rec, svc, obs.now)
    if cfg.control.metrics_port:
        stack.callback(serve_metrics(metrics, cfg.control.metrics_port).close)
    return svc, rec, rj, writer


async def _ledger(cfg: LiveConfig, pool: asyncpg.Pool, cash: float, metrics: Metrics) -> RiskLedger:
    ledger = RiskLedger(pool, cfg.ledger_account, cfg.runner.name, cfg.risk,
                        cfg.ledger.timeout_s, metrics.ledger_lock_wait.observe)  # fmt: skip
    await ledger.open(cash)
    logger.info("risk ledger of account %s: shard %s", cfg.ledger_account, cfg.runner.name)
    if not cfg.venue.initial_cash:  # ``cash`` is the venue's quote balance: check the ledger's
        await ledger.check_cash(cash, tolerance=max(1e-8, abs(cash) * 1e-6))
    return ledger


def _device(choice: str) -> str:
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("model.device = cuda but no CUDA device is available")
    return choice


async def _model_facts(
    cfg: LiveConfig, client: RegistryClient, cache: Path, device: str
) -> ModelFacts:
    ref = await client.alias(cfg.model.name, "champion")
    if ref is None:
        raise RRRError(f"no {cfg.model.name}@champion in the registry: nothing to trade")
    model = await _bootstrap_load(client, ref, cache, device)
    m = model.manifest
    spec = FeatureSpec.from_dict(m.feature_spec)
    declared = m.metadata.get("universe")
    universe = tuple(cfg.feed.symbols) or tuple(str(s) for s in declared or ())
    if not universe:
        raise ConfigError("no symbols: the model declares no universe and feed.symbols is empty")
    interval = str(m.metadata.get("bar_interval", _label(cfg.bar_interval_ns)))
    if INTERVAL_NS.get(interval) != cfg.bar_interval_ns:
        raise ConfigError(
            f"runner.bar_interval_s = {cfg.runner.bar_interval_s} but {cfg.model.name}"
            f" v{ref.version} is for {interval} bars; refusing to run it"
        )
    # The ring serves every alias: size it for the shadow's window too (a later, longer-window
    # model is refused by the lifecycle rather than scored on a truncated window).
    shadow = await client.alias(cfg.model.name, "shadow")
    shadow_window = 0
    if shadow is not None and shadow.version != ref.version:
        shadow_window = (await _bootstrap_load(client, shadow, cache, device)).window_length
    window = max(1, model.window_length, shadow_window)
    return ModelFacts(ref.version, spec, universe, interval, window)


async def _bootstrap_load(
    client: RegistryClient, ref: VersionRef, cache: Path, device: str
) -> LoadedEnsemble:
    work = Path(tempfile.mkdtemp(prefix="bootstrap-", dir=cache))
    try:
        folder = await client.download(ref, work / "model")
        model: LoadedEnsemble = await asyncio.to_thread(load_model, folder, device=device)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model


def _label(interval_ns: int) -> str:
    for label, ns in INTERVAL_NS.items():
        if ns == interval_ns:
            return label
    raise ConfigError(f"bar interval of {interval_ns / 1e9:g}s is not one of {sorted(INTERVAL_NS)}")


def _running(f: ModelFacts) -> RunningConfig:
    universe = f.model_universe or f.universe
    return RunningConfig(f.spec.fingerprint(), f.spec.names, universe, f.interval, f.window)


async def _venue_facts(cfg: LiveConfig, universe: tuple[str, ...]) -> VenueFacts:
    async with httpx.AsyncClient(base_url=cfg.venue.url, timeout=10.0) as http:
        resp = await http.get("/api/v3/exchangeInfo")
        resp.raise_for_status()
    raw = resp.content
    instruments = binance_instruments(raw, grid="order")
    info = {s["symbol"]: s for s in resp.json()["symbols"]}
    missing = [s for s in universe if s not in instruments]
    if missing:
        raise ConfigError(f"the venue does not list {', '.join(missing)}")
    assets = {s: (str(info[s]["baseAsset"]), str(info[s]["quoteAsset"])) for s in universe}
    return VenueFacts({s: instruments[s] for s in universe}, assets, 0.0)


async def _quote_balance(rest: SignedRest, venue: VenueFacts) -> float:
    quotes = {q for _, q in venue.assets.values()}
    if len(quotes) != 1:
        raise ConfigError(f"the universe is quoted in {sorted(quotes)}; set venue.initial_cash")
    account: Any = await rest.signed("GET", "/api/v3/account", {})
    for b in account.get("balances", []):
        if b.get("asset") in quotes:
            return float(Decimal(str(b["free"])) + Decimal(str(b.get("locked", "0"))))
    raise ConfigError(f"the venue account holds no {quotes.pop()}; set venue.initial_cash")


def _order_api(cfg: LiveConfig) -> SignedRest:
    """Signed venue access: orders on the WebSocket API (default) or all on REST."""
    args = (RestConfig(cfg.venue.url), Credentials(cfg.api_key.get(), cfg.api_secret.get()),
            LiveClock())  # fmt: skip
    if cfg.venue.order_transport == "rest":
        return SignedRest(*args)
    return WsApiRest(cfg.venue.ws_api_url or ws_api_url(cfg.venue.url), *args)


def _store(pool: asyncpg.Pool, cfg: LiveConfig, venue: str) -> OrderStore:
    return OrderStore(pool, cfg.runner.name, venue, LiveClock())


def _trader(
    cfg: LiveConfig,
    f: ModelFacts,
    venue: VenueFacts,
    worker: InferenceWorker,
    broker: BinanceBroker,
    cash: float,
) -> Trader:
    inst = [venue.instruments[s] for s in f.universe]
    portfolio = Portfolio(list(f.universe), cash, [i.lot for i in inst])
    risk = RiskEngine(cfg.risk, portfolio)
    min_notional = np.array([float(i.min_notional) for i in inst])
    step = DecisionStep(Strategy(cfg.strategy), risk, portfolio, min_notional)
    engine = FeatureEngine(f.spec, list(f.universe))
    window = RingWindow(len(f.universe), f.window, len(f.spec.names))
    parts = TraderParts(list(f.universe), engine, window, worker, step, broker, cfg.runner.name,
                        [i.lot_size for i in inst], f.spec.fingerprint(),
                        cfg.venue.order_concurrency)  # fmt: skip
    return Trader(parts)


async def _restore_positions(rj: RunnerJournal, trader: Trader) -> None:
    """Positions and average costs this runner's journaled fills built (a restart resumes).

    Cash stays the venue account's balance, which already paid for them.
    """
    replay_fills(trader.p.step.portfolio, trader.p.lot_qty, await rj.filled_orders())


async def _market_instruments(cfg: LiveConfig, universe: tuple[str, ...]) -> dict[str, Instrument]:
    """The feed's instruments (the market-data grid) of the universe."""
    listed = await fetch_instruments(cfg.feed.protocol, _rest_url(cfg))
    missing = [s for s in universe if s not in listed]
    if missing:
        raise ConfigError(f"the feed does not list {', '.join(missing)}")
    return {s: listed[s] for s in universe}


def _rest_url(cfg: LiveConfig) -> str:
    return cfg.feed.rest_url or rest_url_for(cfg.feed.url)


def _feed(cfg: LiveConfig, mine: dict[str, Instrument], m: Metrics) -> TappedFeed:
    rest = _rest_url(cfg)
    settings = FeedSettings(idle_timeout_s=cfg.feed.idle_timeout_s)
    if cfg.feed.protocol == "binance":
        # the book only when journaled for parity_report (the decisions need trades alone)
        streams = (
            ("trade", "depth@100ms") if cfg.journal.enabled and cfg.journal.book else ("trade",)
        )
        return TappedBinanceFeed(cfg.feed.url, mine, settings, metrics=m, rest_url=rest,
                                 streams=streams)  # fmt: skip
    return TappedCoinbaseFeed(cfg.feed.url, mine, settings, metrics=m)


async def _journal_writer(
    cfg: LiveConfig, dsn: str, cache: Path, metrics: Metrics, stack: AsyncExitStack
) -> JournalWriter | None:
    if not cfg.journal.enabled:
        return None
    writer = JournalWriter(PoolConfig(dsn), cache / "spill", metrics=metrics, clock=LiveClock())
    await writer.start()
    stack.push_async_callback(writer.close)
    return writer


def _control(
    cfg: LiveConfig,
    risk: RiskEngine,
    rj: RunnerJournal,
    rec: RunRecorder,
    svc: LiveService,
    now_ns: Any,
) -> ControlServer | None:
    if not cfg.control.port:
        return None

    def status() -> dict[str, Any]:
        return {"runner": cfg.runner.name, "state": risk.state.name, "frames": svc.report.frames,
                "batches": rec.batches, "served": rec.served, "shard": str(cfg.shard or ""),
                "symbols": len(svc.trader.p.universe)}  # fmt: skip

    base = risk_handlers(risk, now_ns, status)
    if isinstance(svc.trader.p.ledger, RiskLedger):  # a shard: halt/resume the whole account
        base = LedgerCommands(svc.trader.p.ledger, now_ns).wrap(base)

    def recorded(action: Any) -> Any:
        def run(reason: str) -> str:
            state = action(reason)
            ts = now_ns()
            if rec.on_state(ts, risk.state.name):
                rj.event("risk_state", ts, {"state": risk.state.name, "by": reason})
            rj.risk(ts, risk)
            return str(state)

        return run

    handlers = type(base)(base.status, recorded(base.halt), recorded(base.resume),
                          recorded(base.flatten))  # fmt: skip
    token = cfg.control_token.get() if cfg.control_token else None
    return ControlServer(handlers, token, cfg.control.host, cfg.control.port)
