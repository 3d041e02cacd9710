from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from rrr_live.models import RingWindow
from rrr_live.models.errors import InferenceInputError
from tests.live.models.conftest import N_FEATURES, WINDOW, make_ensemble


def test_incremental_ring_buffer_matches_batch_windows():
    """Bars close at different times per symbol; served outputs equal batch-window outputs."""
    ens = make_ensemble(seed=3)
    rng = np.random.default_rng(11)
    n_symbols, steps = 6, 24
    closes = rng.random((steps, n_symbols)) < 0.7
    history: list[list[np.ndarray]] = [[] for _ in range(n_symbols)]
    ring = RingWindow(n_symbols, WINDOW, N_FEATURES)
    compared = 0
    for t in range(steps):
        rows = np.flatnonzero(closes[t])
        vals = rng.normal(size=(rows.size, N_FEATURES)).astype(np.float32) * 2 + 1
        ring.push(vals, rows)
        for r, v in zip(rows, vals, strict=True):
            history[r].append(v)
        ready = rows[ring.ready(rows)]
        if ready.size == 0:
            continue
        served = ens.predict(None, ring.windows(ready))
        served_vol = ens.predict_volatility(None, ring.windows(ready))
        # batch form: all windows of each symbol's full history, take the last one
        batch = np.stack(
            [sliding_window_view(np.stack(history[r]), WINDOW, axis=0)[-1].T for r in ready]
        )
        np.testing.assert_allclose(served, ens.predict(batch[:, -1], batch), atol=1e-6, rtol=0)
        np.testing.assert_allclose(served_vol, ens.predict_volatility(None, batch), atol=1e-6)
        compared += ready.size
    assert compared > 50


@settings(max_examples=50, deadline=None)
@given(
    window=st.integers(1, 6),
    pushes=st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=1, max_size=25),
)
def test_windows_are_the_last_t_pushed_vectors(window, pushes):
    ring = RingWindow(3, window, 2)
    seen: list[list[np.ndarray]] = [[], [], []]
    counter = 0.0
    for mask in pushes:
        rows = np.flatnonzero(mask)
        vals = np.array(
            [[counter + i, -(counter + i)] for i in range(rows.size)], np.float32
        ).reshape(rows.size, 2)
        counter += rows.size
        ring.push(vals, rows)
        for r, v in zip(rows, vals, strict=True):
            seen[r].append(v)
    out = ring.windows()
    for r in range(3):
        last = seen[r][-window:]
        assert ring.ready([r])[0] == (len(seen[r]) >= window)
        expected = np.zeros((window, 2), np.float32)
        if last:
            expected[window - len(last) :] = np.stack(last)
        np.testing.assert_array_equal(out[r], expected)


def test_reset_and_input_errors():
    ring = RingWindow(2, 3, 1)
    for v in range(4):
        ring.push(np.array([[v], [10 + v]], np.float32))
    np.testing.assert_array_equal(ring.windows([1])[0, :, 0], [11, 12, 13])
    ring.reset([1])
    assert ring.ready().tolist() == [True, False]
    np.testing.assert_array_equal(ring.windows([1])[0, :, 0], [0, 0, 0])
    with pytest.raises(InferenceInputError, match="twice"):
        ring.push(np.zeros((2, 1)), [0, 0])
    with pytest.raises(InferenceInputError, match="shape"):
        ring.push(np.zeros((1, 2)), [0])
    with pytest.raises(InferenceInputError, match="rows"):
        ring.windows([2])
    with pytest.raises(InferenceInputError, match="positive"):
        RingWindow(0, 3, 1)
