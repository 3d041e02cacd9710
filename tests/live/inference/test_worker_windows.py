"""Inference serves a features-only baseline and window models of any length <= the ring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pytest

from rrr_live.inference.lifecycle import RefusedError, RunningConfig, Served, check_compatible
from rrr_live.inference.worker import _one
from rrr_live.models.ensemble import Ensemble
from rrr_live.models.window import RingWindow
from tests.live.models.conftest import N_FEATURES, WINDOW, make_ensemble


@dataclass
class _Model:
    """The three things the inference step reads of a loaded model, over a real ensemble."""

    ensemble: Ensemble
    live: tuple[str, ...]
    manifest: Any = None

    @property
    def window_length(self) -> int:
        return self.ensemble.window

    @property
    def needs_windows(self) -> bool:
        return any(self.ensemble.member(n).input_kind == "window" for n in self.live)

    def predict(self, features: Any, windows: Any = None) -> Any:
        return self.ensemble.predict(features, windows, members=self.live)


def _served(live: tuple[str, ...]) -> Served:
    return Served("7", cast(Any, _Model(make_ensemble(3), live)))


def test_a_features_only_model_scores_finite_rows_and_leaves_the_rest_nan() -> None:
    served = _served(("mlp",))
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(4, N_FEATURES)).astype(np.float32)
    feats[1, 0] = np.nan  # a symbol still warming up
    ring = rng.normal(size=(4, 1, N_FEATURES)).astype(np.float32)  # a 1-bar ring: ignored
    out = _one(served, feats, ring)
    assert out is not None and np.isnan(out[1]) and np.isfinite(out[[0, 2, 3]]).all()
    alone = served.model.predict(feats[[0, 2, 3]], None)
    np.testing.assert_array_equal(out[[0, 2, 3]], alone)


def test_a_window_model_reads_the_last_t_bars_of_a_longer_ring() -> None:
    served = _served(("lstm", "tcn"))
    rng = np.random.default_rng(1)
    ring = rng.normal(size=(3, WINDOW + 5, N_FEATURES)).astype(np.float32)
    out = _one(served, ring[:, -1], ring)
    np.testing.assert_array_equal(out, served.model.predict(None, ring[:, -WINDOW:]))


def test_readiness_counts_the_model_window_not_the_ring() -> None:
    ring = RingWindow(2, 5, 1)
    for _ in range(3):
        ring.push(np.ones((1, 1)), [0])
    assert ring.ready([0, 1], 3).tolist() == [True, False]
    assert ring.ready([0, 1]).tolist() == [False, False]  # a full 5-bar ring is not there yet


def test_a_model_longer_than_the_runner_window_is_refused() -> None:
    model = cast(Any, _Model(make_ensemble(0), ("lstm",)))
    config = RunningConfig("fp", ("f",), ("A",), "1m", max_window=WINDOW - 1)
    with pytest.raises(RefusedError) as err:
        check_compatible(model, config)
    assert err.value.reason == "window"
