"""What the runner records: batch reports, lifecycle events, live scores, risk state, summary.

Two consumers of the same observations:

* :class:`RunRecorder` keeps the run in memory and writes the run summary JSON at exit
  (atomically: a temporary file renamed over the target);
* :class:`RunnerJournal` writes them to the runner tables of migration 0006 through asyncpg,
  off the decision path (a queue drained by one task; :meth:`RunnerJournal.flush` waits until
  every row is committed). It also restores what a restarted runner needs: the risk engine's
  saved state (a HALT survives a restart) and the last batch sequence (client order ids are
  never reused).

Live scores (:class:`LiveScores`): every version's forecast of a symbol at one batch is scored
against that symbol's realized return to its next bar (``close_next / close - 1``): the pooled
Pearson correlation over all scored pairs (``ic``) and the share of pairs whose signs agree,
zeros left out (``hit_rate``), the rules of ``rrr_pipelines.lib.ml.metrics`` ``pooled_ic`` and
``hit_rate`` computed incrementally.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from rrr_live.inference.lifecycle import LifecycleEvent, describe
from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine
from rrr_live.risk.state import RiskSnapshot
from rrr_live.service.trader import BatchReport

PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


@dataclass
class _Sums:
    n: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0
    hits: int = 0
    signed: int = 0

    def add(self, x: float, y: float) -> None:
        self.n += 1
        self.sx, self.sy = self.sx + x, self.sy + y
        self.sxx, self.syy, self.sxy = self.sxx + x * x, self.syy + y * y, self.sxy + x * y
        if x != 0 and y != 0:
            self.signed += 1
            self.hits += int((x > 0) == (y > 0))

    def view(self) -> dict[str, Any]:
        n = self.n
        vx, vy = (
            self.sxx - self.sx * self.sx / n if n else 0.0,
            self.syy - self.sy * self.sy / n if n else 0.0,
        )
        cov = self.sxy - self.sx * self.sy / n if n else 0.0
        ic = cov / math.sqrt(vx * vy) if n > 1 and vx > 0 and vy > 0 else None
        hit = self.hits / self.signed if self.signed else None
        return {"ic": ic, "hit_rate": hit, "n": n}


@dataclass
class LiveScores:
    """Live IC and hit rate per model version (see the module docstring)."""

    _last: dict[str, tuple[float, dict[str, float]]] = field(default_factory=dict)
    _sums: dict[str, _Sums] = field(default_factory=dict)

    def on_batch(self, report: BatchReport) -> list[str]:
        """Score the previous forecasts of the batch's symbols; remember the new ones.

        Returns:
            The versions whose scores changed.
        """
        changed: set[str] = set()
        forecasts = _forecasts(report)
        for symbol, close in zip(report.symbols, report.closes, strict=True):
            prev = self._last.get(symbol)
            if prev is not None and prev[0] > 0:
                realized = close / prev[0] - 1.0
                for version, f in prev[1].items():
                    self._sums.setdefault(version, _Sums()).add(f, realized)
                    changed.add(version)
            self._last[symbol] = (close, forecasts.get(symbol, {}))
        return sorted(changed)

    def view(self) -> dict[str, dict[str, Any]]:
        """``{version: {"ic", "hit_rate", "n"}}``."""
        return {v: s.view() for v, s in sorted(self._sums.items())}


def _forecasts(report: BatchReport) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    sc = report.scores
    if sc is None:
        return out
    for version, values in (
        (sc.champion_version, sc.forecast),
        (sc.shadow_version, sc.shadow_forecast),
    ):
        if not version or values is None:
            continue
        for symbol, f in zip(report.symbols, values.tolist(), strict=True):
            if math.isfinite(f):
                out.setdefault(symbol, {})[version] = float(f)
    return out


def percentiles(values_ns: list[int]) -> dict[str, float | int | None]:
    """p50/p95/p99/p99.9 in milliseconds of nanosecond durations, and their count."""
    if not values_ns:
        return {**dict.fromkeys(PERCENTILES), "n": 0}
    arr = np.asarray(values_ns, dtype=np.float64) / 1e6
    out: dict[str, float | int | None] = {
        k: float(np.percentile(arr, q)) for k, q in PERCENTILES.items()
    }
    out["n"] = len(values_ns)
    return out


@dataclass
class RunRecorder:
    """The run in memory, for the summary JSON and the status endpoint.

    Args:
        runner: The runner name.
        limits: The risk limits as plain values.
    """

    runner: str
    limits: Mapping[str, Any]
    batches: int = 0
    decisions: int = 0
    orders: list[dict[str, Any]] = field(default_factory=list)
    fills: int = 0
    equity_path: list[list[float | int]] = field(default_factory=list)
    risk_state_path: list[list[int | str]] = field(default_factory=list)
    served: list[dict[str, Any]] = field(default_factory=list)
    shadow_version: str = ""
    denied: int = 0
    rejected: int = 0
    tick_to_decision_ns: list[int] = field(default_factory=list)
    venue_ack_ns: list[int] = field(default_factory=list)
    scores: LiveScores = field(default_factory=LiveScores)
    _state: str = ""
    _last_ts: int = 0

    def on_batch(self, r: BatchReport, state: str = "") -> bool:
        """Take one batch report; return whether the trading state changed.

        Args:
            r: The report.
            state: The risk engine's state now (default: the decision's). An operator command
                answered while the batch was in flight already changed it.
        """
        self.batches += 1
        self._last_ts = r.ts_ns
        self.scores.on_batch(r)
        self.denied += len(r.denied)
        self.rejected += len(r.rejected)
        if r.closing_send_ns and r.decided_ns:
            self.tick_to_decision_ns.append(r.decided_ns - r.closing_send_ns)
        self.venue_ack_ns.extend(b - a for a, b in r.ack_ns)
        version = r.scores.champion_version if r.scores else ""
        for intent, answer in zip(r.intents, r.orders, strict=True):
            self.fills += int(answer.filled_qty > 0)
            self.orders.append({
                "client_id": answer.client_id, "symbol": intent.symbol, "side": intent.side,
                "qty": str(intent.qty), "status": answer.state,
                "avg_price": None if answer.avg_price is None else str(answer.avg_price),
                "version": version,
            })  # fmt: skip
        d = r.decision
        if d is None:
            return False
        self.decisions += 1
        self.equity_path.append([r.ts_ns, float(d.equity)])
        return self.on_state(r.ts_ns, state or d.state.name)

    def on_state(self, ts_ns: int, state: str) -> bool:
        """Record the trading state at ``ts_ns``; return whether it changed."""
        if state == self._state:
            return False
        self._state = state
        self.risk_state_path.append([ts_ns, state])
        return True

    def on_lifecycle(self, event: LifecycleEvent) -> None:
        """Take a lifecycle event (swaps build the ``served`` path)."""
        if event.kind != "swapped":
            return
        if event.alias == "shadow":
            self.shadow_version = event.version
        self.served.append({"alias": event.alias, "version": event.version,
                            "from_ts_ns": self._last_ts})  # fmt: skip

    def summary(self, exit_reason: str, frames: int, journal: Mapping[str, int]) -> dict[str, Any]:
        """The run summary (the contract of ``docs/live-runner.md``)."""
        eq = [e for _, e in self.equity_path]
        live = self.scores.view()
        shadow = ({"version": self.shadow_version, **live.get(self.shadow_version, {"ic": None,
                  "hit_rate": None, "n": 0})} if self.shadow_version else None)  # fmt: skip
        return {
            "runner": self.runner, "exit": exit_reason, "frames": frames,
            "batches": self.batches, "decisions": self.decisions, "orders": self.orders,
            "fills": self.fills, "pnl": (eq[-1] - eq[0]) if eq else 0.0,
            "equity_path": self.equity_path, "risk_state_path": self.risk_state_path,
            "limits": dict(self.limits), "served": self.served, "shadow": shadow,
            "live_ic": live, "denied": self.denied, "rejected": self.rejected,
            "latency_ms": {"tick_to_decision": percentiles(self.tick_to_decision_ns),
                           "venue_ack": percentiles(self.venue_ack_ns)},
            "journal": dict(journal),
        }  # fmt: skip


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, allow_nan=False, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_BATCH_SQL = """INSERT INTO runner_batches (runner, session, seq, ts_ns, version, state, equity,
    n_symbols, n_orders, n_denied, n_rejected, closing_send_ns, decided_ns, report)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)
    ON CONFLICT (runner, seq) DO NOTHING"""
_FILLED_SQL = """SELECT o->>'symbol' AS symbol,
    CASE WHEN o->>'side' = 'BUY' THEN 1 ELSE -1 END * (o->>'filled_qty')::numeric AS qty,
    (o->>'avg_price')::numeric AS avg_price, coalesce(o->>'commission', '0')::numeric AS fee
    FROM runner_batches, jsonb_array_elements(report->'orders') WITH ORDINALITY AS e(o, k)
    WHERE runner = $1 AND (o->>'filled_qty')::numeric > 0 ORDER BY seq, k"""


@dataclass(frozen=True)
class JournaledFill:
    """One journaled order's fill: symbol, signed quantity, average price (None: unknown), fee."""

    symbol: str
    qty: Decimal
    avg_price: Decimal | None
    fee: Decimal


def replay_fills(
    portfolio: Portfolio, lot_qty: Sequence[Decimal], fills: Sequence[JournaledFill]
) -> None:
    """Rebuild positions, average costs and realized PnL from journaled fills, keeping the cash.

    The same ``Portfolio.apply_fills`` the trader calls, fill by fill in decision order; cash is
    then put back, since the venue account it came from already paid for them. A fill without a
    stated price (an ambiguous send resolved by a status query) moves the position at the
    current average cost. Symbols outside the portfolio are skipped.
    """
    cash = portfolio.cash
    for f in fills:
        i = portfolio.index.get(f.symbol)
        if i is None:
            continue
        lots = int(f.qty / lot_qty[i])
        price = float(f.avg_price) if f.avg_price is not None else float(portfolio.avg_price[i])
        portfolio.apply_fills(np.array([i], dtype=np.int64), np.array([lots], dtype=np.int64),
                              np.array([price]), np.array([float(f.fee)]))  # fmt: skip
    portfolio.cash = cash


_EVENT_SQL = """INSERT INTO runner_events (runner, session, kind, ts_ns, payload)
    VALUES ($1, $2, $3, $4, $5::jsonb)"""
_RISK_SQL = """INSERT INTO runner_risk (runner, ts_ns, state, snapshot)
    VALUES ($1, $2, $3, $4::jsonb)
    ON CONFLICT (runner) DO UPDATE SET ts_ns = $2, state = $3, snapshot = $4::jsonb"""


def batch_json(r: BatchReport) -> dict[str, Any]:
    """A JSON-ready view of a batch report (the journal's ``report`` column)."""
    d, sc = r.decision, r.scores
    return {
        "ts_ns": r.ts_ns, "seq": r.seq, "symbols": r.symbols, "closes": r.closes,
        "skipped_gapped": r.skipped_gapped,
        "champion": sc.champion_version if sc else "", "shadow": sc.shadow_version if sc else "",
        "forecast": _floats(sc.forecast) if sc else None,
        "shadow_forecast": _floats(sc.shadow_forecast) if sc else None,
        "skipped": sc.skipped if sc else "",
        "decision": None if d is None else {
            "state": d.state.name, "equity": _num(d.equity), "gross": _num(d.gross),
            "net": _num(d.net), "cancel": d.cancel.tolist(), "sym": d.sym.tolist(),
            "lots": d.lots.tolist(), "codes": d.codes.tolist()},
        "orders": [{"client_id": o.client_id, "symbol": i.symbol, "side": i.side,
                    "qty": str(i.qty), "state": o.state, "filled_qty": str(o.filled_qty),
                    "avg_price": None if o.avg_price is None else str(o.avg_price),
                    "commission": str(o.commission)}
                   for i, o in zip(r.intents, r.orders, strict=True)],
        "bars": [[b.symbol, b.start_ns, b.end_ns, b.open, b.high, b.low, b.close, b.volume,
                  b.trades] for b in r.bars],
        "denied": r.denied, "rejected": r.rejected, "ack_ns": r.ack_ns,
        "closing_send_ns": r.closing_send_ns, "decided_ns": r.decided_ns,
    }  # fmt: skip


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _floats(a: Any) -> list[float | None] | None:
    return None if a is None else [_num(float(x)) for x in np.asarray(a).tolist()]


class RunnerJournal:
    """Writes the runner tables (migration 0006) off the decision path.

    Args:
        pool: An asyncpg pool on the migrated ``rrr`` database.
        runner: The runner name.
        session: This process run's id.
    """

    def __init__(self, pool: asyncpg.Pool, runner: str, session: str) -> None:
        self.pool, self.runner, self.session = pool, runner, session
        self.rows = 0
        self._queue: asyncio.Queue[tuple[str, tuple[Any, ...]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._write(), name="runner-journal")

    async def flush(self) -> None:
        """Wait until every queued row is committed.

        Raises:
            Exception: what broke the writer task (a failed insert).
        """
        joined = asyncio.ensure_future(self._queue.join())
        waiting: set[asyncio.Future[Any]] = {joined}
        if self._task is not None:
            waiting.add(self._task)
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not joined.done():
            joined.cancel()
            if self._task is not None:
                self._task.result()  # raises the writer's failure

    async def close(self) -> None:
        """Flush and stop the writer task."""
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None

    def batch(self, r: BatchReport) -> None:
        """Queue a batch report."""
        d = r.decision
        version = r.scores.champion_version if r.scores else ""
        args = (self.runner, self.session, r.seq, r.ts_ns, version,
                d.state.name if d else "", _num(d.equity) if d else None, len(r.symbols),
                len(r.orders), len(r.denied), len(r.rejected), r.closing_send_ns, r.decided_ns,
                json.dumps(batch_json(r), allow_nan=False))  # fmt: skip
        self._queue.put_nowait((_BATCH_SQL, args))

    def event(self, kind: str, ts_ns: int, payload: Mapping[str, Any]) -> None:
        """Queue an event row (``lifecycle``, ``risk_state``, ``score`` or ``session``)."""
        args = (self.runner, self.session, kind, ts_ns, json.dumps(payload, allow_nan=False))
        self._queue.put_nowait((_EVENT_SQL, args))

    def lifecycle(self, event: LifecycleEvent, ts_ns: int) -> None:
        """Queue a lifecycle event (every alias change seen, swap, refusal)."""
        self.event("lifecycle", ts_ns, describe(event))

    def risk(self, ts_ns: int, risk: RiskEngine) -> None:
        """Queue the risk engine's saved state (upserted: the latest one is restored)."""
        snap = risk.snapshot()
        args = (self.runner, ts_ns, snap.state.name, json.dumps(snap.to_dict(), allow_nan=False))
        self._queue.put_nowait((_RISK_SQL, args))

    async def restore_risk(self, risk: RiskEngine) -> str | None:
        """Load the runner's saved risk state into ``risk``; return its state name (None: none)."""
        row = await self.pool.fetchrow(
            "SELECT snapshot FROM runner_risk WHERE runner = $1", self.runner
        )
        if row is None:
            return None
        risk.restore(RiskSnapshot.from_dict(json.loads(row["snapshot"])))
        return risk.state.name

    async def last_seq(self) -> int:
        """The last batch sequence this runner journaled (0: none)."""
        value = await self.pool.fetchval(
            "SELECT coalesce(max(seq), 0) FROM runner_batches WHERE runner = $1", self.runner
        )
        return int(value)

    async def filled_orders(self) -> list[JournaledFill]:
        """Every filled order this runner journaled, in the order it was decided.

        The order answers journaled with each batch are the runner's own record of its fills, so
        a restarted runner resumes from the positions (and average costs) its orders built.
        """
        rows = await self.pool.fetch(_FILLED_SQL, self.runner)
        return [JournaledFill(r["symbol"], r["qty"], r["avg_price"], r["fee"]) for r in rows]

    async def client_ids(self) -> set[str]:
        """Client ids of every order this runner's journaled batches hold."""
        rows = await self.pool.fetch(
            "SELECT o->>'client_id' AS cid FROM runner_batches,"
            " jsonb_array_elements(report->'orders') AS e(o) WHERE runner = $1",
            self.runner,
        )
        return {r["cid"] for r in rows}

    async def filled_positions(self) -> dict[str, Decimal]:
        """Net filled quantity per symbol of :meth:`filled_orders` (zeros left out)."""
        held: dict[str, Decimal] = {}
        for f in await self.filled_orders():
            held[f.symbol] = held.get(f.symbol, Decimal(0)) + f.qty
        return {s: q for s, q in sorted(held.items()) if q}

    async def _write(self) -> None:
        while (item := await self._queue.get()) is not None:
            batch = [item]
            while not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    self._queue.put_nowait(None)  # stop after this batch
                    self._queue.task_done()
                    break
                batch.append(nxt)
            async with self.pool.acquire() as con, con.transaction():
                for sql, args in batch:
                    await con.execute(sql, *args)
            self.rows += len(batch)
            for _ in batch:
                self._queue.task_done()
        self._queue.task_done()
