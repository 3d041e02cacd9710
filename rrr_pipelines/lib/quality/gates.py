"""Row and sequence gates on a canonical bar frame (pure pandas, no Dagster).

Every gate takes a bar frame (``rrr_live.domain.bars``) in any row order and returns a
:class:`~rrr_pipelines.lib.quality.result.CheckResult` whose offending rows carry the row's
position in the frame that was passed in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rrr_live.domain.bars import PRICE_COLUMNS
from rrr_pipelines.lib.quality.result import MAX_OFFENDING_ROWS, CheckResult, offending_frame

OHLCV_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")

# Step-change limits for |close / prev_close - 1| (Qlib's health check uses 0.5 for daily stock
# prices; broad indices move less, so 0.3 for daily bars; shorter bars get tighter limits).
JUMP_THRESHOLDS: dict[str, float] = {
    "1d": 0.30,
    "1h": 0.15,
    "15m": 0.10,
    "5m": 0.10,
    "1m": 0.08,
    "5s": 0.05,
    "1s": 0.05,
}
# 24/7 venues (crypto) move more per bar than broad equity indices.
ALWAYS_OPEN_JUMP_FACTOR = 5.0 / 3.0


def default_jump_threshold(interval: str, calendar: str = "XNYS") -> float:
    """Return the step-change limit for ``interval`` bars on ``calendar``.

    0.3 for daily bars on an exchange calendar, 0.5 for daily bars on a 24/7 venue.

    Args:
        interval: Bar interval.
        calendar: ``"24/7"`` or an exchange-calendars name.
    """
    base = JUMP_THRESHOLDS.get(interval, 0.3)
    return base * ALWAYS_OPEN_JUMP_FACTOR if calendar == "24/7" else base


def _missing_columns(bars: pd.DataFrame, needed: tuple[str, ...]) -> list[str]:
    return [c for c in needed if c not in bars.columns]


def _schema_failure(name: str, bars: pd.DataFrame, missing: list[str]) -> CheckResult:
    return CheckResult(
        name=name,
        passed=False,
        observed={"missing_columns": missing, "rows_checked": len(bars)},
        thresholds={"missing_columns": []},
        description="frame lacks columns the gate needs",
    )


def check_not_null(bars: pd.DataFrame) -> CheckResult:
    """Every OHLCV value is present (no null, NaN or infinite value).

    Args:
        bars: Canonical bar frame.
    """
    name = "bars_not_null"
    missing = _missing_columns(bars, OHLCV_COLUMNS)
    if missing:
        return _schema_failure(name, bars, missing)
    values = bars[list(OHLCV_COLUMNS)].astype("float64")
    bad_cells = ~np.isfinite(values.to_numpy())
    mask = pd.Series(bad_cells.any(axis=1), index=bars.index)
    offending = offending_frame(bars, mask, list(OHLCV_COLUMNS))
    if not offending.empty:
        rows = bad_cells[mask.to_numpy()][:MAX_OFFENDING_ROWS]
        offending.insert(
            3, "columns", [",".join(np.array(OHLCV_COLUMNS)[r].tolist()) for r in rows]
        )
    per_column = dict(zip(OHLCV_COLUMNS, bad_cells.sum(axis=0).tolist(), strict=True))
    return CheckResult(
        name=name,
        passed=not mask.any(),
        observed={
            "null_rows": int(mask.sum()),
            "nulls_by_column": per_column,
            "rows_checked": len(bars),
        },
        thresholds={"null_rows": 0},
        offending=offending,
        description="open, high, low, close, adj_close, volume are never null/NaN/inf",
    )


def check_ohlc_consistent(bars: pd.DataFrame) -> CheckResult:
    """``high >= max(open, close)``, ``low <= min(open, close)`` and ``high >= low``.

    Args:
        bars: Canonical bar frame.
    """
    name = "bars_ohlc_consistent"
    missing = _missing_columns(bars, ("open", "high", "low", "close"))
    if missing:
        return _schema_failure(name, bars, missing)
    o, h, lo, c = (bars[k] for k in ("open", "high", "low", "close"))
    high_bad = h < np.maximum(o, c)
    low_bad = lo > np.minimum(o, c)
    inverted = h < lo
    mask = high_bad | low_bad | inverted
    offending = offending_frame(bars, mask, ["open", "high", "low", "close"])
    if not offending.empty:
        pos = offending["row"].to_numpy()
        problems = []
        for hb, lb, inv in zip(
            high_bad.to_numpy()[pos], low_bad.to_numpy()[pos], inverted.to_numpy()[pos], strict=True
        ):
            parts = [("high<low" if inv else "")]
            parts += ["high<max(open,close)" if hb else "", "low>min(open,close)" if lb else ""]
            problems.append(";".join(p for p in parts if p))
        offending.insert(3, "problem", problems)
    return CheckResult(
        name=name,
        passed=not mask.any(),
        observed={
            "violations": int(mask.sum()),
            "high_below_open_or_close": int(high_bad.sum()),
            "low_above_open_or_close": int(low_bad.sum()),
            "high_below_low": int(inverted.sum()),
            "rows_checked": len(bars),
        },
        thresholds={"violations": 0},
        offending=offending,
        description="high >= max(open, close), low <= min(open, close), high >= low",
    )


def check_positive_prices(bars: pd.DataFrame) -> CheckResult:
    """Every price (open, high, low, close, adj_close) is strictly positive.

    Args:
        bars: Canonical bar frame.
    """
    name = "bars_positive_prices"
    missing = _missing_columns(bars, PRICE_COLUMNS)
    if missing:
        return _schema_failure(name, bars, missing)
    bad = (bars[list(PRICE_COLUMNS)] <= 0).any(axis=1)  # NaN is the not-null gate's business
    minimum = bars[list(PRICE_COLUMNS)].min().min()
    return CheckResult(
        name=name,
        passed=not bad.any(),
        observed={
            "violations": int(bad.sum()),
            "min_price": float(minimum) if len(bars) else None,
            "rows_checked": len(bars),
        },
        thresholds={"min_price_exclusive": 0.0},
        offending=offending_frame(bars, bad, list(PRICE_COLUMNS)),
        description="all prices > 0",
    )


def check_volume_non_negative(bars: pd.DataFrame) -> CheckResult:
    """Volume is never negative (zero is allowed: quiet bars and some index feeds).

    Args:
        bars: Canonical bar frame.
    """
    name = "bars_volume_non_negative"
    if "volume" not in bars.columns:
        return _schema_failure(name, bars, ["volume"])
    bad = bars["volume"] < 0
    return CheckResult(
        name=name,
        passed=not bad.any(),
        observed={
            "violations": int(bad.sum()),
            "min_volume": float(bars["volume"].min()) if len(bars) else None,
            "rows_checked": len(bars),
        },
        thresholds={"min_volume": 0.0},
        offending=offending_frame(bars, bad, ["volume"]),
        description="volume >= 0",
    )


def check_unique_keys(bars: pd.DataFrame) -> CheckResult:
    """No two bars share (source, symbol, interval, ts); every copy of a duplicate is named.

    Args:
        bars: Canonical bar frame.
    """
    name = "bars_unique_keys"
    key = [c for c in ("source", "symbol", "interval", "ts") if c in bars.columns]
    if "symbol" not in key or "ts" not in key:
        return _schema_failure(name, bars, _missing_columns(bars, ("symbol", "ts")))
    dup = bars.duplicated(subset=key, keep=False)
    extra = int(bars.duplicated(subset=key, keep="first").sum())
    return CheckResult(
        name=name,
        passed=not dup.any(),
        observed={"duplicate_rows": extra, "rows_checked": len(bars)},
        thresholds={"duplicate_rows": 0},
        offending=offending_frame(bars, dup, ["close"]),
        description="(symbol, ts) is unique per source and interval",
    )


def check_monotonic_ts(bars: pd.DataFrame) -> CheckResult:
    """Within each symbol, timestamps never go backwards in row order.

    Equal consecutive timestamps are left to :func:`check_unique_keys`.

    Args:
        bars: Canonical bar frame.
    """
    name = "bars_monotonic_ts"
    if _missing_columns(bars, ("symbol", "ts")):
        return _schema_failure(name, bars, _missing_columns(bars, ("symbol", "ts")))
    prev = bars.groupby("symbol", sort=False)["ts"].shift(1)
    bad = (bars["ts"] < prev).fillna(False).astype(bool)
    offending = offending_frame(bars, bad, [])
    if not offending.empty:
        offending.insert(3, "previous_ts", prev[bad].iloc[:MAX_OFFENDING_ROWS].to_numpy())
    return CheckResult(
        name=name,
        passed=not bad.any(),
        observed={"backward_steps": int(bad.sum()), "rows_checked": len(bars)},
        thresholds={"backward_steps": 0},
        offending=offending,
        description="per symbol, ts is non-decreasing in row order",
    )


def check_jumps(
    bars: pd.DataFrame, threshold: float | None = None, column: str = "close"
) -> CheckResult:
    """No one-bar step change ``|x / prev_x - 1|`` larger than ``threshold`` per symbol.

    Bars are compared with the previous bar of the same symbol in time order, so a level shift
    (an unadjusted split, a wrong decimal) is flagged once, at the first shifted bar.

    Args:
        bars: Canonical bar frame.
        threshold: Largest allowed absolute relative change; default by interval for an
            exchange calendar (``JUMP_THRESHOLDS``; 0.3 for daily bars).
        column: Price column to compare (``close`` by default).
    """
    name = "bars_no_jumps"
    if _missing_columns(bars, ("symbol", "ts", column)):
        return _schema_failure(name, bars, _missing_columns(bars, ("symbol", "ts", column)))
    if threshold is None:
        interval = str(bars["interval"].iloc[0]) if "interval" in bars and len(bars) else "1d"
        threshold = default_jump_threshold(interval)
    codes = pd.factorize(bars["symbol"])[0]
    ts_ns = bars["ts"].dt.as_unit("ns").astype("int64").to_numpy()
    order = np.lexsort((ts_ns, codes))
    values = bars[column].to_numpy("float64")[order]
    prev = np.concatenate([[np.nan], values[:-1]])
    sorted_codes = codes[order]
    prev[1:][sorted_codes[1:] != sorted_codes[:-1]] = np.nan  # first bar of each symbol
    with np.errstate(divide="ignore", invalid="ignore"):
        change = values / prev - 1.0
    jump_sorted = np.abs(change) > threshold  # NaN compares False
    mask_np = np.zeros(len(bars), dtype=bool)
    mask_np[order[jump_sorted]] = True
    change_by_row = np.full(len(bars), np.nan)
    change_by_row[order] = change
    mask = pd.Series(mask_np, index=bars.index)
    offending = offending_frame(bars, mask, [column])
    if not offending.empty:
        pos = offending["row"].to_numpy()
        prev_by_row = np.full(len(bars), np.nan)
        prev_by_row[order] = prev
        offending.insert(3, f"prev_{column}", prev_by_row[pos])
        offending["change"] = change_by_row[pos]
    finite = change[np.isfinite(change)]
    return CheckResult(
        name=name,
        passed=not mask_np.any(),
        observed={
            "jumps": int(mask_np.sum()),
            "max_abs_change": float(np.abs(finite).max()) if finite.size else 0.0,
            "rows_checked": len(bars),
        },
        thresholds={"max_abs_change": float(threshold)},
        offending=offending,
        description=f"|{column}/prev_{column} - 1| <= threshold per symbol",
    )
