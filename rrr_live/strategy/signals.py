"""Signal providers: (decision time, batch of symbols, history) -> one score per symbol.

A score is any real number; the strategy turns it into a target position. ``NaN`` means "no
opinion": the symbol is not traded at this decision. A provider may also implement
``precompute(panel)``, returning one score per panel row that must equal what :meth:`scores`
would return at that row's decision (the backtest then skips the per-batch call; a parity test
checks the equality for the built-in providers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.domain.errors import BacktestInputError
from rrr_live.strategy.history import BarPanel, HistoryView

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@runtime_checkable
class SignalProvider(Protocol):
    """Maps a decision batch to scores (one per symbol, ``NaN`` = no opinion)."""

    def scores(self, ts_ns: int, symbols: Sequence[str], history: HistoryView) -> F64:
        """Return the scores of ``symbols`` at decision time ``ts_ns`` (a bar close)."""
        ...


@runtime_checkable
class PrecomputableSignal(SignalProvider, Protocol):
    """A provider that can also score a whole panel at once (same values as ``scores``)."""

    def precompute(self, panel: BarPanel) -> F64:
        """Return one score per panel row."""
        ...


@dataclass(frozen=True, slots=True)
class BuyAndHold:
    """Always +1: hold the strategy's full target weight in every symbol."""

    name: str = "buy_and_hold"

    def scores(self, ts_ns: int, symbols: Sequence[str], history: HistoryView) -> F64:
        """Return ones."""
        return np.ones(len(symbols))

    def precompute(self, panel: BarPanel) -> F64:
        """Return ones for every row."""
        return np.ones(panel.n_rows)


@dataclass(frozen=True, slots=True)
class TimeSeriesMomentum:
    """Trailing return ``close[t - skip] / close[t - lookback] - 1`` in bars of the symbol.

    ``TimeSeriesMomentum(20)`` is 20-day momentum on daily bars; ``TimeSeriesMomentum(252, 21)``
    is the classic 12-1 month momentum (12 months back, skipping the most recent month).
    """

    lookback: int = 20
    skip: int = 0
    name: str = "momentum"

    def __post_init__(self) -> None:
        if self.lookback < 1 or not 0 <= self.skip < self.lookback:
            raise ValueError(
                f"momentum needs lookback >= 1 and 0 <= skip < lookback, "
                f"got {self.lookback}, {self.skip}"
            )

    def scores(self, ts_ns: int, symbols: Sequence[str], history: HistoryView) -> F64:
        """Return the trailing return of each batch symbol (NaN until enough bars)."""
        closes = history.closes(self.lookback)
        recent = closes[:, self.lookback - self.skip]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(recent / closes[:, 0] - 1.0, dtype=np.float64)

    def precompute(self, panel: BarPanel) -> F64:
        """Return the trailing return for every row at once."""
        rows = np.arange(panel.n_rows, dtype=np.int64)
        recent = panel.gather(panel.mat_close, rows, self.skip)
        past = panel.gather(panel.mat_close, rows, self.lookback)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(recent / past - 1.0, dtype=np.float64)


def momentum_20d() -> TimeSeriesMomentum:
    """Return 20-bar time-series momentum (20 trading days on daily bars)."""
    return TimeSeriesMomentum(20, 0, "momentum_20d")


def momentum_12_1() -> TimeSeriesMomentum:
    """Return 12-1 month momentum on daily bars (252 bars back, skipping the last 21)."""
    return TimeSeriesMomentum(252, 21, "momentum_12_1")


class PrecomputedScores:
    """Scores computed elsewhere (e.g. model predictions), looked up by ``(ts, symbol)``.

    Args:
        scores: a Series (or one-column DataFrame) indexed by a ``(ts, symbol)`` MultiIndex,
            or a DataFrame with columns ``ts``, ``symbol`` and ``score``. ``ts`` is the bar
            *open* time of the canonical bar frame (tz-aware UTC): the score of bar ``ts`` is
            used at that bar's close, so it may use that bar's data but nothing later.
        name: label for reports.
    """

    def __init__(self, scores: pd.Series | pd.DataFrame, name: str = "precomputed") -> None:
        self.name = name
        frame = _normalise_scores(scores)
        wide = frame.pivot(index="ts_ns", columns="symbol", values="score").sort_index()
        self._ts = wide.index.to_numpy(dtype=np.int64)
        self._col = {str(s): i for i, s in enumerate(wide.columns)}
        self._matrix = wide.to_numpy(dtype=np.float64)

    def scores(self, ts_ns: int, symbols: Sequence[str], history: HistoryView) -> F64:
        """Return the stored scores of the bars that just closed (NaN where missing)."""
        out = np.full(len(symbols), np.nan)
        pos = int(np.searchsorted(self._ts, history.bar_open_ns))
        if pos == len(self._ts) or self._ts[pos] != history.bar_open_ns:
            return out
        cols = np.array([self._col.get(s, -1) for s in symbols], dtype=np.int64)
        ok = cols >= 0
        out[ok] = self._matrix[pos, cols[ok]]
        return out

    def precompute(self, panel: BarPanel) -> F64:
        """Return the stored score of every panel row (NaN where missing)."""
        pos = np.searchsorted(self._ts, panel.ts_ns)
        pos_c = np.minimum(pos, max(len(self._ts) - 1, 0))
        hit = (pos < len(self._ts)) & (self._ts[pos_c] == panel.ts_ns) if len(self._ts) else pos < 0
        col_of_sym = np.array([self._col.get(s, -1) for s in panel.symbols], dtype=np.int64)
        cols = col_of_sym[panel.symbol_id]
        ok = hit & (cols >= 0)
        out = np.full(panel.n_rows, np.nan)
        out[ok] = self._matrix[pos_c[ok], cols[ok]]
        return out


def _normalise_scores(scores: pd.Series | pd.DataFrame) -> pd.DataFrame:
    if isinstance(scores, pd.Series):
        frame = scores.rename("score").reset_index()
    elif {"ts", "symbol", "score"} <= set(scores.columns):
        frame = scores.loc[:, ["ts", "symbol", "score"]].copy()
    elif scores.shape[1] == 1:
        frame = scores.set_axis(["score"], axis=1).reset_index()
    else:
        raise BacktestInputError(
            "scores must be a Series indexed by (ts, symbol) or a frame with ts, symbol, score"
        )
    if not {"ts", "symbol"} <= set(frame.columns):
        raise BacktestInputError(f"scores index must be named (ts, symbol), got {list(frame)}")
    ts = pd.DatetimeIndex(frame["ts"])
    if ts.tz is None:
        raise BacktestInputError("scores ts must be tz-aware UTC timestamps")
    frame["ts_ns"] = ts.tz_convert("UTC").as_unit("ns").asi8
    frame["symbol"] = frame["symbol"].astype(str)
    if frame.duplicated(["ts_ns", "symbol"]).any():
        raise BacktestInputError("scores have duplicate (ts, symbol) entries")
    return frame.loc[:, ["ts_ns", "symbol", "score"]].astype({"score": "float64"})
