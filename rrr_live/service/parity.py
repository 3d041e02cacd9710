"""``parity_report``: replay what a runner session captured through the tick backtest, compare.

What the runner journals for it (called by :mod:`rrr_live.service.assemble`):

* :func:`session_payload` – the session's configuration event: bar interval, watermark,
  universe, both instrument grids (market data and orders), cash, the venue's commission rates,
  strategy, risk limits, model name and version, warm-up source and depth;
* :func:`tap_feed_sessions` – one event per feed session it reads (its market data is journaled
  under that feed session id).

The replay (:func:`replay_capture`) runs the captured market events, in receive order, through
the runner's own :class:`~rrr_live.service.intake.Intake` (trades → event-time bars → decision
batches, feed gaps included), closing the last bars at the runner's last decision time, and the
batches through :class:`~rrr_live.backtest.tick_loop.TickBacktest` with the same model version
(downloaded from the registry and loaded as the runner loads it: the safe loader, never
unpickling), strategy, limits, cash and fees, after the same warm-up (the bars the runner's
:func:`~rrr_live.service.warmup.warmup_groups` rule gives, fed to the features and windows); its
venue simulation fills the orders on the captured book. :func:`parity_report` compares that
with what the runner did (its batch reports and the venue's answers journaled with them) and
names the first divergent event (:func:`rrr_live.backtest.parity.compare`).

Not replayed: the positions a restarted session restored (the replay starts flat; the report
notes it), and a session whose champion changed mid-run (refused). A Binance runner journals
the book only with ``[journal] book = true``; without a book there is nothing to fill on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.data import panel_from_bars
from rrr_live.backtest.parity import (
    ModelSignal,
    Outcome,
    ParityReport,
    backtest_outcome,
    before,
    compare,
    live_outcome,
    tick_frame,
)
from rrr_live.backtest.tick_loop import TickBacktest
from rrr_live.config import get_settings
from rrr_live.domain.bars import INTERVAL_NS
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, Received
from rrr_live.errors import RRRError
from rrr_live.execution.models import FeeModel
from rrr_live.features.spec import FeatureSpec
from rrr_live.inference.registry_client import RegistryClient
from rrr_live.models.loader import LoadedEnsemble, load_model
from rrr_live.persistence.databases import prepare_databases
from rrr_live.persistence.journal.replay import CaptureError, RunnerCapture, read_capture
from rrr_live.risk.limits import RiskLimits
from rrr_live.service.bars import BarBuilder, ClosedBar
from rrr_live.service.config import LiveConfig, load_config
from rrr_live.service.intake import BarClosedSignal, Intake
from rrr_live.service.warmup import WarmupSource, warmup_groups
from rrr_live.strategy.sizing import StrategyConfig
from rrr_live.venue.rest import SignedRest

logger = logging.getLogger(__name__)

EventSink = Callable[[str, int, Mapping[str, Any]], None]


# ------------------------------------------------------------------------ what the runner journals
def session_payload(
    cfg: LiveConfig,
    version: str,
    venue: Mapping[str, Instrument],
    market: Mapping[str, Instrument],
    cash: float,
    fees: Mapping[str, str],
    warmup_depth: int,
) -> dict[str, Any]:
    """The session's configuration event (what a replay needs; no secrets)."""
    return {
        "bar_interval_ns": cfg.bar_interval_ns,
        "watermark_ns": int(cfg.runner.watermark_s * 1e9),
        "universe": list(venue),
        "venue": {s: [str(i.tick_size), str(i.lot_size), str(i.min_notional)]
                  for s, i in venue.items()},
        "market": {s: [str(i.tick_size), str(i.lot_size)] for s, i in market.items()},
        "cash": cash,
        "fees": dict(fees),
        "strategy": dataclasses.asdict(cfg.strategy),
        "risk": cfg.limits(),
        "model": {"name": cfg.model.name, "version": version},
        "protocol": cfg.feed.protocol,
        "warmup_source": cfg.runner.warmup_source,
        "warmup_depth": warmup_depth,
    }  # fmt: skip


async def fee_rates(rest: SignedRest) -> dict[str, str]:
    """The account's ``commissionRates`` (maker, taker) as the venue states them ({}: none)."""
    try:
        account: Any = await rest.signed("GET", "/api/v3/account", {})
    except RRRError as e:
        logger.warning("the venue did not state its commission rates: %s", e)
        return {}
    rates = account.get("commissionRates") or {}
    return {k: str(rates[k]) for k in ("maker", "taker") if k in rates}


def tap_feed_sessions(
    put: Callable[[Received], Awaitable[None]], event: EventSink, now_ns: Callable[[], int]
) -> Callable[[Received], Awaitable[None]]:
    """Wrap the journal's ``put``: journal a ``session`` event for each new feed session."""
    last = ""

    async def journal(rec: Received) -> None:
        nonlocal last
        if rec.session != last:
            last = rec.session
            event("session", now_ns(), {"feed_session": rec.session})
        await put(rec)

    return journal


# ------------------------------------------------------------------------------------ the replay
def _instruments(grids: Mapping[str, list[str]]) -> dict[str, Instrument]:
    return {s: Instrument.create(s, *g) for s, g in grids.items()}


def replay_batches(cap: RunnerCapture) -> list[list[ClosedBar]]:
    """The decision batches the runner's intake makes of the captured events.

    The last bars are closed at the runner's last decision time (what its lockstep control
    frame or watermark did); batches after it, or without clean bars, are not decided.
    """
    c = cap.config
    market = _instruments(c["market"])
    intake = Intake(BarBuilder(int(c["bar_interval_ns"])), c["universe"], market,
                    int(c["watermark_ns"]))  # fmt: skip
    batches = [b for rec in cap.received for b in intake.on_received(rec)]
    last = max((int(r["ts_ns"]) for r in cap.reports if r["decision"] is not None), default=0)
    if cap.received:
        end = cap.received[-1]
        close = Received(end.session, end.seq + 1, end.recv_ns, end.venue,
                         BarClosedSignal(last, ()))  # type: ignore[arg-type]  # fmt: skip
        batches += intake.on_received(close)
    out = []
    for b in batches:
        clean = [bar for bar in b.bars if not bar.gapped]
        if clean and b.end_ns <= last:
            out.append(clean)
    return out


def _label(interval_ns: int) -> str:
    for label, ns in INTERVAL_NS.items():
        if ns == interval_ns:
            return label
    raise CaptureError(f"bar interval of {interval_ns / 1e9:g}s has no label")


def bar_frame(batches: list[list[ClosedBar]], interval: str) -> pd.DataFrame:
    """The closed bars as a canonical bar frame (``ts`` = bar open)."""
    rows = [(b.symbol, b.start_ns, b.open, b.high, b.low, b.close, b.volume)
            for batch in batches for b in batch]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["symbol", "ts_ns", "open", "high", "low", "close",
                                        "volume"])  # fmt: skip
    frame["ts"] = pd.to_datetime(frame.pop("ts_ns"), unit="ns", utc=True)
    frame["interval"] = interval
    return frame


def _limits(values: Mapping[str, Any]) -> RiskLimits:
    plain: dict[str, Any] = {k: math.inf if v is None else v for k, v in values.items()}
    return RiskLimits(**plain)


def replay_config(c: Mapping[str, Any]) -> BacktestConfig:
    """The runner's cash, strategy, limits, fees and order grid as a backtest configuration.

    Raises:
        CaptureError: the session journaled no commission rates.
    """
    fees = c.get("fees") or {}
    if "taker" not in fees:
        raise CaptureError("the session journaled no commission rates (the venue stated none)")
    return BacktestConfig(
        initial_cash=float(c["cash"]), strategy=StrategyConfig(**c["strategy"]),
        risk=_limits(c["risk"]),
        fees=FeeModel(maker_rate=float(fees.get("maker", 0)), taker_rate=float(fees["taker"])),
        instruments=_instruments(c["venue"]),
    )  # fmt: skip


def replay_capture(
    cap: RunnerCapture, model: LoadedEnsemble, warm: Sequence[Sequence[ClosedBar]] = ()
) -> Outcome:
    """The captured ticks through the tick backtest (see the module docstring).

    ``warm``: the runner's warm-up bars (:func:`warmup_bars`), fed to the features and windows
    before the first decision.

    Raises:
        CaptureError: no market data, no book (nothing to fill on) or no bar was captured.
    """
    if not cap.received:
        raise CaptureError(f"session {cap.session!r} journaled no market data")
    if not any(isinstance(r.event, BookUpdate) for r in cap.received):
        raise CaptureError(f"session {cap.session!r} journaled no book to fill orders on"
                           " (binance: set [journal] book = true)")  # fmt: skip
    c = cap.config
    batches = replay_batches(cap)
    if not batches:
        raise CaptureError(f"session {cap.session!r}: its market data closes no bar")
    panel = panel_from_bars(bar_frame(batches, _label(int(c["bar_interval_ns"]))))
    spec = FeatureSpec.from_dict(model.manifest.feature_spec)
    config = replay_config(c)
    ticks = tick_frame((r.event for r in cap.received), _instruments(c["market"]))
    signal = ModelSignal(model, panel.symbols, spec)
    signal.warm([(b.symbol, b.end_ns, b.open, b.high, b.low, b.close, b.volume)
                 for b in g if not b.gapped] for g in warm)  # fmt: skip
    loop = TickBacktest(panel, signal, config, ticks)
    result = loop.run()
    return backtest_outcome(result.orders, result.fills, result.equity, _instruments(c["venue"]))


def capture_outcome(cap: RunnerCapture) -> Outcome:
    """What the runner did: its batch reports (decisions, legs, the venue's answers)."""
    lots = {s: Decimal(g[1]) for s, g in cap.config["venue"].items()}
    return live_outcome(cap.reports, cap.config["universe"], lots)


def notes_of(cap: RunnerCapture) -> list[str]:
    """What the replay does not reproduce in this session (it starts flat and cold)."""
    notes = []
    if cap.earlier_batches:
        notes.append(
            f"the session follows {cap.earlier_batches} batches of earlier sessions:"
            " the positions it restored are not replayed (the replay starts flat)"
        )
    if "warmup_depth" not in cap.config:
        notes.append("the session journaled no warm-up depth: the replay starts cold")
    return notes


async def warmup_bars(dsn: str, cap: RunnerCapture) -> list[list[ClosedBar]]:
    """The bars the runner warmed up on before its first decision (the runner's own rule)."""
    c = cap.config
    depth = int(c.get("warmup_depth", 0))
    first = next((int(r["ts_ns"]) for r in cap.reports if r["decision"] is not None), 0)
    if depth <= 0 or not first:
        return []
    interval_ns = int(c["bar_interval_ns"])
    src = WarmupSource(dsn, cap.runner, str(c.get("warmup_source", "")), _label(interval_ns),
                       interval_ns)  # fmt: skip
    async with asyncpg.create_pool(dsn, min_size=1, max_size=1) as pool:
        groups, _ = await warmup_groups(pool, src, c["universe"], first, depth)
    return groups


def report_of(
    cap: RunnerCapture, model: LoadedEnsemble, warm: Sequence[Sequence[ClosedBar]] = ()
) -> ParityReport:
    """Replay ``cap`` with ``model`` and compare (fills up to the last decision: see parity)."""
    live = capture_outcome(cap)
    replay = replay_capture(cap, model, warm)
    last = live.decisions[-1][0] if live.decisions else 0
    return compare(before(live, last), before(replay, last), notes_of(cap))


async def load_version(
    client: RegistryClient, name: str, version: str, work: Path
) -> LoadedEnsemble:
    """Download ``name`` v``version`` and load it with the safe loader (CPU)."""
    ref = await client.version(name, version)
    folder = await client.download(ref, work / "model")
    model: LoadedEnsemble = await asyncio.to_thread(load_model, folder, device="cpu")
    return model


async def parity_report(dsn: str, runner: str, session: str, registry_url: str) -> ParityReport:
    """Read ``runner``'s session (``""``: latest), replay it, compare.

    Raises:
        CaptureError: nothing usable journaled, or a session served by several versions.
        RRRError: the registry or the model failed (their own errors).
    """
    con = await asyncpg.connect(dsn)
    try:
        cap = await read_capture(con, runner, session)
    finally:
        await con.close()
    if len(cap.versions) != 1:
        raise CaptureError(f"session {cap.session!r} was decided by versions {cap.versions};"
                           " only a one-version session can be replayed")  # fmt: skip
    client = RegistryClient(registry_url)
    work = Path(tempfile.mkdtemp(prefix="rrr-parity-"))
    try:
        model = await load_version(client, cap.config["model"]["name"], cap.versions[0], work)
    finally:
        await client.aclose()
        shutil.rmtree(work, ignore_errors=True)
    warm = await warmup_bars(dsn, cap)
    logger.info("replaying %s: %d batches, %d market events, %d warm-up bar closes, model v%s",
                cap.session, len(cap.reports), len(cap.received), len(warm),
                cap.versions[0])  # fmt: skip
    return await asyncio.to_thread(report_of, cap, model, warm)


class NoSecrets(Mapping[str, str]):
    """The environment, a placeholder for any missing variable (for reports that send no order)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def __getitem__(self, key: str) -> str:
        """The variable, or a placeholder."""
        return self.env.get(key) or "unused-by-this-report"

    def __iter__(self) -> Iterator[str]:
        """The environment's names."""
        return iter(self.env)

    def __len__(self) -> int:
        """How many variables the environment has."""
        return len(self.env)


async def report_for_config(path: Path, session: str = "") -> ParityReport:
    """:func:`parity_report` for the runner a TOML file configures (its database and registry).

    Raises:
        ConfigError: an unreadable or invalid configuration.
        CaptureError: nothing usable journaled (see :func:`parity_report`).
    """
    cfg = load_config(path, NoSecrets(os.environ))
    settings = get_settings()
    dbs = await asyncio.to_thread(prepare_databases, settings)
    registry = cfg.model.registry_url or settings.tracking_uri
    return await parity_report(dbs.rrr_url("libpq"), cfg.runner.name, session, registry)
