"""A live runner's journal written row by row in the runner's own table layout (0005/0006).

Rows follow ``rrr_live.service.journal_sink.batch_json`` (the ``report`` column) and the order
store's ``orders``/``fills`` rows, so the readers under test read what the runner writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from psycopg2.extras import execute_values

from rrr_pipelines.lib.pg import connect

DAY_NS = 86_400 * 1_000_000_000
SYMBOLS = ("AAA", "BBB", "CCC")


def gbm_bars(
    n: int, start: str, *, vol: float = 0.01, seed: int = 0, source: str = "test",
    symbols: Sequence[str] = SYMBOLS, first_close: Mapping[str, float] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """``n`` daily bars per symbol, seeded: log price mean-reverting (AR(1), ``phi`` 0.9) around
    ``100 * (k + 1)`` with shocks of s.d. ``vol``, so every feature is stationary."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq="D", tz="UTC")
    frames = []
    for k, sym in enumerate(symbols):
        level = math.log(100.0 * (k + 1))
        prev = (first_close or {}).get(sym, 100.0 * (k + 1))
        x, logs = math.log(prev) - level, np.empty(n)
        for i, e in enumerate(vol * rng.standard_normal(n)):
            x = 0.9 * x + e
            logs[i] = level + x
        close = np.exp(logs)
        open_ = np.concatenate([[prev], close[:-1]])
        wig = np.abs(vol * rng.standard_normal(n)) * 0.5
        frames.append(pd.DataFrame({
            "source": source, "symbol": sym, "interval": "1d", "ts": ts, "open": open_,
            "high": np.maximum(open_, close) * (1 + wig),
            "low": np.minimum(open_, close) * (1 - wig),
            "close": close, "adj_close": close,
            "volume": rng.integers(1_000, 2_000, n).astype(float),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


@dataclass
class JournalFill:
    """A fill of an order decided at batch ``seq``."""

    seq: int
    symbol: str
    side: str
    qty: float
    price: float
    trade_id: int


@dataclass
class Journal:
    """What to journal for one runner: its bars, forecasts and fills."""

    runner: str
    bars: pd.DataFrame
    champion: str = "3"
    shadow: str = ""
    forecast_sign: float = 1.0  # champion forecast = sign * the symbol's next return
    equity: Sequence[float] | None = None
    fills: list[JournalFill] = field(default_factory=list)


def _next_returns(bars: pd.DataFrame) -> pd.Series:
    by = bars.sort_values(["symbol", "ts"]).groupby("symbol")["close"]
    return (by.shift(-1) / bars.sort_values(["symbol", "ts"])["close"] - 1.0).reindex(bars.index)


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def write_journal(url: str, j: Journal) -> list[int]:
    """Write one batch per bar time (seq 1, 2, ...), orders and fills; return the batch ts_ns."""
    bars = j.bars.sort_values(["ts", "symbol"]).reset_index(drop=True)
    bars["next_return"] = _next_returns(bars)
    cols = ["symbol", "open", "high", "low", "close", "volume", "next_return"]
    starts = bars["ts"].astype("int64").to_numpy() * (1_000_000_000 // _ts_unit(bars))
    cuts = np.flatnonzero(np.diff(starts)) + 1
    rows, stamps = [], []
    for seq, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(bars)], strict=True), start=1):
        part = bars.iloc[lo:hi][cols].to_numpy(dtype=object).tolist()
        start_ns = int(starts[lo])
        stamps.append(start_ns + DAY_NS)
        fills = [f for f in j.fills if f.seq == seq]
        report = _report(j, seq, start_ns, part, fills)
        eq = None if j.equity is None else j.equity[seq - 1]
        rows.append((j.runner, seq, start_ns + DAY_NS, j.champion, eq, len(part), len(fills),
                     json.dumps(report)))  # fmt: skip
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            execute_values(
                cur,
                "INSERT INTO runner_batches (runner, session, seq, ts_ns, version, state, equity,"
                " n_symbols, n_orders, n_denied, n_rejected, closing_send_ns, decided_ns, report)"
                " VALUES %s",
                rows,
                template="(%s, 's1', %s, %s, %s, 'ACTIVE', %s, %s, %s, 0, 0, 0, 0, %s)",
            )
            for f in j.fills:
                _write_fill(cur, j, f, stamps[f.seq - 1])
    finally:
        conn.close()
    return stamps


def _ts_unit(bars: pd.DataFrame) -> int:
    """Ticks per second of the ``ts`` column's resolution (pandas 3 defaults to microseconds)."""
    return {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[bars["ts"].dt.unit]


def _report(j: Journal, seq: int, start_ns: int, part: list[list[object]],
            fills: list[JournalFill]) -> dict[str, object]:  # fmt: skip
    fc = [_num(j.forecast_sign * float(r[6])) for r in part]  # type: ignore[arg-type]
    return {
        "ts_ns": start_ns + DAY_NS, "seq": seq, "symbols": [r[0] for r in part],
        "closes": [r[4] for r in part], "skipped_gapped": [],
        "champion": j.champion, "shadow": j.shadow, "forecast": fc,
        "shadow_forecast": [None if x is None else -x for x in fc] if j.shadow else None,
        "skipped": "", "decision": None,
        "orders": [{"client_id": _cid(j, f), "symbol": f.symbol, "side": f.side,
                    "qty": str(f.qty), "state": "FILLED", "filled_qty": str(f.qty),
                    "avg_price": str(f.price), "commission": "0"} for f in fills],
        "bars": [[r[0], start_ns, start_ns + DAY_NS, *r[1:6], 10] for r in part],
        "denied": [], "rejected": [], "ack_ns": [], "closing_send_ns": 0, "decided_ns": 0,
    }  # fmt: skip


def _cid(j: Journal, f: JournalFill) -> str:
    return f"{j.runner}-{f.seq:x}-{f.trade_id}"


def _write_fill(cur: object, j: Journal, f: JournalFill, ts_ns: int) -> None:
    cid = _cid(j, f)
    cur.execute(  # type: ignore[attr-defined]
        "INSERT INTO orders (client_id, prefix, venue, symbol, side, order_type, qty, state,"
        " filled_qty, model_version, feature_spec, source_seq, created_ns, updated_ns)"
        " VALUES (%s,%s,'binance',%s,%s,'MARKET',%s,'FILLED',%s,%s,'v1',%s,%s,%s)",
        (cid, j.runner, f.symbol, f.side, f.qty, f.qty, j.champion, f.seq, ts_ns, ts_ns),
    )
    cur.execute(  # type: ignore[attr-defined]
        "INSERT INTO fills (symbol, trade_id, client_id, side, qty, price, quote_qty, ts_ns,"
        " source) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,'stream')",
        (f.symbol, f.trade_id, cid, f.side, f.qty, f.price, f.qty * f.price, ts_ns + 1),
    )
