"""Read back what one runner session saw and did, for a replay (``parity_report``).

A runner session (one process run, ``runner_batches.session``) journals:

* ``runner_events`` of kind ``session``: first its configuration (what a replay needs: bar
  interval, watermark, universe, instruments, cash, fees, strategy, limits, model), then one
  event per feed session it read (``{"feed_session": ...}``, in the order it read them);
* the market data of those feed sessions (``journal_book_updates``, ``journal_trades``), each
  in receive order (``seq``);
* ``runner_batches``: every decision batch (the report JSON: the decision, its legs, and the
  venue's answer to each order sent, fills included).

:func:`read_capture` rebuilds all of it as a :class:`RunnerCapture` (plain values and domain
events; the comparison itself is :mod:`rrr_live.backtest.parity`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from rrr_live.domain.market import Received
from rrr_live.errors import RRRError
from rrr_live.persistence.journal.rows import BOOK, COLUMNS, TRADE, from_row


class CaptureError(RRRError):
    """The journal holds no usable capture of the runner session asked for."""


@dataclass
class RunnerCapture:
    """One runner session as journaled (see the module docstring).

    Attributes:
        runner: The runner name.
        session: The runner session id.
        config: The session's configuration event payload.
        feed_sessions: Feed sessions it read, in order.
        received: Market events of those feed sessions, in receive order.
        reports: Batch reports, in sequence order.
        versions: Model versions that decided its batches ('' left out), in order of use.
        earlier_batches: Batches the runner journaled before this session (a restart: it
            restored their positions and warmed up on their bars).
    """

    runner: str
    session: str
    config: dict[str, Any]
    feed_sessions: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    earlier_batches: int = 0


_LATEST = "SELECT session FROM runner_batches WHERE runner = $1 ORDER BY seq DESC LIMIT 1"
_EVENTS = """SELECT payload FROM runner_events
    WHERE runner = $1 AND session = $2 AND kind = 'session' ORDER BY id"""
_BATCHES = """SELECT seq, version, report FROM runner_batches
    WHERE runner = $1 AND session = $2 ORDER BY seq"""
_EARLIER = "SELECT count(*) FROM runner_batches WHERE runner = $1 AND seq < $2 AND session <> $3"


async def read_capture(con: asyncpg.Connection, runner: str, session: str = "") -> RunnerCapture:
    """Read one runner session (``""``: its latest) back from the journal.

    Raises:
        CaptureError: no batch of ``runner`` (or of that session), or a session journaled
            without its configuration event (a runner older than ``parity_report``).
    """
    if not session:
        session = await con.fetchval(_LATEST, runner) or ""
        if not session:
            raise CaptureError(f"runner {runner!r} journaled no batch")
    payloads = [json.loads(r["payload"]) for r in await con.fetch(_EVENTS, runner, session)]
    config = next((p for p in payloads if "bar_interval_ns" in p), None)
    batches = await con.fetch(_BATCHES, runner, session)
    if not batches:
        raise CaptureError(f"runner {runner!r} journaled no batch in session {session!r}")
    if config is None:
        raise CaptureError(f"session {session!r} of {runner!r} has no configuration event")
    cap = RunnerCapture(runner, session, config)
    cap.feed_sessions = [str(p["feed_session"]) for p in payloads if "feed_session" in p]
    cap.received = await _market(con, cap.feed_sessions)
    cap.reports = [json.loads(r["report"]) for r in batches]
    cap.earlier_batches = int(await con.fetchval(_EARLIER, runner, batches[0]["seq"], session))
    for r in batches:
        if r["version"] and r["version"] not in cap.versions:
            cap.versions.append(str(r["version"]))
    return cap


async def _market(con: asyncpg.Connection, sessions: list[str]) -> list[Received]:
    """Book updates and trades of ``sessions``, in session order then receive order."""
    rank = {s: i for i, s in enumerate(sessions)}
    out: list[Received] = []
    for table in (BOOK, TRADE):
        cols = ", ".join(COLUMNS[table])
        rows = await con.fetch(
            f"SELECT {cols} FROM {table} WHERE session = ANY($1::text[])",
            sessions,
        )
        out += [from_row(table, tuple(r)) for r in rows]
    out.sort(key=lambda rec: (rank[rec.session], rec.seq))
    return out
