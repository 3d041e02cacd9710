"""The inference fast paths compute the trained networks' own function (within float rounding)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import safetensors.torch
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_live.models import build_network, load_model, save_model
from rrr_live.models.architectures import RegressorNet
from rrr_live.models.errors import ArchitectureConfigError
from rrr_live.models.fastpath import (
    HARPlan,
    LSTMPlan,
    MLPPlan,
    PlanCache,
    TransformerLastTokenPlan,
    build_plan,
)
from tests.live.models.conftest import N_FEATURES, WINDOW, make_ensemble

ATOL = 1e-6  # the canary tolerance, in label units


def _perturbed(net: RegressorNet, seed: int, scale: float = 0.1) -> RegressorNet:
    """Move every parameter off its initial value (LayerNorm gains/biases start at 1/0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return net.eval()


def _inputs(net: RegressorNet, n: int, window: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    shape = (n, window, N_FEATURES) if net.input_kind == "window" else (n, N_FEATURES)
    return torch.randn(shape, generator=gen) * 1.5


def _assert_plan_matches(net: RegressorNet, x: torch.Tensor) -> None:
    """Plan == network within float32 rounding, and no less accurate than it vs float64."""
    plan = build_plan(net)
    assert plan is not net  # a real fast path, not the fallback
    with torch.inference_mode():
        want, got = net(x), plan(x)
        exact = copy.deepcopy(net).double()(x.double())
    assert got.shape == want.shape == (x.shape[0],)
    # raw standardized outputs of size ~1; in label units (x target_std) this is far below 1e-6
    torch.testing.assert_close(got, want, atol=2e-6, rtol=2e-6)
    err_plan = (got.double() - exact).abs().max().item()
    err_net = (want.double() - exact).abs().max().item()
    assert err_plan <= 3 * err_net + 1e-6


@settings(max_examples=25, deadline=None)
@given(
    heads_log2=st.integers(0, 2),
    head_dim=st.sampled_from([4, 8]),
    layers=st.integers(1, 3),
    ff=st.sampled_from([4, 16]),
    window=st.integers(1, 10),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_transformer_plan_equals_the_network(heads_log2, head_dim, layers, ff, window, n, seed):
    torch.manual_seed(seed)
    heads = 2**heads_log2
    hp = {"d_model": heads * head_dim, "heads": heads, "layers": layers, "ff": ff}
    net = _perturbed(build_network("transformer", hp, N_FEATURES, window), seed)
    assert isinstance(build_plan(net), TransformerLastTokenPlan)
    _assert_plan_matches(net, _inputs(net, n, window, seed + 1))


@settings(max_examples=15, deadline=None)
@given(
    activation=st.sampled_from(["relu", "gelu", "tanh"]),
    layers=st.integers(1, 3),
    hidden=st.sampled_from([1, 8, 64]),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_mlp_plan_equals_the_network(activation, layers, hidden, n, seed):
    torch.manual_seed(seed)
    hp = {"hidden": hidden, "layers": layers, "activation": activation, "dropout": 0.3}
    net = _perturbed(build_network("mlp", hp, N_FEATURES, 0), seed)
    assert isinstance(build_plan(net), MLPPlan)
    _assert_plan_matches(net, _inputs(net, n, 0, seed + 1))


@pytest.mark.parametrize(("layers", "hidden"), [(1, 8), (2, 16)])
def test_lstm_plan_equals_the_network(layers, hidden):
    torch.manual_seed(layers)
    net = _perturbed(build_network("lstm", {"hidden": hidden, "layers": layers}, N_FEATURES, 9), 1)
    assert isinstance(build_plan(net), LSTMPlan)
    _assert_plan_matches(net, _inputs(net, 33, 9, 2))


@settings(max_examples=15, deadline=None)
@given(
    lags=st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True),
    extra=st.integers(0, 5),
    return_index=st.integers(0, N_FEATURES - 1),
    seed=st.integers(0, 2**16),
)
def test_har_plan_equals_the_network(lags, extra, return_index, seed):
    window = max(lags) + extra
    torch.manual_seed(seed)
    hp = {"lags": lags, "return_index": return_index}
    net = _perturbed(build_network("har_vol", hp, N_FEATURES, window), seed)
    assert isinstance(build_plan(net), HARPlan)
    x = _inputs(net, 17, window, seed + 1)
    x[0, :, return_index] = 0.0  # all-zero returns: the eps floor inside the log
    _assert_plan_matches(net, x)


def test_networks_without_a_fast_path_or_in_training_mode_run_themselves():
    tcn = build_network("tcn", {"channels": 4, "levels": 3}, N_FEATURES, WINDOW).eval()
    assert build_plan(tcn) is tcn
    mlp = build_network("mlp", {"dropout": 0.5}, N_FEATURES, 0)
    assert mlp.training and build_plan(mlp) is mlp


def test_transformer_plan_keeps_the_window_check():
    net = build_network("transformer", {"d_model": 8, "heads": 2}, N_FEATURES, WINDOW).eval()
    with torch.inference_mode(), pytest.raises(ArchitectureConfigError, match="window"):
        build_plan(net)(torch.zeros(2, WINDOW + 1, N_FEATURES))


def _windows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, WINDOW, N_FEATURES)) * 2 + 1).astype(np.float32)


@pytest.mark.parametrize("n", [1, 7, 300])
def test_ensemble_fast_and_plain_paths_agree(n):
    ens = make_ensemble(seed=4)
    for m in ens.members:
        _perturbed(m.network, n)
    w = _windows(n, n)
    names = [m.name for m in ens.members]
    fast_members = ens.predict_members(None, w, names)
    fast = ens.predict(w[:, -1], w)
    fast_vol = ens.predict_volatility(None, w)
    with ens.plain_inference():
        plain_members = ens.predict_members(None, w, names)
        plain = ens.predict(w[:, -1], w)
        plain_vol = ens.predict_volatility(None, w)
    assert ens.fast_inference
    for name in names:
        np.testing.assert_allclose(fast_members[name], plain_members[name], atol=ATOL, rtol=0)
    np.testing.assert_allclose(fast, plain, atol=ATOL, rtol=0)
    np.testing.assert_allclose(fast_vol, plain_vol, rtol=1e-6)


def test_canary_reference_is_the_plain_path_and_the_loaded_fast_path_reproduces_it(tmp_path):
    ens = make_ensemble(seed=5)
    for m in ens.members:
        _perturbed(m.network, 5)
    save_model(tmp_path / "m", ens, feature_spec={"v": 1})
    loaded = load_model(tmp_path / "m")  # the load itself checks the canary at atol 1e-6
    assert loaded.ensemble.fast_inference
    canary = safetensors.torch.load_file(str(tmp_path / "m" / "canary.safetensors"))
    feats, wins = canary["features"].numpy(), canary["windows"].numpy()
    reference = loaded.manifest.canary["outputs"]
    names = [m.name for m in ens.members]
    with ens.plain_inference():
        plain = ens.predict_members(feats, wins, names)
        np.testing.assert_array_equal(reference["ensemble"], ens.predict(feats, wins))
    fast = loaded.ensemble.predict_members(feats, wins, names)
    for name in names:
        np.testing.assert_array_equal(reference["members"][name], plain[name])
        np.testing.assert_allclose(fast[name], plain[name], atol=ATOL, rtol=0)
    np.testing.assert_allclose(loaded.predict(feats, wins), reference["ensemble"], atol=ATOL)


def test_plans_follow_in_place_weight_updates_and_mode_changes():
    ens = make_ensemble(seed=6)
    w = _windows(5, 6)
    before = ens.predict(None, w)
    net = ens.member("transformer").network
    with torch.no_grad():
        net.head.bias.add_(1.0)  # +1 standardized unit = +target_std * weight in label units
    after = ens.predict(None, w)
    np.testing.assert_allclose(after - before, 0.02 * 0.1, atol=1e-6)
    with ens.plain_inference():
        np.testing.assert_allclose(ens.predict(None, w), after, atol=ATOL, rtol=0)
    cache = PlanCache()
    plan = cache.get(net)
    assert cache.get(net) is plan
    net.train()
    assert cache.get(net) is net
    net.eval()
    assert isinstance(cache.get(net), TransformerLastTokenPlan)
