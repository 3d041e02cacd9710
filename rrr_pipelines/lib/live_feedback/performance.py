"""Live performance from the journal: IC and hit rate per model version, PnL, slippage.

**Scores.** Every version's forecast of a symbol at batch ``k`` is paired with that symbol's
realized return to its *next* journaled bar (``close_next / close - 1``); the last bar of each
symbol has no pair yet, so nothing uses a return from after the forecast's own bar (no
look-ahead). Live IC is the pooled Pearson correlation over all pairs of a version and the hit
rate the share of pairs whose signs agree, zeros left out: ``pooled_ic`` and ``hit_rate`` of
``rrr_pipelines.lib.ml.metrics`` (the rules the runner's incremental ``LiveScores`` follows).

**Slippage** of a fill is signed so that a positive number is a cost: ``side * (price - ref) /
ref`` in basis points (side +1 buy, -1 sell), against two references:

* ``decision`` - the close of the bar the decision was made on (what the model saw);
* ``backtest`` - what the bar backtest (``rrr_live.backtest.engine``) assumes the order fills
  at: the symbol's *next* bar's open moved against us by the half-spread (``half_spread_bps``,
  the default ``ImpactModel`` 1 bp). Square-root impact is left out (it needs the ADV the
  backtest estimated), so this reference is the backtest's price for a small order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rrr_pipelines.lib.live_feedback.journal import Batch, Fill
from rrr_pipelines.lib.ml.metrics import hit_rate, pooled_ic

HALF_SPREAD_BPS = 1.0


def scored_pairs(batches: Sequence[Batch]) -> pd.DataFrame:
    """Forecast/realized pairs: ``version, role, ts, symbol, forecast, realized``.

    ``ts`` is the forecast's batch time (UTC), ``role`` ``champion`` or ``shadow``.
    """
    last: dict[str, tuple[float, list[tuple[str, str, float]]]] = {}
    rows: list[tuple[str, str, pd.Timestamp, str, float, float]] = []
    stamp: dict[str, pd.Timestamp] = {}
    for b in sorted(batches, key=lambda x: x.seq):
        ts = pd.Timestamp(b.ts_ns, unit="ns", tz="UTC")
        for i, (symbol, close) in enumerate(zip(b.symbols, b.closes, strict=True)):
            prev = last.get(symbol)
            if prev is not None and prev[0] > 0:
                realized = close / prev[0] - 1.0
                rows.extend((v, role, stamp[symbol], symbol, f, realized) for v, role, f in prev[1])
            last[symbol], stamp[symbol] = (close, _forecasts_of(b, i)), ts
    return pd.DataFrame(rows, columns=["version", "role", "ts", "symbol", "forecast", "realized"])


def _forecasts_of(b: Batch, i: int) -> list[tuple[str, str, float]]:
    out = []
    for version, role, values in ((b.champion, "champion", b.forecast),
                                  (b.shadow, "shadow", b.shadow_forecast)):  # fmt: skip
        if version and values is not None:
            f = values[i]
            if f is not None and math.isfinite(f):
                out.append((version, role, f))
    return out


def version_scores(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per version and role: ``ic``, ``hit_rate``, ``n`` (pairs); NaN where undefined."""
    rows = []
    for (version, role), part in pairs.groupby(["version", "role"], sort=True):
        idx = pd.MultiIndex.from_arrays([part["ts"], part["symbol"]], names=["ts", "symbol"])
        score = pd.Series(part["forecast"].to_numpy(), index=idx)
        target = pd.Series(part["realized"].to_numpy(), index=idx)
        ic = pooled_ic(score, target) if len(part) > 1 else math.nan
        rows.append((str(version), str(role), ic, hit_rate(score, target), len(part)))
    return pd.DataFrame(rows, columns=["version", "role", "ic", "hit_rate", "n"])


@dataclass(frozen=True)
class Pnl:
    """Equity path figures of the decided batches.

    Attributes:
        start_equity: Equity after the first decided batch.
        end_equity: Equity after the last one.
        pnl: ``end - start``.
        max_drawdown: Largest fall from a running peak, as a fraction of that peak (>= 0).
        path: ``ts, equity`` of every decided batch.
    """

    start_equity: float
    end_equity: float
    pnl: float
    max_drawdown: float
    path: pd.DataFrame


def equity_pnl(batches: Sequence[Batch]) -> Pnl:
    """PnL and drawdown of the journaled equity (batches without an equity are left out)."""
    pts = [(b.ts_ns, b.equity) for b in sorted(batches, key=lambda x: x.seq)
           if b.equity is not None and math.isfinite(b.equity)]  # fmt: skip
    path = pd.DataFrame(pts, columns=["ts", "equity"])
    path["ts"] = pd.to_datetime(path["ts"].astype("int64"), unit="ns", utc=True)
    if path.empty:
        return Pnl(math.nan, math.nan, 0.0, 0.0, path)
    eq = path["equity"].to_numpy(dtype=np.float64)
    peak = np.maximum.accumulate(eq)
    dd = float(np.max(np.where(peak > 0, 1.0 - eq / peak, 0.0)))
    return Pnl(float(eq[0]), float(eq[-1]), float(eq[-1] - eq[0]), dd, path)


def _bar_prices(batches: Sequence[Batch]) -> dict[str, list[tuple[int, float, float]]]:
    """Per symbol: ``(batch seq, bar open, close)`` in sequence order."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for b in sorted(batches, key=lambda x: x.seq):
        closes = dict(zip(b.symbols, b.closes, strict=True))
        for bar in b.bars:
            out.setdefault(bar.symbol, []).append(
                (b.seq, bar.open, closes.get(bar.symbol, bar.close))
            )
    return out


def _bps(side: str, price: float, ref: float) -> float:
    sign = 1.0 if side == "BUY" else -1.0
    return sign * (price - ref) / ref * 1e4 if ref > 0 else math.nan


def slippage(
    fills: Sequence[Fill], batches: Sequence[Batch], half_spread_bps: float = HALF_SPREAD_BPS
) -> pd.DataFrame:
    """Slippage of every fill against the decision close and the backtest's assumed price.

    Returns one row per fill: ``seq, symbol, side, qty, price, decision_close, backtest_price,
    slip_decision_bps, slip_backtest_bps`` (see the module docstring; NaN when a reference bar
    is not in the journal, e.g. the next bar has not closed yet).
    """
    prices = _bar_prices(batches)
    rows = []
    half = half_spread_bps * 1e-4
    for f in fills:
        series = prices.get(f.symbol, [])
        seqs = [s for s, _, _ in series]
        k = int(np.searchsorted(seqs, f.seq, side="left"))
        decision = series[k][2] if k < len(series) and seqs[k] == f.seq else math.nan
        j = int(np.searchsorted(seqs, f.seq, side="right"))
        nxt = series[j][1] if j < len(series) else math.nan
        bt = nxt * (1.0 + half if f.side == "BUY" else 1.0 - half)
        rows.append((f.seq, f.symbol, f.side, f.qty, f.price, decision, bt,
                     _bps(f.side, f.price, decision), _bps(f.side, f.price, bt)))  # fmt: skip
    return pd.DataFrame(rows, columns=["seq", "symbol", "side", "qty", "price", "decision_close",
                                       "backtest_price", "slip_decision_bps",
                                       "slip_backtest_bps"])  # fmt: skip


def mean_slippage(table: pd.DataFrame, column: str) -> float:
    """Quantity-weighted mean of a slippage column over the fills that have it (NaN: none)."""
    ok = table[column].notna()
    if not ok.any():
        return math.nan
    w = table.loc[ok, "qty"] * table.loc[ok, "price"]
    return float((table.loc[ok, column] * w).sum() / w.sum())


def net_positions(fills: Sequence[Fill]) -> dict[str, float]:
    """Net filled quantity per symbol (buys +, sells -), flat symbols left out, sorted."""
    held: dict[str, float] = {}
    for f in fills:
        held[f.symbol] = held.get(f.symbol, 0.0) + (f.qty if f.side == "BUY" else -f.qty)
    return {s: q for s, q in sorted(held.items()) if abs(q) > 1e-12}


def last_closes(batches: Sequence[Batch]) -> dict[str, float]:
    """The latest journaled close of every symbol."""
    out: dict[str, float] = {}
    for b in sorted(batches, key=lambda x: x.seq):
        out.update(zip(b.symbols, b.closes, strict=True))
    return out


def position_values(positions: dict[str, float], closes: dict[str, float]) -> dict[str, float]:
    """Market value of each position at the latest close (a symbol without a close raises).

    Raises:
        KeyError: a held symbol has no journaled close (named in the message).
    """
    missing = sorted(set(positions) - set(closes))
    if missing:
        raise KeyError(f"no journaled close for held symbol(s) {missing}")
    return {s: q * closes[s] for s, q in positions.items()}
