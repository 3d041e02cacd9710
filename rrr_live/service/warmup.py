"""Warm-up: the feature engine and windows rebuilt before the first decision.

At start and at every restart the runner feeds the trader, without deciding, the last
``depth`` bars of every universe symbol that closed before its first decision, grouped by bar
close and oldest first, exactly as live batches would have been fed
(:meth:`~rrr_live.service.trader.Trader.warm` is the same code path as a decision's features).
Two sources, merged by ``(symbol, bar close)``:

* the runner's own journal (``runner_batches``: the bars it decided, as it built them from the
  feed), preferred, since it is what a run that was never interrupted would have seen;
* published bars (``market_bars``, what Dagster publishes, read by the one function
  :func:`rrr_live.exchange.bars.read_published_bars`), for history before the runner's first run
  or the time it was down.

Only bars closing strictly before ``before_ns`` (the first batch's close) are used, so a replay
of a published period never sees its own future. The trader's ``last_end_ns`` moves to the last
bar fed, and batches not newer than it are not decided again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from rrr_live.exchange.bars import read_published_bars
from rrr_live.service.bars import ClosedBar
from rrr_live.service.trader import Trader

_JOURNAL_SQL = """SELECT report->'bars' AS bars FROM runner_batches
    WHERE runner = $1 AND ts_ns < $2 ORDER BY seq DESC LIMIT $3"""


@dataclass(frozen=True)
class WarmupSource:
    """Where warm-up bars come from.

    Args:
        dsn: asyncpg DSN of the ``rrr`` database.
        runner: The runner whose journal is read.
        published_source: ``market_bars.source`` to read (``""``: journal only).
        interval: The bar interval label (``1d``, ``1s``, ...).
        interval_ns: The bar interval in nanoseconds.
    """

    dsn: str
    runner: str
    published_source: str
    interval: str
    interval_ns: int


@dataclass(frozen=True)
class WarmupReport:
    """What warm-up fed: bars from each source and the last bar close."""

    journal_bars: int
    published_bars: int
    last_end_ns: int


async def journal_bars(
    pool: asyncpg.Pool, runner: str, before_ns: int, batches: int
) -> list[ClosedBar]:
    """The bars of the runner's last ``batches`` journaled batches closing before ``before_ns``."""
    rows = await pool.fetch(_JOURNAL_SQL, runner, before_ns, batches)
    out = []
    for row in rows:
        for s, start, end, o, h, lo, c, v, n in json.loads(row["bars"] or "[]"):
            out.append(ClosedBar(s, int(start), int(end), o, h, lo, c, v, int(n)))
    return out


async def published_bars(
    src: WarmupSource, symbols: Sequence[str], before_ns: int, depth: int
) -> list[ClosedBar]:
    """Published bars of ``symbols`` closing before ``before_ns`` (the last ``depth`` intervals)."""
    if not src.published_source:
        return []
    last_open = before_ns - src.interval_ns  # open time of the last bar closing before
    # Markets close (weekends, holidays): ``depth`` bars span more calendar time than
    # ``depth`` intervals. Read twice that plus a margin; ``merge`` keeps the last ``depth``.
    start = _dt(last_open - (2 * depth + 10) * src.interval_ns)
    bars = await read_published_bars(
        src.dsn, src.published_source, src.interval, symbols, start, _dt(last_open),
        src.interval_ns,
    )  # fmt: skip
    return [
        ClosedBar(
            b.symbol, b.ts_ns, b.ts_ns + b.interval_ns, b.open, b.high, b.low, b.close, b.volume, 0
        )
        for b in bars
        if b.ts_ns + b.interval_ns < before_ns
    ]


def merge(
    journal: Iterable[ClosedBar], published: Iterable[ClosedBar], depth: int
) -> list[list[ClosedBar]]:
    """Merge the sources (journal wins), keep ``depth`` bars per symbol, group by close."""
    by_key = {(b.symbol, b.end_ns): b for b in published}
    by_key.update({(b.symbol, b.end_ns): b for b in journal})
    per_symbol: dict[str, list[ClosedBar]] = {}
    for key in sorted(by_key, key=lambda k: (k[0], k[1])):
        per_symbol.setdefault(key[0], []).append(by_key[key])
    groups: dict[int, list[ClosedBar]] = {}
    for bars in per_symbol.values():
        for b in bars[-depth:]:
            groups.setdefault(b.end_ns, []).append(b)
    return [groups[t] for t in sorted(groups)]


async def warmup_groups(
    pool: asyncpg.Pool, src: WarmupSource, universe: Sequence[str], before_ns: int, depth: int
) -> tuple[list[list[ClosedBar]], WarmupReport]:
    """The warm-up bars (grouped by close, oldest first) of ``universe`` and what they came from."""
    mine = await journal_bars(pool, src.runner, before_ns, depth)
    published = await published_bars(src, universe, before_ns, depth)
    members = set(universe)
    groups = merge((b for b in mine if b.symbol in members), published, depth)
    last = groups[-1][0].end_ns if groups else -1
    return groups, WarmupReport(len(mine), len(published), last)


async def warm_up(
    trader: Trader, pool: asyncpg.Pool, src: WarmupSource, before_ns: int, depth: int
) -> WarmupReport:
    """Feed the trader the last ``depth`` bars per symbol closing before ``before_ns``."""
    groups, report = await warmup_groups(pool, src, list(trader.p.universe), before_ns, depth)
    for group in groups:
        trader.warm(group)
    return report


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).replace(
        microsecond=(ns % 1_000_000_000) // 1000
    )
