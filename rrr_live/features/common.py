"""Small numeric rules shared by the batch and incremental executions (numpy only)."""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NS_PER_HOUR: Final[int] = 3_600_000_000_000
NS_PER_DAY: Final[int] = 24 * NS_PER_HOUR
LN2: Final[float] = math.log(2.0)
#: Garman-Klass weight of the open-to-close term, 2 ln 2 - 1.
GK_OC_WEIGHT: Final[float] = 2.0 * LN2 - 1.0
#: A window or cross-section whose std is at most this fraction of ``|mean|`` counts as
#: constant; its z-score is NaN (the same rule in both executions).
FLAT_RTOL: Final[float] = 1e-12


def safe_z(value: FloatArray, mean: FloatArray, std: FloatArray) -> FloatArray:
    """Return ``(value - mean) / std``, NaN where the std is zero or negligible against the mean."""
    flat = ~(std > FLAT_RTOL * np.abs(mean))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (value - mean) / std
    return np.where(flat, np.nan, z)


def rsi_from_averages(avg_gain: FloatArray, avg_loss: FloatArray) -> FloatArray:
    """Wilder's RSI in [0, 100] from smoothed gains and losses; 50 when both are zero."""
    total = avg_gain + avg_loss
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100.0 * avg_gain / total
    return np.where(total > 0.0, rsi, np.where(np.isnan(total), np.nan, 50.0))


def calendar_values(ts_ns: IntArray, field: str, component: str) -> FloatArray:
    """Cyclic calendar encoding of bar open times (UTC) as sin or cos.

    ``day_of_week`` uses Monday=0 over a period of 7, ``month`` uses January=0 over 12 and
    ``hour_of_day`` uses 0..23 over 24.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    if field == "day_of_week":
        phase = ((ts // NS_PER_DAY) + 3) % 7 / 7.0  # 1970-01-01 was a Thursday
    elif field == "month":
        months = ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
        phase = (months % 12) / 12.0
    elif field == "hour_of_day":
        phase = ((ts % NS_PER_DAY) // NS_PER_HOUR) / 24.0
    else:
        raise ValueError(f"unknown calendar field {field!r}")
    angle = 2.0 * math.pi * phase
    out: FloatArray = np.sin(angle) if component == "sin" else np.cos(angle)
    return out
