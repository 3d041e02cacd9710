from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_live.models import RingWindow
from rrr_pipelines.lib.ml.lightning_modules import TrainingDataError, WindowDataset, window_rows


def _reference(ts, symbols, window):
    out = np.full((len(ts), window), -1)
    for i in range(len(ts)):
        past = [j for j in range(len(ts)) if symbols[j] == symbols[i] and ts[j] <= ts[i]]
        past.sort(key=lambda j: ts[j])
        if len(past) >= window:
            out[i] = past[-window:]
    return out


@settings(max_examples=60, deadline=None)
@given(
    n_sym=st.integers(1, 3),
    length=st.integers(1, 12),
    window=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_window_rows_use_only_the_past_of_the_same_symbol(n_sym, length, window, seed):
    rng = np.random.default_rng(seed)
    keys = [(s, t) for s in range(n_sym) for t in range(length) if rng.random() < 0.8]
    if not keys:
        return
    perm = rng.permutation(len(keys))  # rows arrive in any order
    symbols = np.array([f"S{keys[i][0]}" for i in perm])
    ts = np.array([keys[i][1] * 10 + 3 for i in perm], dtype=np.int64)
    got = window_rows(ts, symbols, window)
    np.testing.assert_array_equal(got, _reference(ts, symbols, window))
    full = got[:, 0] >= 0
    assert np.all(ts[got[full]] <= ts[full, None])
    assert np.all(symbols[got[full]] == symbols[full, None])


def test_duplicate_keys_are_refused():
    with pytest.raises(TrainingDataError, match="duplicate"):
        window_rows(np.array([1, 1]), np.array(["A", "A"]), 1)


def test_training_windows_equal_ring_buffer_windows():
    """The window a member trains on equals the one the live ring buffer serves."""
    rng = np.random.default_rng(0)
    n_sym, steps, window, n_feat = 3, 15, 4, 2
    rows = [(s, t) for t in range(steps) for s in range(n_sym) if rng.random() < 0.85]
    x = rng.normal(size=(len(rows), n_feat)).astype(np.float32)
    symbols = np.array([f"S{s}" for s, _ in rows])
    ts = np.array([t for _, t in rows], dtype=np.int64)
    wins = window_rows(ts, symbols, window)
    full = np.flatnonzero(wins[:, 0] >= 0)
    ds = WindowDataset(torch.from_numpy(x), torch.zeros(len(rows)), full, wins)
    batch_x, _ = ds.__getitems__(list(range(len(full))))
    ring = RingWindow(n_sym, window, n_feat)
    served = {}
    for i, (s, _) in enumerate(rows):  # rows are already in time order
        ring.push(x[i : i + 1], [s])
        if ring.ready([s])[0]:
            served[i] = ring.windows([s])[0]
    assert sorted(served) == full.tolist()
    for k, i in enumerate(full):
        np.testing.assert_array_equal(batch_x[k].numpy(), served[i])
