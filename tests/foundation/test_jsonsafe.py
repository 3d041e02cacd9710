"""The one JSON sanitiser: strict JSON out of numpy, pandas and non-finite report values."""

import json
import math

import numpy as np
import pandas as pd

from rrr_pipelines.lib.jsonsafe import json_safe


def test_json_safe_gives_strict_json_and_keeps_what_it_can() -> None:
    value = {
        1: (np.float64("nan"), float("-inf"), np.inf, np.int64(3), np.bool_(True)),
        "when": pd.Timestamp("2020-01-02 03:04", tz="UTC"),
        "missing": pd.NaT,
        "array": np.array([[1.5, 2.0]]),
        "text": "ok",
    }
    out = json.loads(json.dumps(json_safe(value), allow_nan=False))
    assert out == {
        "1": [None, -1e308, 1e308, 3, True],
        "when": "2020-01-02T03:04:00+00:00",
        "missing": None,
        "array": [[1.5, 2.0]],
        "text": "ok",
    }
    assert type(out["1"][3]) is int and type(out["1"][4]) is bool


def test_infinity_keeps_its_sign_and_order_against_thresholds() -> None:
    worst = json_safe(float("-inf"))
    assert worst < -1e300 and math.isfinite(worst)
    assert json_safe(float("inf")) > 1e300
