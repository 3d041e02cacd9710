"""Drive a :class:`FeatureEngine` over a historical bar frame (warm-up, backtests, parity tests)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from rrr_live.features.common import FloatArray
from rrr_live.features.engine import FeatureEngine
from rrr_live.features.errors import FeatureInputError


def iter_decisions(
    engine: FeatureEngine, bars: pd.DataFrame
) -> Iterator[tuple[pd.Timestamp, list[str], FloatArray]]:
    """Feed ``bars`` to ``engine`` one timestamp at a time, in time order.

    Each step is one decision batch: every symbol with a bar at that ``ts`` is updated with
    :meth:`FeatureEngine.update_batch`, then :meth:`FeatureEngine.features` is read for them.

    Yields:
        ``(ts, symbols, matrix)`` per distinct timestamp; symbols sorted by name.

    Raises:
        FeatureInputError: if a column is missing or ``ts`` is not tz-aware.
    """
    missing = {"symbol", "ts", "open", "high", "low", "close", "volume"} - set(bars.columns)
    if missing:
        raise FeatureInputError(f"bar frame lacks column(s) {sorted(missing)}")
    if not isinstance(bars["ts"].dtype, pd.DatetimeTZDtype):
        raise FeatureInputError("bar column 'ts' must be tz-aware (UTC)")
    ts = pd.DatetimeIndex(bars["ts"]).tz_convert("UTC").as_unit("ns")
    symbols = bars["symbol"].astype(str).to_numpy()
    order = np.lexsort((symbols, ts.asi8))
    ts_sorted = ts.asi8[order]
    cols = {
        c: bars[c].to_numpy(dtype=np.float64)[order]
        for c in ("open", "high", "low", "close", "volume", "adj_close")
        if c in bars.columns
    }
    sym_sorted = symbols[order]
    ids_sorted = engine.symbol_ids(list(sym_sorted))
    bounds = np.flatnonzero(np.diff(ts_sorted)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(order)], strict=True):
        ids = ids_sorted[lo:hi]
        engine.update_batch(
            ids,
            ts_ns=ts_sorted[lo:hi],
            open_=cols["open"][lo:hi],
            high=cols["high"][lo:hi],
            low=cols["low"][lo:hi],
            close=cols["close"][lo:hi],
            volume=cols["volume"][lo:hi],
            adj_close=cols["adj_close"][lo:hi] if "adj_close" in cols else None,
        )
        stamp = pd.Timestamp(int(ts_sorted[lo]), unit="ns", tz="UTC")
        yield stamp, list(sym_sorted[lo:hi]), engine.features(ids)


def replay_features(engine: FeatureEngine, bars: pd.DataFrame) -> pd.DataFrame:
    """Run :func:`iter_decisions` to the end; return a frame shaped like ``compute_features``."""
    stamps: list[int] = []
    names: list[str] = []
    blocks: list[FloatArray] = []
    for stamp, syms, matrix in iter_decisions(engine, bars):
        stamps.extend([stamp.value] * len(syms))
        names.extend(syms)
        blocks.append(matrix)
    index = pd.MultiIndex.from_arrays(
        [
            pd.DatetimeIndex(np.asarray(stamps, dtype="datetime64[ns]")).tz_localize("UTC"),
            pd.Index(names, dtype=str),
        ],
        names=["ts", "symbol"],
    )
    data = np.vstack(blocks) if blocks else np.empty((0, len(engine.names)))
    return pd.DataFrame(data, index=index, columns=list(engine.names))
