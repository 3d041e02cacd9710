"""Bar history as seen at a decision: a columnar panel and the ``HistoryView`` protocol.

A :class:`BarPanel` holds every bar of a run sorted by ``(ts, symbol)`` plus a per-symbol,
left-aligned matrix of closes and volumes. A :class:`PanelHistory` exposes, for the current
decision batch, only bars up to and including the one that just closed, so a signal computed
through it cannot look ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class HistoryView(Protocol):
    """What a signal may read about the decision batch (oldest bar first, NaN before data)."""

    @property
    def symbol_idx(self) -> I64:
        """Universe indices of the batch symbols (sorted like the symbols)."""
        ...

    @property
    def bar_open_ns(self) -> int:
        """Open time of the bars that just closed (the canonical ``ts``)."""
        ...

    def closes(self, lookback: int) -> F64:
        """Return ``(batch, lookback + 1)`` closes ending with the bar that just closed."""
        ...

    def volumes(self, lookback: int) -> F64:
        """Return ``(batch, lookback + 1)`` volumes ending with the bar that just closed."""
        ...


@dataclass(frozen=True, slots=True)
class BarPanel:
    """All bars of a run in columnar form, sorted by ``(ts, symbol)``.

    ``batch_starts[k]:batch_starts[k + 1]`` are the rows of decision batch ``k`` (bars that
    close at the same time). ``pos_in_symbol[row]`` is how many earlier bars that symbol has;
    ``mat_close[symbol, j]`` is the close of the symbol's ``j``-th bar.
    """

    symbols: tuple[str, ...]
    interval_ns: int
    symbol_id: I64
    ts_ns: I64
    close_ns: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    pos_in_symbol: I64
    mat_close: F64
    mat_volume: F64
    batch_starts: I64

    @property
    def n_rows(self) -> int:
        """Return the number of bars."""
        return len(self.ts_ns)

    @property
    def n_batches(self) -> int:
        """Return the number of decision batches (distinct close times)."""
        return len(self.batch_starts) - 1

    def gather(self, matrix: F64, rows: I64, back: int) -> F64:
        """Return ``matrix[symbol, pos - back]`` for each row (NaN before the first bar)."""
        pos = self.pos_in_symbol[rows] - back
        ok = pos >= 0
        out = np.full(len(rows), np.nan)
        out[ok] = matrix[self.symbol_id[rows][ok], pos[ok]]
        return out


def _window(matrix: F64, sym: I64, count: I64, lookback: int) -> F64:
    cols = count[:, None] - 1 - np.arange(lookback, -1, -1)[None, :]
    ok = cols >= 0
    out = matrix[sym[:, None], np.maximum(cols, 0)]
    return np.where(ok, out, np.nan)


class PanelHistory:
    """A :class:`HistoryView` over a :class:`BarPanel`, moved batch by batch."""

    def __init__(self, panel: BarPanel) -> None:
        self.panel = panel
        self._rows: I64 = np.zeros(0, dtype=np.int64)
        self._sym: I64 = np.zeros(0, dtype=np.int64)
        self._count: I64 = np.zeros(0, dtype=np.int64)
        self._open_ns = 0

    def set_batch(self, k: int) -> None:
        """Point the view at decision batch ``k``."""
        lo, hi = int(self.panel.batch_starts[k]), int(self.panel.batch_starts[k + 1])
        self._rows = np.arange(lo, hi, dtype=np.int64)
        self._sym = self.panel.symbol_id[lo:hi]
        self._count = self.panel.pos_in_symbol[lo:hi] + 1
        self._open_ns = int(self.panel.ts_ns[lo])

    @property
    def symbol_idx(self) -> I64:
        """Universe indices of the batch symbols."""
        return self._sym

    @property
    def rows(self) -> I64:
        """Panel rows of the batch bars."""
        return self._rows

    @property
    def bar_open_ns(self) -> int:
        """Open time of the batch bars."""
        return self._open_ns

    def closes(self, lookback: int) -> F64:
        """Return ``(batch, lookback + 1)`` closes, oldest first."""
        return _window(self.panel.mat_close, self._sym, self._count, lookback)

    def volumes(self, lookback: int) -> F64:
        """Return ``(batch, lookback + 1)`` volumes, oldest first."""
        return _window(self.panel.mat_volume, self._sym, self._count, lookback)


def _rolling_on_matrix(values: F64, lookback: int, what: str) -> F64:
    """Trailing stat over the last ``lookback`` columns up to and including each column.

    ``mean`` uses the finite values available in the window (at least one); ``std`` (sample)
    needs a full window of finite values, else NaN.
    """
    filled = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    valid = np.isfinite(values).astype(np.float64)
    zeros = np.zeros((values.shape[0], 1))
    c1 = np.concatenate([zeros, np.cumsum(filled, axis=1)], axis=1)
    cn = np.concatenate([zeros, np.cumsum(valid, axis=1)], axis=1)
    hi = np.arange(1, values.shape[1] + 1)
    lo = np.maximum(0, hi - lookback)
    s1 = c1[:, hi] - c1[:, lo]
    n = cn[:, hi] - cn[:, lo]
    if what == "mean":
        mean: F64 = np.divide(s1, n, out=np.full_like(s1, np.nan), where=n > 0)
        return mean
    c2 = np.concatenate([zeros, np.cumsum(filled * filled, axis=1)], axis=1)
    s2 = c2[:, hi] - c2[:, lo]
    var = (s2 - s1 * s1 / lookback) / max(lookback - 1, 1)
    return np.where(n == lookback, np.sqrt(np.maximum(var, 0.0)), np.nan)


def rolling_volatility(panel: BarPanel, lookback: int) -> F64:
    """Per-row sample std of the last ``lookback`` log returns up to that bar (per bar)."""
    if lookback < 2:
        raise ValueError(f"volatility lookback must be >= 2, got {lookback}")
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.log(panel.mat_close)
    rets = np.full_like(logc, np.nan)
    rets[:, 1:] = logc[:, 1:] - logc[:, :-1]
    mat = _rolling_on_matrix(rets, lookback, "std")
    rows = np.arange(panel.n_rows, dtype=np.int64)
    return panel.gather(mat, rows, 0)


def rolling_mean_volume(panel: BarPanel, lookback: int) -> F64:
    """Per-row mean volume of the last ``lookback`` bars up to and including that bar.

    Early rows average the bars available so far (at least the current one).
    """
    if lookback < 1:
        raise ValueError(f"volume lookback must be >= 1, got {lookback}")
    mat = _rolling_on_matrix(panel.mat_volume, lookback, "mean")
    rows = np.arange(panel.n_rows, dtype=np.int64)
    return panel.gather(mat, rows, 0)
