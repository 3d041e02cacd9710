"""Incremental engine: exact values against hand computations, input validation, bookkeeping."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

from rrr_live.features import (
    FeatureBar,
    FeatureDef,
    FeatureEngine,
    FeatureInputError,
    FeatureSpec,
    default_spec,
)

DAY = 86_400_000_000_000
f = FeatureDef.of


def _bars(closes: list[float], start: datetime) -> list[FeatureBar]:
    t0 = int(start.timestamp()) * 1_000_000_000
    return [
        FeatureBar(t0 + k * DAY, c * 0.99, c * 1.02, c * 0.97, c, 1000.0 + 10 * k)
        for k, c in enumerate(closes)
    ]


CLOSES = [100.0, 101.0, 99.5, 102.0, 103.5, 101.0, 100.0, 104.0, 106.0, 105.0, 107.5]


def _run(spec: FeatureSpec, closes: list[float]) -> np.ndarray:
    eng = FeatureEngine(spec)
    rows = []
    for bar in _bars(closes, datetime(2024, 1, 1, tzinfo=UTC)):
        eng.update("A", bar)
        rows.append(eng.features(["A"])[0])
    return np.array(rows)


def test_wilder_rsi_matches_a_hand_loop() -> None:
    n = 3
    out = _run(FeatureSpec("t", (f("rsi", "rsi", window=n),)), CLOSES)[:, 0]
    diffs = np.diff(np.log(CLOSES))
    gains, losses = np.maximum(diffs, 0), np.maximum(-diffs, 0)
    ag, al = gains[:n].mean(), losses[:n].mean()
    expected = [math.nan] * n + [100 * ag / (ag + al)]
    for g, lo in zip(gains[n:], losses[n:], strict=True):
        ag, al = (ag * (n - 1) + g) / n, (al * (n - 1) + lo) / n
        expected.append(100 * ag / (ag + al))
    np.testing.assert_allclose(out, expected, rtol=1e-12, equal_nan=True)


def test_macd_realized_vol_and_returns_match_hand_formulas() -> None:
    spec = FeatureSpec(
        "t",
        (
            f("macd", "macd", fast=2, slow=4, signal=3, output="hist"),
            f("pk", "realized_vol", window=3, estimator="parkinson"),
            f("cc", "realized_vol", window=3, estimator="close_to_close"),
            f("r2", "log_return", window=2),
            f("mom", "momentum", long=5, skip=2),
        ),
    )
    out = _run(spec, CLOSES)
    lp = np.log(CLOSES)
    fast = slow = lp[0]
    sig = 0.0
    hist = []
    for x in lp:
        fast, slow = fast + (x - fast) * 2 / 3, slow + (x - slow) * 2 / 5
        line = fast - slow
        sig = line if not hist else sig + (line - sig) * 2 / 4
        hist.append(line - sig)
    np.testing.assert_allclose(out[5:, 0], hist[5:], rtol=1e-12, atol=1e-15)
    assert np.isnan(out[:5, 0]).all()  # warm-up slow + signal - 1 = 6 bars
    pk = math.sqrt(math.log(1.02 / 0.97) ** 2 / (4 * math.log(2)))
    np.testing.assert_allclose(out[2:, 1], pk, rtol=1e-12)
    r = np.diff(lp)
    cc = [math.sqrt(np.mean(r[k - 3 : k] ** 2)) for k in range(3, len(r) + 1)]
    np.testing.assert_allclose(out[3:, 2], cc, rtol=1e-12)
    np.testing.assert_allclose(out[2:, 3], lp[2:] - lp[:-2], rtol=1e-12)
    np.testing.assert_allclose(out[5:, 4], lp[3:-2] - lp[:-5], rtol=1e-12)
    assert np.isnan(out[:5, 4]).all()


def test_calendar_encoding_on_known_dates() -> None:
    spec = FeatureSpec(
        "t",
        (
            f("dow_sin", "calendar", field="day_of_week", component="sin"),
            f("dow_cos", "calendar", field="day_of_week", component="cos"),
            f("mon_cos", "calendar", field="month", component="cos"),
            f("hour_sin", "calendar", field="hour_of_day", component="sin"),
        ),
    )
    eng = FeatureEngine(spec)
    monday_jan = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 10**9
    eng.update("A", FeatureBar(monday_jan, 1, 1, 1, 1, 0))
    np.testing.assert_allclose(eng.features(["A"])[0], [0.0, 1.0, 1.0, 0.0], atol=1e-15)
    thursday_jul_6h = int(datetime(2024, 7, 4, 6, tzinfo=UTC).timestamp()) * 10**9
    eng.update("A", FeatureBar(thursday_jul_6h, 1, 1, 1, 1, 0))
    np.testing.assert_allclose(
        eng.features(["A"])[0],
        [math.sin(2 * math.pi * 3 / 7), math.cos(2 * math.pi * 3 / 7), -1.0, 1.0],
        atol=1e-15,
    )


def test_cross_sectional_rank_and_z_with_ties_and_nan() -> None:
    spec = FeatureSpec(
        "t",
        (
            f("r", "log_return", window=1),
            f("rank", "cs_rank", base="r"),
            f("z", "cs_zscore", base="r", min_count=3),
        ),
    )
    eng = FeatureEngine(spec)
    eng.update_batch(["a", "b", "c", "d"], ts_ns=[0] * 4, open_=[1] * 4, high=[1] * 4,
                     low=[1] * 4, close=[1] * 4, volume=[0] * 4)  # fmt: skip
    closes = [2.0, 1.0, 2.0, 4.0]
    eng.update_batch(["a", "b", "c", "d"], ts_ns=[1] * 4, open_=closes, high=closes,
                     low=closes, close=closes, volume=[0] * 4)  # fmt: skip
    eng.update("e", FeatureBar(1, 3.0, 3.0, 3.0, 3.0, 0.0))  # first bar: r is NaN
    out = eng.features(["a", "b", "c", "d", "e"])
    np.testing.assert_allclose(out[:, 1], [0.5, 0.0, 0.5, 1.0, math.nan])
    r = np.log(closes)
    np.testing.assert_allclose(out[:4, 2], (r - r.mean()) / r.std())
    assert math.isnan(out[4, 2])
    assert np.isnan(eng.features(["a", "b"])[:, 2]).all()  # 2 < min_count


def test_adj_close_is_used_and_nan_falls_back_to_close() -> None:
    spec = FeatureSpec("t", (f("r", "log_return", window=1),))
    eng = FeatureEngine(spec)
    eng.update("A", FeatureBar(0, 10, 10, 10, 10, 1, adj_close=5.0))
    eng.update("A", FeatureBar(1, 10, 10, 10, 10, 1, adj_close=5.5))
    assert eng.features(["A"])[0, 0] == pytest.approx(math.log(1.1))
    eng.update("A", FeatureBar(2, 11, 11, 11, 11, 1))  # adj_close NaN -> close
    assert eng.features(["A"])[0, 0] == pytest.approx(math.log(11 / 5.5))


def test_invalid_input_is_rejected_and_state_is_unchanged() -> None:
    eng = FeatureEngine(default_spec(), capacity=1)
    eng.update("A", FeatureBar(10, 1, 1, 1, 1, 0))
    before = eng.features(["A"]).copy()
    with pytest.raises(FeatureInputError, match="not newer"):
        eng.update("A", FeatureBar(10, 1, 1, 1, 1, 0))
    with pytest.raises(FeatureInputError, match="positive"):
        eng.update("A", FeatureBar(11, 1, 1, 0.0, 1, 0))
    with pytest.raises(FeatureInputError, match="positive"):
        eng.update("A", FeatureBar(11, 1, 1, 1, 1, -1))
    with pytest.raises(FeatureInputError, match="twice"):
        eng.update_batch(["B", "B"], ts_ns=[1, 2], open_=[1, 1], high=[1, 1], low=[1, 1],
                         close=[1, 1], volume=[0, 0])  # fmt: skip
    with pytest.raises(FeatureInputError, match="values for"):
        eng.update_batch(["C"], ts_ns=[1], open_=[1, 1], high=[1], low=[1], close=[1], volume=[0])
    with pytest.raises(FeatureInputError, match="out of range"):
        eng.features(np.array([99]))
    np.testing.assert_array_equal(eng.features(["A"]), before)
    assert eng.bars_seen(["A", "B", "C"]).tolist() == [1, 0, 0]


def test_engine_grows_and_single_updates_equal_batch_updates() -> None:
    spec = default_spec()
    rng = np.random.default_rng(1)
    n, steps = 37, 60
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (steps, n)), axis=0))
    one, many = FeatureEngine(spec, capacity=1), FeatureEngine(spec)
    names = [f"X{k}" for k in range(n)]
    for t in range(steps):
        p = prices[t]
        many.update_batch(names, ts_ns=np.full(n, t), open_=p, high=p * 1.01, low=p * 0.98,
                          close=p, volume=np.full(n, 5.0 + t))  # fmt: skip
        for k in range(n):
            one.update(names[k], FeatureBar(t, p[k], p[k] * 1.01, p[k] * 0.98, p[k], 5.0 + t))
    assert one.symbols == tuple(names)
    np.testing.assert_array_equal(one.features(names), many.features(names))
    ids = many.symbol_ids(names[::-1])
    np.testing.assert_array_equal(many.features(ids), many.features(names[::-1]))


def test_importing_the_live_feature_package_stays_light() -> None:
    code = (
        "import sys, rrr_live.features\n"
        "heavy = {'pandas', 'scipy', 'torch', 'dagster', 'rrr_pipelines'} & set(sys.modules)\n"
        "print(','.join(sorted(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert done.stdout.strip() == "", f"rrr_live.features imports {done.stdout.strip()}"
