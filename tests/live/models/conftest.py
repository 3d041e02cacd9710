from __future__ import annotations

import numpy as np
import pytest
import torch

from rrr_live.models import Ensemble, Member, build_network

N_FEATURES = 5
WINDOW = 8
FEATURE_NAMES = tuple(f"f{i}" for i in range(N_FEATURES))

MEMBER_SPECS = [
    ("mlp", "mlp", {"hidden": 16, "layers": 2}, "return"),
    ("lstm", "lstm", {"hidden": 8}, "return"),
    ("tcn", "tcn", {"channels": 8, "levels": 3}, "return"),
    ("transformer", "transformer", {"d_model": 16, "heads": 2, "layers": 1, "ff": 16}, "return"),
    ("vol", "har_vol", {"return_index": 0, "lags": [1, 4, 8]}, "volatility"),
]


def make_ensemble(seed: int = 0, live: tuple[str, ...] = ()) -> Ensemble:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    members = tuple(
        Member(
            name,
            arch,
            hp,
            build_network(arch, hp, N_FEATURES, WINDOW),
            role,
            target_mean=float(rng.normal()) * 0.01,
            target_std=0.02,
        )
        for name, arch, hp, role in MEMBER_SPECS
    )
    weights = {"mlp": 0.4, "lstm": 0.3, "tcn": 0.2, "transformer": 0.1}
    return Ensemble(
        FEATURE_NAMES,
        WINDOW,
        rng.normal(size=N_FEATURES).astype(np.float32),
        (0.5 + rng.random(N_FEATURES)).astype(np.float32),
        members,
        weights,
        live_members=live,
    )


@pytest.fixture
def ensemble() -> Ensemble:
    return make_ensemble()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: one thread is faster and does not fight other processes for cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
