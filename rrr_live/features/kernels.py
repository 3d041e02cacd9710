"""Incremental (O(1) per bar) state machines, one per time-series feature kind.

Each kernel keeps state arrays with one row per symbol id and updates the rows of a whole
decision batch at once with numpy. Rolling windows keep a ring buffer plus shifted running sums
(re-centred and recomputed from the buffer every ``window`` pushes, so rounding drift stays
bounded and the cost stays amortised O(1)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rrr_live.features.common import (
    FLAT_RTOL,
    GK_OC_WEIGHT,
    LN2,
    FloatArray,
    IntArray,
    calendar_values,
    rsi_from_averages,
    safe_z,
)
from rrr_live.features.spec import FeatureDef


def grow(arr: npt.NDArray[Any], capacity: int, fill: float) -> npt.NDArray[Any]:
    """Return ``arr`` extended along axis 0 to ``capacity`` rows, new rows set to ``fill``."""
    out = np.full((capacity, *arr.shape[1:]), fill, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@dataclass
class BarInputs:
    """One decision batch of new bars, aligned with ``ids``; derived series precomputed."""

    ids: IntArray
    count: IntArray  # bars seen per symbol, this bar included
    ts_ns: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    price: FloatArray  # adj_close where given, else close
    log_price: FloatArray
    ret: FloatArray  # 1-bar log return of price; NaN on a symbol's first bar
    volume: FloatArray
    history: PriceHistory

    def lag(self, k: int) -> FloatArray:
        """Log price ``k`` bars ago for every symbol of the batch (NaN if not seen yet)."""
        return self.history.lag(self.ids, self.count, k)


class PriceHistory:
    """Ring buffer of the last ``depth`` log prices per symbol."""

    def __init__(self, depth: int, capacity: int) -> None:
        self.depth = max(depth, 2)
        self.buf = np.full((capacity, self.depth), np.nan)

    def grow(self, capacity: int) -> None:
        """Add rows for new symbols."""
        self.buf = grow(self.buf, capacity, np.nan)

    def push(self, ids: IntArray, count: IntArray, log_price: FloatArray) -> None:
        """Store the new log prices; ``count`` already includes the new bar."""
        self.buf[ids, (count - 1) % self.depth] = log_price

    def lag(self, ids: IntArray, count: IntArray, k: int) -> FloatArray:
        """Log price ``k`` bars before the latest one; NaN where fewer than ``k + 1`` bars."""
        if k >= self.depth:
            raise ValueError(f"lag {k} exceeds history depth {self.depth}")
        pos = count - 1 - k
        out: FloatArray = np.where(pos >= 0, self.buf[ids, pos % self.depth], np.nan)
        return out


class Kernel(Protocol):
    """Incremental computation of one time-series feature."""

    def grow(self, capacity: int) -> None:
        """Add state rows for new symbols."""
        ...

    def update(self, inp: BarInputs) -> FloatArray:
        """Consume one bar per symbol of the batch and return the new feature values."""
        ...


class RollingWindow:
    """Rolling mean (and population variance) over the last ``window`` pushed values."""

    def __init__(self, window: int, capacity: int) -> None:
        self.window = window
        self.buf = np.zeros((capacity, window))
        self.pushed = np.zeros(capacity, dtype=np.int64)
        self.shift = np.zeros(capacity)
        self.s1 = np.zeros(capacity)
        self.s2 = np.zeros(capacity)

    def grow(self, capacity: int) -> None:
        """Add rows for new symbols."""
        self.buf = grow(self.buf, capacity, 0.0)
        self.pushed = grow(self.pushed, capacity, 0)
        self.shift = grow(self.shift, capacity, 0.0)
        self.s1 = grow(self.s1, capacity, 0.0)
        self.s2 = grow(self.s2, capacity, 0.0)

    def push(self, ids: IntArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Push one value per id; return (mean, variance), NaN until the window is full."""
        w = self.window
        pushed = self.pushed[ids]
        slot = pushed % w
        old = self.buf[ids, slot]
        self.buf[ids, slot] = x
        k = self.shift[ids]
        dx = x - k
        dold = np.where(pushed >= w, old - k, 0.0)
        s1 = self.s1[ids] + dx - dold
        s2 = self.s2[ids] + dx * dx - dold * dold
        pushed = pushed + 1
        resync = pushed % w == 0
        if resync.any():
            rows = self.buf[ids[resync]]
            centre = rows.mean(axis=1)
            dev = rows - centre[:, None]
            k = k.copy()
            k[resync] = centre
            s1[resync] = dev.sum(axis=1)
            s2[resync] = (dev * dev).sum(axis=1)
            self.shift[ids[resync]] = centre
        self.pushed[ids] = pushed
        self.s1[ids] = s1
        self.s2[ids] = s2
        full = pushed >= w
        m1 = s1 / w
        mean = np.where(full, k + m1, np.nan)
        var = np.where(full, np.maximum(s2 / w - m1 * m1, 0.0), np.nan)
        return mean, var


class LogReturn:
    """``log(p_t / p_{t-window})`` from the shared price history."""

    def __init__(self, fdef: FeatureDef) -> None:
        self.window = fdef.int_param("window")

    def grow(self, capacity: int) -> None:
        """Stateless: nothing to grow."""

    def update(self, inp: BarInputs) -> FloatArray:
        """Return the new values."""
        return inp.log_price - inp.lag(self.window)


class Momentum:
    """``log(p_{t-skip} / p_{t-long})``: the 12-1 style momentum when long=252, skip=21."""

    def __init__(self, fdef: FeatureDef) -> None:
        self.long = fdef.int_param("long")
        self.skip = fdef.int_param("skip")

    def grow(self, capacity: int) -> None:
        """Stateless: nothing to grow."""

    def update(self, inp: BarInputs) -> FloatArray:
        """Return the new values."""
        return inp.lag(self.skip) - inp.lag(self.long)


class RealizedVol:
    """Square root of the window mean of a per-bar variance estimate."""

    def __init__(self, fdef: FeatureDef, capacity: int) -> None:
        self.estimator = fdef.str_param("estimator")
        self.roll = RollingWindow(fdef.int_param("window"), capacity)

    def grow(self, capacity: int) -> None:
        """Add rows for new symbols."""
        self.roll.grow(capacity)

    def update(self, inp: BarInputs) -> FloatArray:
        """Return the new values."""
        if self.estimator == "close_to_close":
            has = inp.count >= 2
            out = np.full(inp.ids.shape, np.nan)
            if has.any():
                mean, _ = self.roll.push(inp.ids[has], inp.ret[has] ** 2)
                out[has] = np.sqrt(np.maximum(mean, 0.0))
            return out
        hl = np.log(inp.high / inp.low) ** 2
        if self.estimator == "parkinson":
            per_bar = hl / (4.0 * LN2)
        else:
            per_bar = 0.5 * hl - GK_OC_WEIGHT * np.log(inp.close / inp.open) ** 2
        mean, _ = self.roll.push(inp.ids, per_bar)
        result: FloatArray = np.sqrt(np.maximum(mean, 0.0))
        return result


class RollingZ:
    """Population z-score of the latest value against its window (Bollinger, volume)."""

    def __init__(self, fdef: FeatureDef, capacity: int) -> None:
        self.source = "price" if fdef.kind == "bollinger_z" else "volume"
        self.log1p = fdef.kind == "volume_z" and fdef.str_param("transform") == "log1p"
        self.roll = RollingWindow(fdef.int_param("window"), capacity)

    def grow(self, capacity: int) -> None:
        """Add rows for new symbols."""
        self.roll.grow(capacity)

    def update(self, inp: BarInputs) -> FloatArray:
        """Return the new values."""
        x = inp.price if self.source == "price" else inp.volume
        if self.log1p:
            x = np.log1p(x)
        mean, var = self.roll.push(inp.ids, x)
        return safe_z(x, mean, np.sqrt(var))


class WilderRsi:
    """Wilder's RSI: simple-mean seed over the first ``window`` changes, then 1/window smoothing."""

    def __init__(self, fdef: FeatureDef, capacity: int) -> None:
        self.window = fdef.int_param("window")
        self.gain = np.zeros(capacity)
        self.loss = np.zeros(capacity)

    def grow(self, capacity: int) -> None:
        """Add rows for new symbols."""
        self.gain = grow(self.gain, capacity, 0.0)
        self.loss = grow(self.loss, capacity, 0.0)

    def update(self, inp: BarInputs) -> FloatArray:
        """Return the new values."""
        n = self.window
        changes = inp.count - 1
        has = changes >= 1
        ret = np.where(has, inp.ret, 0.0)
        g, lo = np.maximum(ret, 0.0), np.maximum(-ret, 0.0)
        ag, al = self.gain[inp.ids], self.loss[inp.ids]
        alpha = 1.0 / n
        warm = changes <= n
        ag = np.where(warm, ag + g, (1.0 - alpha) * ag + alpha * g)
        al = np.where(warm, al + lo, (1.0 - alpha) * al + alpha * lo)
        seed = changes == n
        ag = np.where(seed, ag / n, ag)
        al = np.where(seed, al / n, al)
        self.gain[inp.ids] = ag
        self.loss[inp.ids] = al
        return np.where(changes >= n, rsi_from_averages(ag, al), np.nan)


class Macd:
    """MACD on log prices: EMA(fast) - EMA(slow), signal EMA and histogram; EMAs seeded at bar 0."""

    def __init__(self, fdef: FeatureDef, capacity: int) -> None:
        self.a_fast = 2.0 / (fdef.int_param("fast") + 1.0)
        self.a_slow = 2.0 / (fdef.int_param("slow") + 1.0)
        self.a_signal = 2.0 / (fdef.int_param("signal") + 1.0)
        self.output = fdef.str_param("output")
        self.warmup = fdef.warmup_bars()
        self.fast = np.zeros(capacity)
        self.slow = np.zeros(capacity)
        self.signal = np.zeros(capacity)

    def grow(self, capacity: int) -> None:
        """Add rows for new symbols."""
        self.fast = grow(self.fast, capacity, 0.0)
        self.slow = grow(self.slow, capacity, 0.0)
        self.signal = grow(self.signal, capacity, 0.0)

    def update(self, inp: BarInputs) -> FloatArray:
        """Return the new values."""
        x = inp.log_price
        first = inp.count == 1
        fast = np.where(first, x, (1.0 - self.a_fast) * self.fast[inp.ids] + self.a_fast * x)
        slow = np.where(first, x, (1.0 - self.a_slow) * self.slow[inp.ids] + self.a_slow * x)
        line = fast - slow
        a = self.a_signal
        signal = np.where(first, line, (1.0 - a) * self.signal[inp.ids] + a * line)
        self.fast[inp.ids], self.slow[inp.ids], self.signal[inp.ids] = fast, slow, signal
        out = {"line": line, "signal": signal, "hist": line - signal}[self.output]
        return np.where(inp.count >= self.warmup, out, np.nan)


class Calendar:
    """Cyclic (sin/cos) encoding of the bar open time."""

    def __init__(self, fdef: FeatureDef) -> None:
        self.field = fdef.str_param("field")
        self.component = fdef.str_param("component")

    def grow(self, capacity: int) -> None:
        """Stateless: nothing to grow."""

    def update(self, inp: BarInputs) -> FloatArray:
        """Return the new values."""
        return calendar_values(inp.ts_ns, self.field, self.component)


def make_kernel(fdef: FeatureDef, capacity: int) -> Kernel:
    """Build the kernel of a time-series or calendar feature definition."""
    kind = fdef.kind
    if kind == "log_return":
        return LogReturn(fdef)
    if kind == "momentum":
        return Momentum(fdef)
    if kind == "realized_vol":
        return RealizedVol(fdef, capacity)
    if kind in ("bollinger_z", "volume_z"):
        return RollingZ(fdef, capacity)
    if kind == "rsi":
        return WilderRsi(fdef, capacity)
    if kind == "macd":
        return Macd(fdef, capacity)
    if kind == "calendar":
        return Calendar(fdef)
    raise ValueError(f"feature {fdef.name!r}: kind {kind!r} has no incremental kernel")


def history_depth(fdefs: tuple[FeatureDef, ...]) -> int:
    """Depth of the shared log-price history the kernels of ``fdefs`` need."""
    depth = 2
    for fdef in fdefs:
        if fdef.kind == "log_return":
            depth = max(depth, fdef.int_param("window") + 1)
        elif fdef.kind == "momentum":
            depth = max(depth, fdef.int_param("long") + 1, fdef.int_param("skip") + 1)
    return depth


def average_ranks(x: FloatArray) -> FloatArray:
    """1-based ranks of ``x`` (all finite), ties sharing their average rank."""
    n = x.shape[0]
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.empty(n, dtype=bool)
    new_group[:1] = True
    new_group[1:] = xs[1:] != xs[:-1]
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], n)
    ranks = np.empty(n)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def cross_section(kind: str, base: FloatArray, min_count: int) -> FloatArray:
    """Rank in [0, 1] (``cs_rank``) or population z-score (``cs_zscore``) across one batch."""
    out = np.full(base.shape, np.nan)
    ok = np.isfinite(base)
    n = int(ok.sum())
    if n < min_count or n == 0:
        return out
    x = base[ok]
    if kind == "cs_rank":
        out[ok] = (average_ranks(x) - 1.0) / (n - 1.0) if n > 1 else math.nan
        return out
    mean = x.mean()
    std = math.sqrt(float(np.mean((x - mean) ** 2)))
    if not std > FLAT_RTOL * abs(mean):
        return out
    out[ok] = (x - mean) / std
    return out


__all__ = ["BarInputs", "Kernel", "PriceHistory", "average_ranks", "cross_section", "make_kernel"]
