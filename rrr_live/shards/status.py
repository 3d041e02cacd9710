"""The shards of one account as their runner journals record them (``rrr live status``).

Every runner of an account is ``<name>`` (unsharded) or ``<name>-s<i>of<n>`` (shard ``i`` of
``n``) in the runner tables (migration 0006): the latest saved risk state (``runner_risk``), the
decision batches (``runner_batches``: how many, the last one's data time) and the positions its
journaled fills built. :func:`account_status` returns them with an aggregate as one JSON-ready
dict; a ``ledger`` part (the portfolio-wide risk ledger) is added by the function passed as
``ledger`` (``None``: no ledger part yet).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from rrr_live.config import get_settings
from rrr_live.persistence.databases import prepare_databases
from rrr_live.service.config import load_config
from rrr_live.service.journal_sink import RunnerJournal
from rrr_live.service.parity import NoSecrets
from rrr_live.shards.ledger import ledger_status

LedgerPart = Callable[[asyncpg.Pool, str], Awaitable[dict[str, Any] | None]]
_SHARD_SUFFIX = re.compile(r"-s([0-9]+)of([0-9]+)$")
_RUNNERS_SQL = """
WITH names AS (
    SELECT DISTINCT runner FROM runner_batches WHERE runner ~ $1
    UNION SELECT runner FROM runner_risk WHERE runner ~ $1)
SELECT n.runner, coalesce(b.batches, 0) AS batches, b.last_ts, b.last_seq,
       r.state, r.ts_ns AS state_ts
FROM names n
LEFT JOIN (SELECT runner, count(*) AS batches, max(ts_ns) AS last_ts, max(seq) AS last_seq
           FROM runner_batches WHERE runner ~ $1 GROUP BY runner) b USING (runner)
LEFT JOIN runner_risk r USING (runner)
"""


def _iso(ts_ns: int | None) -> str | None:
    return None if not ts_ns else datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat()


def _shard_of(base: str, runner: str) -> tuple[int, int] | None:
    m = _SHARD_SUFFIX.search(runner[len(base) :])
    return None if m is None else (int(m.group(1)), int(m.group(2)))


async def account_status(
    pool: asyncpg.Pool, base: str, account: str, ledger: LedgerPart | None = None
) -> dict[str, Any]:
    """Every runner of the account named ``base`` with its state, batches and positions.

    Args:
        pool: A pool on the ``rrr`` database.
        base: The runner name as configured (the shards are ``<base>-s<i>of<n>``).
        account: The ledger's account name (``[ledger] account``).
        ledger: Adds the ledger's part (``None``: ``"ledger": None``).

    Returns:
        ``{"account", "runners": [...], "aggregate": {...}, "ledger"}``.
    """
    pattern = f"^{re.escape(base)}(-s[0-9]+of[0-9]+)?$"
    rows = await pool.fetch(_RUNNERS_SQL, pattern)
    runners = []
    for r in rows:
        shard = _shard_of(base, r["runner"])
        held = await RunnerJournal(pool, r["runner"], "status").filled_positions()
        runners.append({
            "runner": r["runner"], "shard": f"{shard[0]}/{shard[1]}" if shard else "",
            "state": r["state"] or "", "batches": int(r["batches"]),
            "last_seq": r["last_seq"], "last_data_ns": r["last_ts"],
            "last_data": _iso(r["last_ts"]), "positions": {s: str(q) for s, q in held.items()},
        })  # fmt: skip
    runners.sort(key=lambda x: (_shard_of(base, x["runner"]) or (-1, 0))[::-1])
    return {
        "account": account,
        "runners": runners,
        "aggregate": _aggregate(base, runners),
        "ledger": None if ledger is None else await ledger(pool, account),
    }


async def status_for_config(
    path: Path, ledger: LedgerPart | None = ledger_status
) -> dict[str, Any]:
    """:func:`account_status` of the account a runner TOML file configures (no secret needed).

    The ledger's part is the account's risk-ledger rows (:func:`~rrr_live.shards.ledger.
    ledger_status`) unless another ``ledger`` is given.

    Raises:
        ConfigError: an unreadable or invalid configuration.
    """
    cfg = load_config(path, NoSecrets(os.environ))
    dbs = await asyncio.to_thread(prepare_databases, get_settings())
    async with asyncpg.create_pool(dbs.rrr_url("libpq"), min_size=1, max_size=2) as pool:
        return await account_status(pool, cfg.base_name, cfg.ledger_account, ledger)


def _aggregate(base: str, runners: list[dict[str, Any]]) -> dict[str, Any]:
    last = max((x["last_data_ns"] or 0 for x in runners), default=0)
    shards = [s for s in (_shard_of(base, x["runner"]) for x in runners) if s is not None]
    counts = sorted({n for _, n in shards})
    missing = {
        str(n): sorted(set(range(n)) - {i for i, m in shards if m == n}) for n in counts
    }  # a shard count whose shards never journaled (or an old count after a resize)
    positions: dict[str, Decimal] = {}
    for x in runners:
        for symbol, qty in x["positions"].items():
            positions[symbol] = positions.get(symbol, Decimal(0)) + Decimal(qty)
    return {
        "runners": len(runners),
        "states": dict(sorted(Counter(x["state"] or "unknown" for x in runners).items())),
        "batches": sum(x["batches"] for x in runners),
        "last_data_ns": last or None,
        "last_data": _iso(last),
        "shard_counts": counts,
        "missing_shards": {n: m for n, m in missing.items() if m},
        "positions": {s: str(q) for s, q in sorted(positions.items()) if q},
    }


def status_table(status: dict[str, Any]) -> list[str]:
    """The status as text lines: one row per runner, then the aggregate."""
    head = ("runner", "shard", "state", "batches", "last data (UTC)", "positions")
    rows = [head] + [
        (x["runner"], x["shard"] or "-", x["state"] or "-", str(x["batches"]),
         x["last_data"] or "-", str(len(x["positions"])))
        for x in status["runners"]
    ]  # fmt: skip
    widths = [max(len(r[k]) for r in rows) for k in range(len(head))]
    lines = [f"account {status['account']}"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    agg = status["aggregate"]
    states = ", ".join(f"{k} {v}" for k, v in agg["states"].items()) or "-"
    lines.append(
        f"total: {agg['runners']} runners ({states}), {agg['batches']} batches,"
        f" last data {agg['last_data'] or '-'}, {len(agg['positions'])} symbols held"
    )
    for n, idx in agg["missing_shards"].items():
        lines.append(f"note: of {n} shards, {', '.join(map(str, idx))} never journaled")
    if status.get("ledger") is not None:
        lines.append(f"ledger: {status['ledger']}")
    return lines
