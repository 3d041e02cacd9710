"""Backtest-live parity: canonical records of what a runner did, and where two runs diverge.

A run (the live runner's journal, or the tick backtest replaying the ticks it captured) becomes
an :class:`Outcome`: JSON-able record lists in time order, every record starting with its
decision time (the bar close):

* ``decisions`` – ``[ts_ns, state, equity]`` (equity to 1e-6: the venue states each fee in
  decimals of 1e-8, the simulation keeps the float);
* ``orders`` – ``[ts_ns, symbol, signed lots, "sent" | "denied"]``: every leg the decision
  step produced, with the risk outcome;
* ``fills`` – ``[ts_ns, symbol, signed filled lots, average price (1e-8), fee (1e-8)]``: the
  fills of one order, summed; each fill's fee is on the venue's 1e-8 grid (as Binance states
  commissions: the replay's fees are put on it fill by fill), so a sum never rounds apart.

:func:`compare` aligns two outcomes by key (decision time; decision time and symbol for orders
and fills), counts the divergent records per kind and names the first one (earliest decision
time; at one time decisions, then orders, then fills, then PnL): its kind, decision time,
symbol, client order id, field, and the two values. :func:`first_difference` is the index-wise
one-line form used where two record lists are expected to be identical.

End of data: the tick backtest hands an order to its venue at the next market event, and a
capture has none after the last decision, so the last batch's orders expire there while the
live venue fills them on the book standing at that close; :func:`before` keeps only the fills
of orders decided before a time, and the report compares fills up to the last decision.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind, MarketEvent
from rrr_live.features.engine import FeatureEngine
from rrr_live.features.spec import FeatureSpec
from rrr_live.models.loader import LoadedEnsemble
from rrr_live.models.window import RingWindow
from rrr_live.risk.reasons import DenyReason
from rrr_live.risk.state import TradingState
from rrr_live.strategy.history import BarPanel, HistoryView

Record = list[Any]
WarmBar = tuple[str, int, float, float, float, float, float]  # symbol, close ns, o, h, l, c, v
KINDS = ("decisions", "orders", "fills", "pnl")
FIELDS: dict[str, tuple[str, ...]] = {
    "decisions": ("ts_ns", "state", "equity"),
    "orders": ("ts_ns", "symbol", "lots", "status"),
    "fills": ("ts_ns", "symbol", "lots", "avg_price", "fee"),
    "pnl": ("ts_ns", "pnl"),
}
_KEY_LEN = {"decisions": 1, "orders": 2, "fills": 2, "pnl": 0}
_Q8 = Decimal("1e-8")


# ---------------------------------------------------------------------------- canonical records
@dataclass
class Outcome:
    """One side's canonical records (JSON-able lists, in time order).

    Attributes:
        decisions: ``[ts_ns, state, equity]`` per decided batch.
        orders: ``[ts_ns, symbol, lots, status]`` per leg.
        fills: ``[ts_ns, symbol, lots, avg_price, fee]`` per filled order.
        client_ids: ``(ts_ns, symbol)`` -> the live client order id (not part of the hashes).
        seqs: ``ts_ns`` -> the live batch sequence (not part of the hashes).
    """

    decisions: list[Record] = field(default_factory=list)
    orders: list[Record] = field(default_factory=list)
    fills: list[Record] = field(default_factory=list)
    client_ids: dict[tuple[int, str], str] = field(default_factory=dict)
    seqs: dict[int, int] = field(default_factory=dict)

    def hashes(self) -> dict[str, str]:
        """sha256 of each canonical list."""
        return {k: sha256_of(v) for k, v in self.lists().items()}

    def lists(self) -> dict[str, list[Record]]:
        """The three lists by name."""
        return {"decisions": self.decisions, "orders": self.orders, "fills": self.fills}

    def pnl(self) -> list[Record]:
        """``[[last ts_ns, equity change over the decisions]]`` (empty without decisions)."""
        if not self.decisions:
            return []
        first, last = float(self.decisions[0][2]), float(self.decisions[-1][2])
        return [[self.decisions[-1][0], f"{last - first:.6f}"]]


def sha256_of(records: list[Record]) -> str:
    """Hash of a canonical record list (compact, sorted JSON)."""
    text = json.dumps(records, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def decision_record(ts_ns: int, state: str, equity: float) -> Record:
    """One batch: decision time, trading state after the marks, equity (to 1e-6)."""
    return [ts_ns, state, f"{float(equity):.6f}"]


def order_record(ts_ns: int, symbol: str, lots: int, status: str) -> Record:
    """One order the step decided: time, symbol, signed lots, risk outcome."""
    return [ts_ns, symbol, lots, status]


def fill_record(ts_ns: int, symbol: str, lots: int, avg_price: Decimal, fee: Decimal) -> Record:
    """The fills of one order: its time, symbol, signed filled lots, average price, fee."""
    return [ts_ns, symbol, lots, str(avg_price.quantize(_Q8)), str(fee.quantize(_Q8))]


def venue_fee(fee: float) -> Decimal:
    """A simulated fill's fee as the venue states it: on the 1e-8 grid (half even)."""
    return Decimal(repr(float(fee))).quantize(_Q8)


def before(outcome: Outcome, t: int) -> Outcome:
    """The same outcome with only the fills of orders decided before ``t`` (see the module)."""
    fills = [f for f in outcome.fills if f[0] < t]
    return Outcome(outcome.decisions, outcome.orders, fills, outcome.client_ids, outcome.seqs)


def first_difference(a: Outcome, b: Outcome, left: str = "runner", right: str = "backtest") -> str:
    """The earliest record (by decision time) that differs index-wise ('' if none).

    Among the lists' first differences the earliest is named (at one time: decisions, then
    orders, then fills), as ``"<list>[i]: <left> <record> != <right> <record>"``.
    """
    found = []
    for rank, (name, xs) in enumerate(a.lists().items()):
        ys = b.lists()[name]
        for i in range(max(len(xs), len(ys))):
            x = xs[i] if i < len(xs) else None
            y = ys[i] if i < len(ys) else None
            if x != y:
                t = min(r[0] for r in (x, y) if r is not None)
                found.append((t, rank, f"{name}[{i}]: {left} {x} != {right} {y}"))
                break
    return min(found)[2] if found else ""


# ------------------------------------------------------------------------------- the comparison
@dataclass(frozen=True)
class Divergence:
    """One record that differs between the live run and the replay.

    Attributes:
        kind: ``decisions``, ``orders``, ``fills`` or ``pnl``.
        ts_ns: Decision time of the record.
        seq: The live batch sequence of that decision (0: none known).
        symbol: The order's symbol ('' for decisions and PnL).
        client_id: The live client order id ('' when none is known).
        field: The first differing field; ``"missing"`` when one side has no such record.
        live: The live value (``None``: no live record).
        replay: The replay's value (``None``: no replay record).
    """

    kind: str
    ts_ns: int
    seq: int
    symbol: str
    client_id: str
    field: str
    live: Any
    replay: Any

    def describe(self) -> str:
        """One line: kind, time and batch, symbol and client id, field, live vs replay."""
        where = " ".join(x for x in (self.symbol, self.client_id) if x)
        batch = f" (batch {self.seq})" if self.seq else ""
        at = f"{self.kind} at {self.ts_ns}{batch}" + (f" {where}" if where else "")
        return f"{at}: {self.field} live {self.live} != replay {self.replay}"


@dataclass(frozen=True)
class ParityReport:
    """The comparison of a live run with its replay.

    Attributes:
        counts: Records compared per kind (the union of both sides' keys).
        divergences: Divergent records per kind.
        first: The first divergent record (``None``: none).
        notes: What the replay could not reproduce (e.g. a warm-up), for the operator.
    """

    counts: dict[str, int]
    divergences: dict[str, int]
    first: Divergence | None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing diverged."""
        return self.first is None

    def summary(self) -> str:
        """One line for an operator."""
        if self.first is None:
            compared = ", ".join(f"{self.counts[k]} {k}" for k in KINDS)
            return f"no divergence ({compared})"
        per = ", ".join(f"{n} {k}" for k, n in self.divergences.items() if n)
        return f"divergence: {per}; first: {self.first.describe()}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        first = None if self.first is None else self.first.__dict__
        return {"ok": self.ok, "counts": self.counts, "divergences": self.divergences,
                "first": first, "summary": self.summary(), "notes": list(self.notes)}  # fmt: skip


def compare(live: Outcome, replay: Outcome, notes: Iterable[str] = ()) -> ParityReport:
    """Align ``live`` and ``replay`` by key, count divergences per kind, name the first."""
    counts: dict[str, int] = {}
    diverged: dict[str, int] = {}
    firsts: list[tuple[int, int, str, Divergence]] = []
    for rank, kind in enumerate(KINDS):
        xs = _keyed(live.pnl() if kind == "pnl" else live.lists()[kind], kind)
        ys = _keyed(replay.pnl() if kind == "pnl" else replay.lists()[kind], kind)
        keys = sorted(set(xs) | set(ys), key=repr)
        found = [d for k in keys if (d := _diverge(kind, xs.get(k), ys.get(k), live)) is not None]
        counts[kind], diverged[kind] = len(keys), len(found)
        firsts += [(d.ts_ns, rank, d.symbol, d) for d in found]
    first = min(firsts, key=lambda f: f[:3])[3] if firsts else None
    return ParityReport(counts, diverged, first, tuple(notes))


def _keyed(records: Iterable[Record], kind: str) -> dict[tuple[Any, ...], Record]:
    n = _KEY_LEN[kind]
    return {tuple(r[:n]): r for r in records}


def _diverge(kind: str, x: Record | None, y: Record | None, live: Outcome) -> Divergence | None:
    if x == y:
        return None
    r = x if x is not None else y
    assert r is not None
    ts = int(r[0])
    symbol = str(r[1]) if _KEY_LEN[kind] == 2 else ""
    cid = live.client_ids.get((ts, symbol), "") if symbol else ""
    seq = live.seqs.get(ts, 0)
    if x is None or y is None:
        return Divergence(kind, ts, seq, symbol, cid, "missing", x, y)
    name, a, b = next((n, p, q) for n, p, q in zip(FIELDS[kind], x, y, strict=True) if p != q)
    return Divergence(kind, ts, seq, symbol, cid, name, a, b)


# ------------------------------------------------------------------------------ the live records
def live_outcome(
    reports: Iterable[Mapping[str, Any]], universe: Sequence[str], lot_size: Mapping[str, Decimal]
) -> Outcome:
    """Canonical records of a runner's journaled batch reports.

    The fills are the venue's answers journaled with each batch (filled quantity, average
    price, commission: the runner's own record of its fills, the one a restart resumes from).

    Args:
        reports: ``runner_batches.report`` of each batch, in sequence order.
        universe: The runner's universe (the decision's symbol indices refer to it).
        lot_size: Lot size per symbol (the venue's order grid).
    """
    out = Outcome()
    for r in reports:
        d = r["decision"]
        if d is None:
            continue
        ts = int(r["ts_ns"])
        out.seqs[ts] = int(r["seq"])
        out.decisions.append(decision_record(ts, TradingState[d["state"]].value, d["equity"]))
        for s, lots, code in zip(d["sym"], d["lots"], d["codes"], strict=True):
            status = "sent" if code == DenyReason.OK else "denied"
            out.orders.append(order_record(ts, universe[s], int(lots), status))
        for o in r["orders"]:
            out.client_ids[(ts, o["symbol"])] = o["client_id"]
            filled = Decimal(o["filled_qty"])
            if filled <= 0 or o["avg_price"] is None:
                continue
            sign = 1 if o["side"] == "BUY" else -1
            lots = sign * int(filled / lot_size[o["symbol"]])
            avg, fee = Decimal(o["avg_price"]), Decimal(o["commission"])
            out.fills.append(fill_record(ts, o["symbol"], lots, avg, fee))
    return out


# ------------------------------------------------------------------------- the backtest records
def backtest_outcome(
    orders: pd.DataFrame,
    fills: pd.DataFrame,
    equity: pd.DataFrame,
    instruments: Mapping[str, Instrument],
) -> Outcome:
    """Canonical records of a tick backtest result (``BacktestResult`` frames)."""
    out = Outcome()
    for ts, state, eq in zip(equity["ts"], equity["state"], equity["equity"], strict=True):
        out.decisions.append(decision_record(pd.Timestamp(ts).value, str(state), float(eq)))
    for o in orders.itertuples():
        lots = round(o.qty / instruments[o.symbol].lot) * (1 if o.side == "buy" else -1)
        status = "denied" if o.status == "denied" else "sent"
        out.orders.append(order_record(pd.Timestamp(o.ts).value, o.symbol, lots, status))
    ts_of = dict(zip(orders["order_id"], orders["ts"], strict=True))
    for oid, grp in fills.groupby("order_id", sort=True):
        symbol = str(grp["symbol"].iloc[0])
        n = int(grp["qty_lots"].sum())
        notional = sum(Decimal(int(k)) * Decimal(int(q)) for k, q in
                       zip(grp["price_ticks"], grp["qty_lots"], strict=True))  # fmt: skip
        sign = 1 if grp["side"].iloc[0] == "buy" else -1
        avg = Decimal(notional) / n * instruments[symbol].tick_size
        out.fills.append(fill_record(pd.Timestamp(ts_of[oid]).value, symbol, sign * n, avg,
                                     sum(map(venue_fee, grp["fee"]), Decimal(0))))  # fmt: skip
    return out


# ---------------------------------------------------------------------------- the replay inputs
TICK_COLUMNS = ["ts_ns", "symbol", "kind", "side", "price", "size"]


def tick_frame(
    events: Iterable[MarketEvent], instruments: Mapping[str, Instrument]
) -> pd.DataFrame:
    """Market events in receive order as the tick backtest's frame (``rrr_live.backtest.ticks``).

    Prices and sizes come off each symbol's market-data grid (``instruments``). A REST book
    snapshot carries no event time (0): it takes the latest event time received before it (the
    first one after it when it came first), so the frame's stable time order is the receive
    order. Symbols outside ``instruments`` are left out.
    """
    evs = [e for e in events if getattr(e, "symbol", None) in instruments]
    stamps = [int(getattr(e, "ts_ns", 0)) for e in evs]
    first = next((t for t in stamps if t), 0)
    rows: list[tuple[int, str, str, str, float, float]] = []
    now = first
    for e, t in zip(evs, stamps, strict=True):
        now = max(now, t)
        rows.extend(_rows(e, now, instruments[e.symbol]))
    return pd.DataFrame(rows, columns=TICK_COLUMNS)


def _rows(
    e: MarketEvent, ts: int, inst: Instrument
) -> list[tuple[int, str, str, str, float, float]]:
    px, sz = inst.ticks_to_price, inst.lots_to_size
    if isinstance(e, TradeTick):
        side = "buy" if int(e.aggressor) > 0 else "sell"
        return [(ts, e.symbol, "trade", side, px(e.price_ticks), sz(e.size_lots))]
    if not isinstance(e, BookUpdate):
        return []
    kind = "snapshot" if e.kind is BookUpdateKind.SNAPSHOT else "diff"
    levels = [("bid", p, s) for p, s in e.bids] + [("ask", p, s) for p, s in e.asks]
    if not levels and kind == "snapshot":  # an empty book: one zero-size row empties it
        return [(ts, e.symbol, kind, "bid", inst.tick, 0.0)]
    return [(ts, e.symbol, kind, side, px(p), sz(s)) for side, p, s in levels]


class ModelSignal:
    """Scores a panel batch by batch as the runner's trader does: features, windows, model.

    Per batch: update the engine with the batch's bars, push finite feature rows into the
    windows, score, and leave rows whose features are not finite or whose window is not full
    without a forecast (NaN).

    Args:
        model: The loaded ensemble.
        universe: The panel's symbols (its symbol ids index them).
        spec: The model's feature spec.
        lag: Score each batch with the features of ``lag`` batches earlier (a test mutation).
    """

    name = "parity-model"

    def __init__(
        self, model: LoadedEnsemble, universe: Sequence[str], spec: FeatureSpec, lag: int = 0
    ) -> None:
        self.model, self.universe, self.lag = model, list(universe), lag
        self.engine = FeatureEngine(spec, self.universe)
        self.window = RingWindow(len(self.universe), max(model.window_length, 1), len(spec.names))
        self.past: list[npt.NDArray[np.float32]] = []

    def scores(self, ts_ns: int, symbols: Sequence[str], history: HistoryView) -> np.ndarray:
        """Not used: the scores are precomputed (see :meth:`precompute`).

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError("ModelSignal scores the whole panel in precompute")

    def precompute(self, panel: BarPanel) -> np.ndarray:
        """Forecast of every panel row (NaN where none is made)."""
        out = np.full(len(panel.ts_ns), np.nan)
        for r0, r1 in itertools.pairwise(panel.batch_starts.tolist()):
            out[r0:r1] = self._batch(panel, r0, r1)
        return out

    def warm(self, groups: Iterable[Sequence[WarmBar]]) -> None:
        """Feed bars to the features and windows without scoring (the runner's warm-up).

        Args:
            groups: Bars closing at one time each, oldest first; symbols outside the
                universe are left out.
        """
        index = {s: i for i, s in enumerate(self.universe)}
        for group in groups:
            bars = sorted((b for b in group if b[0] in index), key=lambda b: index[b[0]])
            if bars:
                cols = list(zip(*bars, strict=True))
                idx = np.array([index[s] for s in cols[0]], dtype=np.int64)
                self._push(self._update(list(cols[0]), idx, cols[1:]), idx)

    def _update(
        self, names: list[str], idx: npt.NDArray[np.int64], cols: Sequence[Sequence[Any]]
    ) -> npt.NDArray[np.float32]:
        ts, o, h, lo, c, v = (list(x) for x in cols)
        self.engine.update_batch(names, ts_ns=ts, open_=o, high=h, low=lo, close=c, volume=v)
        return np.asarray(self.engine.features(names), dtype=np.float32)

    def _push(self, feats: npt.NDArray[np.float32], idx: npt.NDArray[np.int64]) -> None:
        finite = np.isfinite(feats).all(axis=1)  # warm-up rows never enter a window
        if finite.any():
            self.window.push(feats[finite], idx[finite])

    def _batch(self, panel: BarPanel, r0: int, r1: int) -> npt.NDArray[np.float64]:
        idx = panel.symbol_id[r0:r1]
        names = [self.universe[i] for i in idx.tolist()]
        cols = [a[r0:r1].tolist() for a in (panel.close_ns, panel.open, panel.high, panel.low,
                                            panel.close, panel.volume)]  # fmt: skip
        feats = self._update(names, idx, cols)
        self.past.append(feats)
        if self.lag:
            feats = self.past[max(0, len(self.past) - 1 - self.lag)]
        finite = np.isfinite(feats).all(axis=1)
        self._push(feats, idx)
        usable = finite & self.window.ready(idx)
        wins = self.window.windows(idx)  # as the inference worker: rows or windows, not both
        rows = None if self.model.needs_windows else feats
        forecast = np.asarray(self.model.predict(rows, wins), dtype=np.float64)
        return np.where(usable, forecast, np.nan)
