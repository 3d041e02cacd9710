"""Vectorized batch execution of a feature spec over whole canonical bar frames (pandas).

Time-series features are computed on a left-aligned panel: row ``i`` holds the ``i``-th bar of
every symbol (trailing NaN padding for shorter histories), so windows count bars of the symbol,
never calendar time, exactly as the incremental engine does. Cross-sectional features are
computed per timestamp over the symbols that have a bar at that timestamp.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from rrr_live.features.common import FLAT_RTOL, GK_OC_WEIGHT, LN2, FloatArray
from rrr_live.features.errors import FeatureInputError
from rrr_live.features.spec import FeatureDef, FeatureSpec

_REQUIRED = ("symbol", "ts", "open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close", "adj_close")
_CHUNK_CELLS = 4_000_000


class _Panel:
    """Bars of many symbols as (bar number x symbol) arrays, plus the output layout.

    Output rows ("long" arrays) are in (ts, symbol) order; for a dense panel that order reads
    the (bar number x symbol) arrays row by row, which keeps the gathers cache friendly.
    """

    def __init__(self, bars: pd.DataFrame) -> None:
        codes, uniques = pd.factorize(bars["symbol"].astype(str), sort=True)
        ts = pd.DatetimeIndex(bars["ts"]).tz_convert("UTC").as_unit("ns")
        ts_codes, grid = pd.factorize(ts, sort=True)
        self.uniques = np.asarray(uniques, dtype=object)
        self.grid = pd.DatetimeIndex(grid)
        by_symbol = np.lexsort((ts_codes, codes))
        sym_sorted, ts_sorted = codes[by_symbol], ts_codes[by_symbol]
        same = (np.diff(sym_sorted) == 0) & (np.diff(ts_sorted) == 0)
        if same.any():
            j = int(np.argmax(same))
            raise FeatureInputError(
                f"bar frame has duplicate rows for {self.uniques[sym_sorted[j]]} "
                f"@ {self.grid[ts_sorted[j]]}"
            )
        starts = np.searchsorted(sym_sorted, np.arange(len(self.uniques)))
        self.row_pos = np.empty(len(codes), dtype=np.int64)  # bar number of each input row
        self.row_pos[by_symbol] = np.arange(len(codes)) - starts[sym_sorted]
        self.row_codes = codes.astype(np.int64)
        self.n_rows = int(self.row_pos.max()) + 1 if len(codes) else 0
        final = np.lexsort((codes, ts_codes))
        self.pos = self.row_pos[final]
        self.codes = self.row_codes[final]
        self.ts_codes = ts_codes[final].astype(np.int64)
        self.ts = self.grid[self.ts_codes]
        self.frame = bars

    def column(self, name: str) -> pd.DataFrame:
        """Return one bar column as a (bar number x symbol) float DataFrame."""
        panel = np.full((self.n_rows, len(self.uniques)), np.nan)
        panel[self.row_pos, self.row_codes] = self.frame[name].to_numpy(dtype=np.float64)
        return pd.DataFrame(panel, copy=False)

    def long(self, panel: pd.DataFrame) -> FloatArray:
        """Output-ordered values of a (bar number x symbol) panel."""
        out: FloatArray = panel.to_numpy(dtype=np.float64)[self.pos, self.codes]
        return out

    def cross_wide(self, long_values: FloatArray) -> FloatArray:
        """Place output-ordered values into a (timestamp x symbol) array for cross-sections."""
        wide = np.full((len(self.grid), len(self.uniques)), np.nan)
        wide[self.ts_codes, self.codes] = long_values
        return wide


def _validate(bars: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED if c not in bars.columns]
    if missing:
        raise FeatureInputError(f"bar frame lacks column(s) {missing}")
    if "interval" in bars.columns and bars["interval"].nunique() > 1:
        raise FeatureInputError(
            f"bar frame mixes intervals {sorted(bars['interval'].unique())}; compute one at a time"
        )
    if not isinstance(bars["ts"].dtype, pd.DatetimeTZDtype):
        raise FeatureInputError("bar column 'ts' must be tz-aware (UTC)")
    for col in [c for c in _PRICES if c in bars.columns]:
        values = bars[col].to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(values) & (values > 0.0))
        if bad.any():
            row = bars.iloc[int(np.argmax(bad))]
            raise FeatureInputError(
                f"bar {row['symbol']} @ {row['ts']}: {col}={row[col]!r} is not a positive number"
            )
    volume = bars["volume"].to_numpy(dtype=np.float64)
    if not (np.isfinite(volume) & (volume >= 0.0)).all():
        raise FeatureInputError("bar column 'volume' has negative or non-finite values")


class _Cache:
    """Lazily computed shared panels (prices, log prices, 1-bar returns)."""

    def __init__(self, panel: _Panel) -> None:
        self.panel = panel
        self._cache: dict[str, pd.DataFrame] = {}

    def get(self, key: str) -> pd.DataFrame:
        if key not in self._cache:
            self._cache[key] = self._build(key)
        return self._cache[key]

    def _build(self, key: str) -> pd.DataFrame:
        if key == "price":
            has_adj = "adj_close" in self.panel.frame.columns
            return self.panel.column("adj_close" if has_adj else "close")
        if key == "log_price":
            return np.log(self.get("price"))
        if key == "ret":
            return self.get("log_price").diff()
        return self.panel.column(key)


def _rolling_mean_std(x: pd.DataFrame, window: int, std: bool) -> tuple[FloatArray, FloatArray]:
    """Trailing-window mean and population std per cell, two-pass per window (NaN warm-up).

    pandas' online rolling variance drifts (~1e-10 relative on 5000 index levels) and loops over
    columns in Python, so windows are materialised with ``sliding_window_view`` in row chunks.
    """
    values = x.to_numpy(dtype=np.float64)
    mean = np.full(values.shape, np.nan)
    sd = np.full(values.shape, np.nan)
    n_rows, n_cols = values.shape
    if n_rows < window:
        return mean, sd
    views = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)
    step = max(1, _CHUNK_CELLS // max(1, n_cols * window))
    for lo in range(0, views.shape[0], step):
        block = views[lo : lo + step]
        rows = slice(lo + window - 1, lo + window - 1 + block.shape[0])
        m = block.mean(axis=-1)
        mean[rows] = m
        if std:
            sd[rows] = np.sqrt(((block - m[..., None]) ** 2).mean(axis=-1))
    return mean, sd


def _rolling_z(x: pd.DataFrame, window: int) -> pd.DataFrame:
    mean, std = _rolling_mean_std(x, window, std=True)
    values = x.to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > FLAT_RTOL * np.abs(mean), (values - mean) / std, np.nan)
    return pd.DataFrame(z, copy=False)


def _realized_vol(c: _Cache, fdef: FeatureDef) -> pd.DataFrame:
    window = fdef.int_param("window")
    estimator = fdef.str_param("estimator")
    if estimator == "close_to_close":
        per_bar = c.get("ret") ** 2
    else:
        hl = np.log(c.get("high") / c.get("low")) ** 2
        if estimator == "parkinson":
            per_bar = hl / (4.0 * LN2)
        else:
            per_bar = 0.5 * hl - GK_OC_WEIGHT * np.log(c.get("close") / c.get("open")) ** 2
    mean, _ = _rolling_mean_std(per_bar, window, std=False)
    return pd.DataFrame(np.sqrt(np.maximum(mean, 0.0)), copy=False)


def _ema(x: pd.DataFrame, alpha: float, first: int = 0) -> pd.DataFrame:
    """Recursive EMA down the bar axis, seeded with row ``first`` (rows before it NaN).

    ``y[first] = x[first]``, ``y[i] = (1 - alpha) * y[i-1] + alpha * x[i]`` (pandas'
    ``ewm(adjust=False)``); one vectorized step per bar across all symbols.
    """
    values = x.to_numpy(dtype=np.float64)
    out = np.full(values.shape, np.nan)
    if values.shape[0] > first:
        out[first] = values[first]
        keep = 1.0 - alpha
        for i in range(first + 1, values.shape[0]):
            out[i] = keep * out[i - 1] + alpha * values[i]
    return pd.DataFrame(out, copy=False)


def _wilder(x: pd.DataFrame, window: int) -> pd.DataFrame:
    seeded = x.copy()
    if len(x) > window:
        seeded.iloc[window] = x.iloc[1 : window + 1].mean(skipna=False)
    return _ema(seeded, 1.0 / window, first=window)


def _rsi(c: _Cache, fdef: FeatureDef) -> pd.DataFrame:
    window = fdef.int_param("window")
    ret = c.get("ret")
    gain = _wilder(ret.clip(lower=0.0), window)
    loss = _wilder((-ret).clip(lower=0.0), window)
    total = gain + loss
    rsi = (100.0 * gain / total).where(total > 0.0, 50.0)
    return rsi.where(total.notna())


def _macd(c: _Cache, fdef: FeatureDef) -> pd.DataFrame:
    lp = c.get("log_price")
    fast = _ema(lp, 2.0 / (fdef.int_param("fast") + 1.0))
    slow = _ema(lp, 2.0 / (fdef.int_param("slow") + 1.0))
    line = fast - slow
    output = fdef.str_param("output")
    if output == "line":
        out = line
    else:
        signal = _ema(line, 2.0 / (fdef.int_param("signal") + 1.0))
        out = signal if output == "signal" else line - signal
    out = out.copy()
    out.iloc[: fdef.warmup_bars() - 1] = np.nan
    return out


def _log_return(c: _Cache, fdef: FeatureDef) -> pd.DataFrame:
    lp = c.get("log_price")
    return lp - lp.shift(fdef.int_param("window"))


def _momentum(c: _Cache, fdef: FeatureDef) -> pd.DataFrame:
    lp = c.get("log_price")
    return lp.shift(fdef.int_param("skip")) - lp.shift(fdef.int_param("long"))


def _bollinger(c: _Cache, fdef: FeatureDef) -> pd.DataFrame:
    return _rolling_z(c.get("price"), fdef.int_param("window"))


def _volume_z(c: _Cache, fdef: FeatureDef) -> pd.DataFrame:
    volume = c.get("volume")
    if fdef.str_param("transform") == "log1p":
        volume = np.log1p(volume)
    return _rolling_z(volume, fdef.int_param("window"))


_TIME_SERIES: dict[str, Callable[[_Cache, FeatureDef], pd.DataFrame]] = {
    "log_return": _log_return,
    "momentum": _momentum,
    "realized_vol": _realized_vol,
    "rsi": _rsi,
    "macd": _macd,
    "bollinger_z": _bollinger,
    "volume_z": _volume_z,
}


def _calendar(ts: pd.DatetimeIndex, fdef: FeatureDef) -> FloatArray:
    field = fdef.str_param("field")
    if field == "day_of_week":
        phase = ts.day_of_week.to_numpy() / 7.0
    elif field == "month":
        phase = (ts.month.to_numpy() - 1) / 12.0
    else:
        phase = ts.hour.to_numpy() / 24.0
    angle = 2.0 * math.pi * phase.astype(np.float64)
    out: FloatArray = np.sin(angle) if fdef.str_param("component") == "sin" else np.cos(angle)
    return out


def _cross_sectional(panel: _Panel, base_long: FloatArray, fdef: FeatureDef) -> FloatArray:
    wide = panel.cross_wide(base_long)
    valid = ~np.isnan(wide)
    count = valid.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if fdef.kind == "cs_rank":
            rank = pd.DataFrame(wide, copy=False).rank(axis=1, method="average").to_numpy()
            out = (rank - 1.0) / (count - 1.0)
        else:
            mean = np.where(count > 0, np.nansum(wide, axis=1, keepdims=True) / count, np.nan)
            dev = np.where(valid, wide - mean, 0.0)
            std = np.sqrt((dev * dev).sum(axis=1, keepdims=True) / count)
            out = np.where(std > FLAT_RTOL * np.abs(mean), (wide - mean) / std, np.nan)
    out = np.where(valid & (count >= fdef.int_param("min_count")), out, np.nan)
    result: FloatArray = out[panel.ts_codes, panel.codes]
    return result


def compute_features(bars: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Compute every feature of ``spec`` for every bar of every symbol in ``bars``.

    Args:
        bars: a canonical bar frame (``rrr_live.domain.bars``) of one interval; needs
            ``symbol, ts, open, high, low, close, volume``; returns use ``adj_close`` when the
            column is present, else ``close``. Rows may come in any order.
        spec: the feature spec.

    Returns:
        A float64 frame indexed by the MultiIndex ``(ts, symbol)`` sorted by ts then symbol,
        one column per feature in spec order; NaN where a feature is still warming up.

    Raises:
        FeatureInputError: on a missing column, a non-positive price, a negative volume,
            a naive ``ts`` or duplicate ``(symbol, ts)`` rows.
    """
    _validate(bars)
    panel = _Panel(bars)
    cache = _Cache(panel)
    matrix = np.empty((len(spec.names), len(panel.pos)))  # one contiguous row per feature
    for col, fdef in enumerate(spec.features):
        if fdef.kind in _TIME_SERIES:
            matrix[col] = panel.long(_TIME_SERIES[fdef.kind](cache, fdef))
        elif fdef.kind == "calendar":
            matrix[col] = _calendar(panel.ts, fdef)
    for col, fdef in enumerate(spec.features):
        if fdef.cross_sectional:
            matrix[col] = _cross_sectional(panel, matrix[spec.index(fdef.str_param("base"))], fdef)
    index = pd.MultiIndex(
        levels=[panel.grid, pd.Index(panel.uniques, dtype=str)],
        codes=[panel.ts_codes, panel.codes],
        names=["ts", "symbol"],
        verify_integrity=False,
    )
    return pd.DataFrame(matrix.T, index=index, columns=list(spec.names), copy=False)
