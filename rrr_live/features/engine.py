"""The incremental feature engine for the live hot path (numpy only, no I/O, no clock).

State lives in arrays with one row per symbol id, so a whole decision batch of symbols is updated
with a handful of vectorized numpy operations per feature instead of a Python loop per symbol.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from rrr_live.features.common import FloatArray, IntArray
from rrr_live.features.errors import FeatureInputError
from rrr_live.features.kernels import (
    BarInputs,
    Kernel,
    PriceHistory,
    cross_section,
    grow,
    history_depth,
    make_kernel,
)
from rrr_live.features.spec import FeatureSpec

_NO_TS = np.iinfo(np.int64).min


class BarLike(Protocol):
    """What :meth:`FeatureEngine.update` reads from a bar (``adj_close`` may be NaN or absent)."""

    @property
    def ts_ns(self) -> int:
        """Bar open time, integer nanoseconds since the epoch (UTC)."""
        ...

    @property
    def open(self) -> float:
        """Open price."""
        ...

    @property
    def high(self) -> float:
        """High price."""
        ...

    @property
    def low(self) -> float:
        """Low price."""
        ...

    @property
    def close(self) -> float:
        """Close price."""
        ...

    @property
    def volume(self) -> float:
        """Traded volume."""
        ...


@dataclass(frozen=True, slots=True)
class FeatureBar:
    """A plain bar accepted by :meth:`FeatureEngine.update`."""

    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    adj_close: float = math.nan


def _as_float(values: npt.ArrayLike, n: int, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise FeatureInputError(f"update_batch: {name} has {arr.shape[0]} values for {n} symbols")
    return arr


class FeatureEngine:
    """Incremental execution of a :class:`FeatureSpec`, one bar per symbol at a time.

    Feed every closed bar with :meth:`update` or, for a decision batch, :meth:`update_batch`;
    read the matrix for a batch with :meth:`features`. Time-series features are updated when the
    bar arrives; cross-sectional features are computed in :meth:`features` across the symbols of
    the batch handed in, which should be the symbols whose bar closed at the same timestamp.
    """

    def __init__(self, spec: FeatureSpec, symbols: Sequence[str] = (), capacity: int = 16) -> None:
        """Create an engine with no bars seen.

        Args:
            spec: the feature spec; column order of :meth:`features`.
            symbols: symbols to register up front (others are registered when first seen).
            capacity: initial number of symbol rows (grows by doubling).
        """
        self.spec = spec
        self.names = spec.names
        self._capacity = max(capacity, len(symbols), 1)
        self._ids: dict[str, int] = {}
        self._symbols: list[str] = []
        self._ts_cols = [i for i, f in enumerate(spec.features) if not f.cross_sectional]
        ts_defs = tuple(f for f in spec.features if not f.cross_sectional)
        self._kernels: list[Kernel] = [make_kernel(f, self._capacity) for f in ts_defs]
        self._cs = [
            (i, f.kind, spec.index(f.str_param("base")), f.int_param("min_count"))
            for i, f in enumerate(spec.features)
            if f.cross_sectional
        ]
        self._history = PriceHistory(history_depth(ts_defs), self._capacity)
        self._count = np.zeros(self._capacity, dtype=np.int64)
        self._last_ts = np.full(self._capacity, _NO_TS, dtype=np.int64)
        self._values = np.full((self._capacity, len(self.names)), np.nan)
        self.symbol_ids(symbols)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Registered symbols in id order."""
        return tuple(self._symbols)

    def symbol_ids(self, symbols: Sequence[str]) -> IntArray:
        """Return the integer ids of ``symbols``, registering unknown ones.

        Callers on the hot path may cache the ids and pass them to :meth:`update_batch` and
        :meth:`features` instead of names.
        """
        ids = np.empty(len(symbols), dtype=np.int64)
        for j, sym in enumerate(symbols):
            idx = self._ids.get(sym)
            if idx is None:
                idx = self._register(sym)
            ids[j] = idx
        return ids

    def _register(self, symbol: str) -> int:
        idx = len(self._symbols)
        if idx >= self._capacity:
            self._grow(2 * self._capacity)
        self._ids[symbol] = idx
        self._symbols.append(symbol)
        return idx

    def _grow(self, capacity: int) -> None:
        self._capacity = capacity
        for kernel in self._kernels:
            kernel.grow(capacity)
        self._history.grow(capacity)
        self._count = grow(self._count, capacity, 0)
        self._last_ts = grow(self._last_ts, capacity, _NO_TS)
        self._values = grow(self._values, capacity, np.nan)

    def _resolve(self, symbols: Sequence[str] | IntArray) -> IntArray:
        if isinstance(symbols, np.ndarray):
            ids = symbols.astype(np.int64, copy=False)
            if ids.size and (ids.min() < 0 or ids.max() >= len(self._symbols)):
                raise FeatureInputError("symbol id out of range; get ids from symbol_ids()")
            return ids
        return self.symbol_ids(symbols)

    def bars_seen(self, symbols: Sequence[str] | IntArray) -> IntArray:
        """Number of bars consumed per symbol."""
        out: IntArray = self._count[self._resolve(symbols)].copy()
        return out

    def update(self, symbol: str, bar: BarLike) -> None:
        """Consume one closed bar of one symbol (see :meth:`update_batch` for the rules)."""
        adj = getattr(bar, "adj_close", math.nan)
        self.update_batch(
            [symbol],
            ts_ns=[bar.ts_ns],
            open_=[bar.open],
            high=[bar.high],
            low=[bar.low],
            close=[bar.close],
            volume=[bar.volume],
            adj_close=[math.nan if adj is None else adj],
        )

    def update_batch(
        self,
        symbols: Sequence[str] | IntArray,
        *,
        ts_ns: npt.ArrayLike,
        open_: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        adj_close: npt.ArrayLike | None = None,
    ) -> None:
        """Consume one closed bar for each of several distinct symbols.

        Returns use ``adj_close`` where it is given and finite, else ``close``.

        Raises:
            FeatureInputError: on a repeated symbol, a bar not newer than the symbol's last
                bar, a non-positive or non-finite price, or a negative volume. The engine
                state is unchanged when this is raised.
        """
        ids = self._resolve(symbols)
        n = ids.shape[0]
        if n == 0:
            return
        ts = np.asarray(ts_ns, dtype=np.int64).reshape(-1)
        cols = [_as_float(v, n, k) for k, v in (("open", open_), ("high", high), ("low", low))]
        close_a = _as_float(close, n, "close")
        price = close_a if adj_close is None else _as_float(adj_close, n, "adj_close")
        price = np.where(np.isfinite(price), price, close_a)
        vol = _as_float(volume, n, "volume")
        self._check(ids, ts, np.stack([*cols, close_a, price]), vol)
        count = self._count[ids] + 1
        log_price = np.log(price)
        prev = self._history.lag(ids, count - 1, 0)
        inp = BarInputs(
            ids, count, ts, cols[0], cols[1], cols[2], close_a, price, log_price,
            log_price - prev, vol, self._history,
        )  # fmt: skip
        self._history.push(ids, count, log_price)
        self._count[ids] = count
        self._last_ts[ids] = ts
        for col, kernel in zip(self._ts_cols, self._kernels, strict=True):
            self._values[ids, col] = kernel.update(inp)

    def _check(self, ids: IntArray, ts: IntArray, prices: FloatArray, volume: FloatArray) -> None:
        if ts.shape[0] != ids.shape[0]:
            raise FeatureInputError(
                f"update_batch: ts_ns has {ts.shape[0]} values for {ids.shape[0]}"
            )
        if ids.shape[0] > 1 and np.unique(ids).shape[0] != ids.shape[0]:
            raise FeatureInputError("update_batch: a symbol appears twice in one batch")
        stale = ts <= self._last_ts[ids]
        if stale.any():
            j = int(np.argmax(stale))
            raise FeatureInputError(
                f"bar of {self._symbols[ids[j]]} at ts_ns={ts[j]} is not newer than its last bar "
                f"at ts_ns={self._last_ts[ids[j]]}"
            )
        bad = ~(np.isfinite(prices) & (prices > 0.0)).all(axis=0)
        bad |= ~(np.isfinite(volume) & (volume >= 0.0))
        if bad.any():
            j = int(np.argmax(bad))
            raise FeatureInputError(
                f"bar of {self._symbols[ids[j]]} at ts_ns={ts[j]}: prices must be positive and "
                f"finite and volume non-negative, got {prices[:, j].tolist()}, {volume[j]}"
            )

    def features(self, symbols: Sequence[str] | IntArray) -> FloatArray:
        """Return the float64 matrix (len(symbols) x n_features), columns in spec order.

        Cross-sectional columns are computed across exactly the symbols handed in; NaN marks a
        feature still warming up (or a symbol never updated).
        """
        ids = self._resolve(symbols)
        out: FloatArray = self._values[ids]
        for col, kind, base_col, min_count in self._cs:
            out[:, col] = cross_section(kind, out[:, base_col], min_count)
        return out
