"""The one rule that turns report values into strict JSON (no NaN/Infinity, no numpy types)."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np

# The largest finite magnitude: an infinite value keeps its sign and still compares right
# against a threshold when the JSON is read back.
_HUGE = 1e308


def json_safe(value: Any) -> Any:
    """Return ``value`` as plain JSON-safe Python, recursively.

    Mappings get string keys; tuples, lists and arrays become lists; numpy scalars become
    Python scalars; dates and timestamps become ISO strings; NaN becomes ``None`` and
    ``±inf`` becomes ``±1e308``. Anything else is returned unchanged.

    Args:
        value: A scalar, mapping, sequence or numpy array.

    Returns:
        A value ``json.dumps(..., allow_nan=False)`` accepts.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, datetime | date):
        return None if value != value else value.isoformat()  # NaT is not equal to itself
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else math.copysign(_HUGE, value)
    return value
