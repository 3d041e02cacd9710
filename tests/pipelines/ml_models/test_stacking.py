from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_pipelines.lib.ml.ensemble import StackingError, fit_stacking_weights


def test_two_member_interior_solution_matches_closed_form():
    rng = np.random.default_rng(1)
    n = 500
    p = rng.normal(size=(n, 2))
    y = 0.3 * p[:, 0] + 0.7 * p[:, 1] + 0.1 * rng.normal(size=n)
    res = fit_stacking_weights(p, y, ["a", "b"], ridge=0.0)
    # minimise |y - p1 - w (p0 - p1)|^2 over w (sum-to-one substituted)
    d = p[:, 0] - p[:, 1]
    w0 = float(d @ (y - p[:, 1]) / (d @ d))
    assert res.weights["a"] == pytest.approx(w0, abs=1e-9)
    assert res.weights["b"] == pytest.approx(1 - w0, abs=1e-9)


def test_pure_noise_member_gets_near_zero_weight():
    rng = np.random.default_rng(2)
    n = 3000
    signal = rng.normal(size=n) * 0.01
    y = signal + rng.normal(size=n) * 0.02
    good = signal + rng.normal(size=n) * 0.005
    weaker = 0.5 * signal + rng.normal(size=n) * 0.005
    noise = rng.normal(size=n) * 0.01
    res = fit_stacking_weights(np.c_[good, weaker, noise], y, ["good", "weaker", "noise"])
    assert res.weights["noise"] < 0.03
    assert res.weights["good"] > 0.5
    assert sum(res.weights.values()) == pytest.approx(1.0)
    assert res.mse <= min(res.member_mse.values()) + 1e-12


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 5))
def test_solution_is_optimal_on_the_simplex(seed, k):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(60, k))
    y = rng.normal(size=60)
    res = fit_stacking_weights(p, y, [f"m{i}" for i in range(k)], ridge=0.0)
    w = np.array(list(res.weights.values()))
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    for cand in rng.dirichlet(np.ones(k), size=200):
        assert res.mse <= np.mean((y - p @ cand) ** 2) + 1e-12


def test_rows_with_missing_predictions_are_dropped_and_bad_input_refused():
    p = np.array([[1.0, np.nan], [2.0, 2.0], [3.0, 3.1], [4.0, 3.9]])
    assert fit_stacking_weights(p, np.arange(1.0, 5.0), ["a", "b"]).n_rows == 3
    with pytest.raises(StackingError, match="usable"):
        fit_stacking_weights(p[:2], np.array([1.0, 2.0]), ["a", "b"])
    with pytest.raises(StackingError, match="disagree"):
        fit_stacking_weights(p, np.arange(3.0), ["a", "b"])
