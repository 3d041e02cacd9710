"""Tick input of a backtest: book updates and public trades per symbol, in event time.

**Frame.** One row per book level or trade, columns:

* ``ts_ns`` (int64 nanoseconds since the epoch) or ``ts`` (tz-aware) – event time;
* ``symbol`` – must be one of the bars' symbols;
* ``kind`` – ``"snapshot"``, ``"diff"`` or ``"trade"``;
* ``side`` – ``"bid"``/``"ask"`` for book rows, the aggressor ``"buy"``/``"sell"`` for trades;
* ``price`` (quote currency) and ``size`` (units, ``>= 0``), put on the instrument's grid
  (nearest tick and lot).

Rows are ordered by ``ts`` (stable: equal times keep the frame's order). Adjacent rows with the
same ``(ts, symbol, kind)`` form one book message: a snapshot replaces the book (zero sizes are
dropped, so a snapshot of zero-size rows empties the book and makes it untradable, e.g. a closed
session); a diff sets absolute level sizes (0 deletes). Each trade row is one public trade. A
symbol's first book message must be a snapshot.

**Routing convention** (bars still drive marks, risk and decisions; see
:mod:`rrr_live.backtest.engine`). Each symbol has a
:class:`~rrr_live.execution.matching.MatchingEngine` with the config's fee and latency models.
Before the decision at a bar close ``t`` every tick with ``ts <= t`` is applied in order, then
every engine advances to ``t``; fills go to the portfolio as they are reported (at their event
time). An order decided at ``t`` is submitted at ``t`` and reaches its venue after the
latency; there the matching engine's rules apply: it is handled before any tick at or after its
arrival, against the book as it then stands (so a tick stamped exactly at ``t`` is part of the
state the decision was made in, and an order with zero latency meets the book of the next
tick); a market order walks the levels and expires the rest, a limit order takes what crosses
and rests with a queue position (``BacktestConfig.ticks``). With ``wait_for_open`` an order
reaching an empty book waits for the next tradable update. A later decision that wants a change
cancels the open order (the cancel travels with the same latency; fills before it arrives
count, and a cancel that overtakes its order is rejected) and sends a new order for the whole
difference, as on bars. Order status in the result: ``filled``, ``partially_filled``,
``canceled``, ``expired``, ``rejected`` (venue) or ``denied`` (risk).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.domain.bars import interval_ns
from rrr_live.domain.errors import BacktestInputError
from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument, Rounding, to_grid_against
from rrr_live.domain.market import BookUpdate, BookUpdateKind, MarketEvent
from rrr_live.domain.orders import Side

Row = tuple[Side, int, int]
Message = tuple[int, int, str, list[Row]]
_BOOK_SIDES: Final = {"bid": Side.BUY, "ask": Side.SELL}
_AGGRESSORS: Final = {"buy": Side.BUY, "sell": Side.SELL}
_NEEDED: Final = ("symbol", "kind", "side", "price", "size")


def _event_ns(ticks: pd.DataFrame) -> npt.NDArray[np.int64]:
    if "ts_ns" in ticks.columns:
        values: npt.NDArray[np.int64] = ticks["ts_ns"].to_numpy(dtype=np.int64)
        return values
    if "ts" not in ticks.columns:
        raise BacktestInputError("ticks need a ts_ns (int ns) or ts (tz-aware) column")
    if getattr(ticks["ts"].dtype, "tz", None) is None:
        raise BacktestInputError("ticks ts must be tz-aware (UTC)")
    stamps: npt.NDArray[np.int64] = (
        pd.DatetimeIndex(ticks["ts"]).tz_convert("UTC").as_unit("ns").asi8
    )
    return stamps


def _validate(ticks: pd.DataFrame, symbols: Sequence[str]) -> str:
    missing = [c for c in _NEEDED if c not in ticks.columns]
    if missing:
        return f"ticks lack columns {missing}"
    unknown = set(ticks["symbol"].astype(str)) - set(symbols)
    if unknown:
        return f"ticks name symbols without bars: {sorted(unknown)}"
    kinds = set(ticks["kind"].astype(str)) - {"snapshot", "diff", "trade"}
    if kinds:
        return f"unknown tick kinds {sorted(kinds)} (snapshot, diff, trade)"
    values = ticks[["price", "size"]].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values[:, 0] <= 0) or np.any(values[:, 1] < 0):
        return "tick prices must be finite and > 0, sizes finite and >= 0"
    return ""


def _row(kind: str, side: str, price: int, size: int) -> Row:
    table = _AGGRESSORS if kind == "trade" else _BOOK_SIDES
    if side not in table:
        raise BacktestInputError(f"tick side {side!r} does not fit kind {kind!r}: {sorted(table)}")
    return table[side], price, size


def prepare_ticks(
    ticks: pd.DataFrame, symbols: Sequence[str], instruments: Sequence[Instrument]
) -> list[Message]:
    """Validate a tick frame and return its messages ``(ts_ns, symbol index, kind, rows)``.

    ``rows`` are ``(side, price_ticks, size_lots)``: the levels of a snapshot (sizes > 0) or a
    diff (BUY = bids), or the one trade of a trade message (side = aggressor).

    Raises:
        BacktestInputError: naming what is wrong with the frame.
    """
    problem = _validate(ticks, symbols)
    if problem:
        raise BacktestInputError(problem)
    ts = _event_ns(ticks)
    order = np.argsort(ts, kind="stable")
    index = {s: i for i, s in enumerate(symbols)}
    cols = zip(
        ts[order].tolist(),
        ticks["symbol"].astype(str).to_numpy()[order].tolist(),
        ticks["kind"].astype(str).to_numpy()[order].tolist(),
        ticks["side"].astype(str).to_numpy()[order].tolist(),
        ticks["price"].to_numpy(dtype=np.float64)[order].tolist(),
        ticks["size"].to_numpy(dtype=np.float64)[order].tolist(),
        strict=True,
    )
    groups: list[Message] = []
    for t, symbol, kind, side, price, size in cols:
        inst = instruments[index[symbol]]
        row = _row(
            kind, side, inst.price_to_ticks(price), inst.size_to_lots(size, Rounding.NEAREST)
        )
        last = groups[-1] if groups else None
        if kind != "trade" and last and last[:3] == (t, index[symbol], kind):
            last[3].append(row)
        else:
            groups.append((t, index[symbol], kind, [row]))
    return _messages(groups, symbols)


def _messages(groups: list[Message], symbols: Sequence[str]) -> list[Message]:
    seen: set[int] = set()
    out: list[Message] = []
    for t, sym, kind, rows in groups:
        if kind == "diff" and sym not in seen:
            raise BacktestInputError(f"{symbols[sym]}: a book diff before the first snapshot")
        if kind == "snapshot":
            seen.add(sym)
            out.append((t, sym, kind, [r for r in rows if r[2] > 0]))
        else:
            out.append((t, sym, kind, rows))
    return out


def ticks_from_bars(
    bars: pd.DataFrame, half_spread_bps: float = 0.0, size: float = 1e9, tick_size: float = 0.01
) -> pd.DataFrame:
    """Expand canonical bars into a one-level book per bar (a tick frame, see the module).

    At each bar's open the book is one bid and one ask at ``open * (1 -/+ half_spread)``,
    rounded to ``tick_size`` away from the open (as the bars-only fill model rounds against
    the trader), ``size`` units each; at the bar's close the book is emptied (rows are ordered
    so that at a shared time the close of one bar comes before the open of the next). Traded
    through the same strategy, this reproduces the bars-only fills at the next open.
    """
    ts = pd.DatetimeIndex(bars["ts"]).tz_convert("UTC").as_unit("ns").asi8
    step = interval_ns(str(bars["interval"].iloc[0]))
    open_ = bars["open"].to_numpy(dtype=np.float64)
    n = len(bars)
    grid = np.full(n, tick_size)
    half = half_spread_bps * 1e-4
    bid = to_grid_against(open_ * (1 - half), grid, -np.ones(n, dtype=np.int64)) * tick_size
    ask = to_grid_against(open_ * (1 + half), grid, np.ones(n, dtype=np.int64)) * tick_size
    symbol = bars["symbol"].astype(str).to_numpy()
    frame = pd.DataFrame(
        {
            "ts_ns": np.concatenate([ts, ts, ts + step]),
            "symbol": np.concatenate([symbol, symbol, symbol]),
            "kind": "snapshot",
            "side": np.repeat(["bid", "ask", "bid"], n),
            "price": np.concatenate([bid, ask, open_]),
            "size": np.concatenate([np.full(2 * n, size), np.zeros(n)]),
            "_close_first": np.repeat([1, 1, 0], n),
        }
    )
    frame = frame.sort_values(["ts_ns", "_close_first", "symbol"], kind="stable")
    return frame.drop(columns="_close_first").reset_index(drop=True)


def market_events(messages: list[Message], symbols: Sequence[str]) -> list[MarketEvent]:
    """Turn :func:`prepare_ticks` messages into domain market-data events (same order)."""
    out: list[MarketEvent] = []
    for ts, sym, kind, rows in messages:
        symbol = symbols[sym]
        if kind == "trade":
            side, price, size = rows[0]
            out.append(TradeTick(ts, symbol, price, size, side))
            continue
        bids = tuple((p, n) for side, p, n in rows if side is Side.BUY)
        asks = tuple((p, n) for side, p, n in rows if side is Side.SELL)
        book_kind = BookUpdateKind.SNAPSHOT if kind == "snapshot" else BookUpdateKind.DIFF
        out.append(BookUpdate(book_kind, symbol, ts, bids, asks))
    return out
