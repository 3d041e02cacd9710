"""Pieces of ``bench_live.py``: the bench's model, bars, tape, intake and timed broker."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rrr_live.book.l2 import OrderBook
from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate
from rrr_live.exchange.bars import Bar, expand_bars
from rrr_live.exchange.tape import Tape
from rrr_live.features.engine import FeatureEngine
from rrr_live.features.spec import FeatureDef, FeatureSpec
from rrr_live.feeds.binance_wire import BinanceParser
from rrr_live.inference.registry_client import VersionRef
from rrr_live.models import Ensemble, Member, build_network, save_model
from rrr_live.models import verdict as rule
from rrr_live.service.bars import BarBuilder, ClosedBar
from rrr_live.venue.broker import Answer, BinanceBroker
from rrr_live.venue.model import OrderIntent, OrderState

S = 1_000_000_000
T0 = 1_700_000_000 * S
TICK, LOT = Decimal("0.01"), Decimal("0.01")
WINDOW = 16
SPEC = FeatureSpec("fs-bench", tuple(FeatureDef.of(f"r{w}", "log_return", window=w)
                                     for w in (1, 2, 4, 8, 16)))  # fmt: skip
MEMBERS = [
    ("mlp", "mlp", {"hidden": 64, "layers": 2}, "return"),
    ("lstm", "lstm", {"hidden": 32}, "return"),
    ("transformer", "transformer", {"d_model": 32, "heads": 4, "layers": 1, "ff": 64}, "return"),
]


# --------------------------------------------------------------------------- inputs and model
def symbols_of(n: int) -> list[str]:
    """Bar-table symbols served as they are named (``S0000``...)."""
    return [f"S{i:04d}" for i in range(n)]


def bars_for(symbols: list[str], first: int, n_bars: int, seed: int = 7) -> list[Bar]:
    """Seeded random-walk 1-second bars, bar ``first`` onwards (history and tape share it)."""
    rng = np.random.default_rng(seed)
    steps = 0.003 * rng.standard_normal((len(symbols), first + n_bars))
    closes = 100.0 * np.exp(np.cumsum(steps, axis=1))
    out = []
    for k, s in enumerate(symbols):
        for i in range(first, first + n_bars):
            o = float(closes[k, i - 1]) if i else 100.0
            c = float(closes[k, i])
            out.append(Bar(s, T0 + i * S, S, o, max(o, c) * 1.0005, min(o, c) * 0.9995, c, 5e3))
    return out


def save_bench_model(folder: Path, symbols: list[str]) -> Path:
    """A seeded ensemble saved with the saver (manifest, canary) for ``symbols`` at 1 s."""
    torch.manual_seed(0)
    n = len(SPEC.names)
    members = tuple(Member(name, arch, hp, build_network(arch, hp, n, WINDOW), role, 0.0, 0.01)
                    for name, arch, hp, role in MEMBERS)  # fmt: skip
    ens = Ensemble(SPEC.names, WINDOW, np.zeros(n, np.float32), np.full(n, 0.003, np.float32),
                   members, {"mlp": 0.4, "lstm": 0.4, "transformer": 0.2})  # fmt: skip
    spec = {**SPEC.to_dict(), "fingerprint": SPEC.fingerprint()}
    save_model(folder, ens, feature_spec=spec,
               metadata={"universe": symbols, "bar_interval": "1s"})  # fmt: skip
    return folder


class LocalRegistry:
    """The lifecycle's registry source, served from a local model folder (one passed version)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        crit = [
            rule.Criterion("sharpe", 1.0, 0.0),
            rule.Criterion("max_drawdown", 0.1, 0.25),
            rule.Criterion("var_99_1d", 0.01, 0.05),
            rule.Criterion("worst_stress_loss", 0.1, 0.5),
        ]
        self.tags = rule.verdict_tags("bench", rule.BASELINE_SET, "bench", crit)

    async def alias(self, name: str, alias: str) -> VersionRef | None:
        """Version 1 for the champion, nothing else."""
        return VersionRef(name, "1", "local", self.tags) if alias == rule.CHAMPION else None

    async def download(self, ref: VersionRef, dest: Path) -> Path:
        """Copy the folder (the lifecycle verifies it as a download)."""
        shutil.copytree(self.folder, dest)
        return dest


def tape_for(n: int, first: int, n_bars: int) -> Tape:
    """The served tape: bars ``first..`` expanded into depth diffs and trades."""
    return expand_bars("binance", bars_for(symbols_of(n), first, n_bars), tick=TICK, lot=LOT)


class TimedBroker:
    """The real broker, timing when each order leaves the risk engine and when it is answered."""

    def __init__(self, inner: BinanceBroker) -> None:
        self.inner = inner
        self.first_ns = 0  # first order of the current batch
        self.acks_ms: list[float] = []

    async def submit(self, intent: OrderIntent) -> OrderState:
        """Forward; record the times."""
        t = time.monotonic_ns()
        self.first_ns = self.first_ns or t
        state = await self.inner.submit(intent)
        self.acks_ms.append((time.monotonic_ns() - t) / 1e6)
        return state

    async def submit_many(
        self, intents: Sequence[OrderIntent], concurrency: int, clock: Callable[[], int]
    ) -> list[Answer]:
        """Forward; record the times."""
        self.first_ns = self.first_ns or time.monotonic_ns()
        answers = await self.inner.submit_many(intents, concurrency, clock)
        self.acks_ms += [(a.answered_ns - a.sent_ns) / 1e6 for a in answers]
        return answers

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def closed_bars(bars: list[Bar]) -> list[list[ClosedBar]]:
    """History bars as batches of closed bars (warm-up input)."""
    by_t: dict[int, list[ClosedBar]] = {}
    for b in bars:
        cb = ClosedBar(b.symbol, b.ts_ns, b.ts_ns + S, b.open, b.high, b.low, b.close, b.volume, 4)
        by_t.setdefault(cb.end_ns, []).append(cb)
    return [sorted(v, key=lambda b: b.symbol) for _, v in sorted(by_t.items())]


@dataclass
class Intake:
    """Frames -> parser -> books and bars -> a batch when every symbol's bar closed."""

    syms: list[str]
    insts: dict[str, Instrument]
    parser: BinanceParser
    bars: BarBuilder = field(default_factory=lambda: BarBuilder(S))
    books: dict[str, OrderBook] = field(default_factory=dict)
    pending: dict[int, list[ClosedBar]] = field(default_factory=dict)
    frames: int = 0

    def __post_init__(self) -> None:
        for s, inst in self.insts.items():
            self.books[s] = book = OrderBook(inst)
            book.apply_snapshot([], [], 0)  # diffs carry absolute sizes from the first one

    def on_frame(self, raw: str | bytes) -> list[ClosedBar] | None:
        """Take one frame; return a complete batch when this frame completes one."""
        self.frames += 1
        for ev in self.parser.parse(raw).events:
            if isinstance(ev, BookUpdate):
                self.books[ev.symbol].apply_sides(ev.bids, ev.asks, ev.ts_ns)
            elif isinstance(ev, TradeTick):
                inst = self.insts[ev.symbol]
                px, qty = inst.ticks_to_price(ev.price_ticks), inst.lots_to_size(ev.size_lots)
                closed = self.bars.on_trade(ev.symbol, ev.ts_ns, px, qty)
                if closed is not None:
                    batch = self.pending.setdefault(closed.end_ns, [])
                    batch.append(closed)
                    if len(batch) == len(self.syms):
                        return self.pending.pop(closed.end_ns)
        return None


def update_features(engine: FeatureEngine, batch: list[ClosedBar]) -> np.ndarray:
    """Update the engine with a batch of closed bars; return their features (float32)."""
    names = [b.symbol for b in batch]
    engine.update_batch(
        names, ts_ns=[b.end_ns for b in batch], open_=[b.open for b in batch],
        high=[b.high for b in batch], low=[b.low for b in batch],
        close=[b.close for b in batch], volume=[b.volume for b in batch],
    )  # fmt: skip
    return np.asarray(engine.features(names), dtype=np.float32)
