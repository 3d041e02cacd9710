"""Read-only views of the live runner's journal (migrations 0005 orders/fills, 0006 runner).

One decision batch is one row of ``runner_batches``; its ``report`` JSON (written by
``rrr_live.service.journal_sink.batch_json``) carries what the runner saw and decided: the bars
that closed, their closes, the champion's and the shadow's forecasts, the orders. Fills come
from the ``fills`` table (the venue's record), tied to the batch whose orders list their client
order id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rrr_pipelines.lib.pg import connect

Number = float | None


@dataclass(frozen=True)
class JournalBar:
    """One bar the runner built (``report.bars``): times in ns since the epoch, UTC."""

    symbol: str
    start_ns: int
    end_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class Batch:
    """One journaled decision batch.

    Attributes:
        seq: Batch sequence (increasing per runner).
        ts_ns: Decision time (the bar close).
        equity: Account equity after the decision (None when not decided).
        symbols: Symbols of the batch, in the order of ``closes`` and the forecasts.
        closes: Close of each symbol's bar at ``ts_ns``.
        champion: Champion version that scored the batch ("" when none served).
        shadow: Shadow version ("" when none).
        forecast: Champion forecast per symbol (None: not scored / not finite).
        shadow_forecast: Shadow forecast per symbol.
        bars: The bars that closed at ``ts_ns``.
    """

    seq: int
    ts_ns: int
    equity: Number
    symbols: tuple[str, ...]
    closes: tuple[float, ...]
    champion: str
    shadow: str
    forecast: tuple[Number, ...] | None
    shadow_forecast: tuple[Number, ...] | None
    bars: tuple[JournalBar, ...]


@dataclass(frozen=True)
class Fill:
    """One venue fill with the batch that decided its order.

    Attributes:
        seq: The deciding batch's sequence.
        ts_ns: The fill's venue time.
        symbol: Symbol.
        side: ``BUY`` or ``SELL``.
        qty: Filled quantity (base units).
        price: Fill price.
        fee: Fee (quote units as the venue charged it).
    """

    seq: int
    ts_ns: int
    symbol: str
    side: str
    qty: float
    price: float
    fee: float


def _opt_floats(values: Sequence[Any] | None) -> tuple[Number, ...] | None:
    if values is None:
        return None
    return tuple(None if v is None else float(v) for v in values)


def batch_from_row(seq: int, ts_ns: int, equity: Number, report: dict[str, Any]) -> Batch:
    """Build a :class:`Batch` from one ``runner_batches`` row (``report`` already decoded)."""
    bars = tuple(
        JournalBar(str(b[0]), int(b[1]), int(b[2]), *(float(x) for x in b[3:8]))
        for b in report.get("bars", [])
    )
    return Batch(
        seq=seq,
        ts_ns=ts_ns,
        equity=None if equity is None else float(equity),
        symbols=tuple(str(s) for s in report.get("symbols", [])),
        closes=tuple(float(c) for c in report.get("closes", [])),
        champion=str(report.get("champion") or ""),
        shadow=str(report.get("shadow") or ""),
        forecast=_opt_floats(report.get("forecast")),
        shadow_forecast=_opt_floats(report.get("shadow_forecast")),
        bars=bars,
    )


def runner_names(url: str) -> list[str]:
    """Runners that journaled at least one batch, sorted."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT DISTINCT runner FROM runner_batches ORDER BY runner")
            return [str(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()


def read_batches(url: str, runner: str, *, last: int | None = None) -> list[Batch]:
    """The runner's batches in sequence order; with ``last``, only the most recent ones.

    Args:
        url: The ``rrr`` database (psycopg2 or SQLAlchemy form).
        runner: Runner name.
        last: Keep the ``last`` most recent batches (None: all).
    """
    sql = "SELECT seq, ts_ns, equity, report FROM runner_batches WHERE runner = %s ORDER BY seq"
    args: tuple[Any, ...] = (runner,)
    if last is not None:
        sql = (
            "SELECT * FROM (SELECT seq, ts_ns, equity, report FROM runner_batches "
            "WHERE runner = %s ORDER BY seq DESC LIMIT %s) t ORDER BY seq"
        )
        args = (runner, last)
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
    finally:
        conn.close()
    return [
        batch_from_row(int(s), int(t), e, r if isinstance(r, dict) else json.loads(r))
        for s, t, e, r in rows
    ]


def batch_times_since(url: str, since_ns: int, runners: Sequence[str] | None = None) -> int:
    """Distinct decision times (bar closes) journaled at or after ``since_ns``.

    Args:
        url: The ``rrr`` database.
        since_ns: Nanoseconds since the epoch, UTC.
        runners: Count these runners' batches only (None: every runner).
    """
    sql = "SELECT count(DISTINCT ts_ns) FROM runner_batches WHERE ts_ns >= %s"
    args: tuple[Any, ...] = (since_ns,)
    if runners is not None:
        sql += " AND runner = ANY(%s)"
        args = (since_ns, list(runners))
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return int(cur.fetchone()[0])
    finally:
        conn.close()


_FILLS_SQL = """
WITH decided AS (
    SELECT b.seq, o->>'client_id' AS client_id
    FROM runner_batches b, jsonb_array_elements(b.report->'orders') AS o
    WHERE b.runner = %(runner)s
)
SELECT d.seq, f.ts_ns, f.symbol, f.side, f.qty, f.price, f.fee
FROM fills f
JOIN decided d ON d.client_id = f.client_id
ORDER BY d.seq, f.ts_ns, f.trade_id
"""


def read_fills(url: str, runner: str) -> list[Fill]:
    """The runner's venue fills (table ``fills``), each with the batch that decided it."""
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(_FILLS_SQL, {"runner": runner})
            rows = cur.fetchall()
    finally:
        conn.close()
    return [
        Fill(int(s), int(t), str(sym), str(side), float(q), float(p), float(fee))
        for s, t, sym, side, q, p, fee in rows
    ]


def bars_frame(
    batches: Sequence[Batch], *, source: str = "live", interval: str = ""
) -> pd.DataFrame:
    """The journal's bars as a canonical bar frame (``ts`` = bar start, UTC; one row per bar).

    Bar start is the timestamp convention of ``market_bars``, so the same feature code runs on
    both. A bar seen in two batches (a replayed batch) is kept once.
    """
    rows = [
        (source, b.symbol, interval, b.start_ns, b.open, b.high, b.low, b.close, b.close, b.volume)
        for batch in batches
        for b in batch.bars
    ]
    cols = ["source", "symbol", "interval", "ts", "open", "high", "low", "close", "adj_close",
            "volume"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=cols)
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ns", utc=True)
    return frame.drop_duplicates(["symbol", "ts"], keep="last").sort_values(["symbol", "ts"])
