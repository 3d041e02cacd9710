from __future__ import annotations

import math

import pytest
import torch

from rrr_live.models import ARCHITECTURES, build_network
from rrr_live.models.architecture_registry import hyperparameter_names
from rrr_live.models.errors import ArchitectureConfigError, UnknownArchitectureError


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_maps_rows_to_one_value(name):
    torch.manual_seed(0)
    net = build_network(name, {}, n_features=4, window=20)
    x = torch.randn(7, 20, 4) if net.input_kind == "window" else torch.randn(7, 4)
    out = net(x)
    assert out.shape == (7,)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_same_seed_same_initialisation():
    nets = []
    for _ in range(2):
        torch.manual_seed(5)
        nets.append(build_network("transformer", {"d_model": 16, "heads": 2}, 3, 10))
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_transformer_is_causal_and_last_token_path_is_exact():
    torch.manual_seed(0)
    net = build_network("transformer", {"d_model": 16, "heads": 2, "layers": 2}, 3, 6).eval()
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        full = net.encode(x, last_only=False)
        x2 = x.clone()
        x2[:, 4:] += 10.0  # changing later bars must not change earlier token states
        changed = net.encode(x2, last_only=False)
        torch.testing.assert_close(full[:, :4], changed[:, :4])
        # the cheap last-token path equals the last row of the full computation
        torch.testing.assert_close(net.encode(x)[:, 0], full[:, -1], atol=1e-6, rtol=1e-5)


def test_har_is_the_log_rms_regression():
    net = build_network("har_vol", {"return_index": 1, "lags": [1, 2], "eps": 0.0}, 2, 3)
    with torch.no_grad():
        net.head.weight.copy_(torch.tensor([[1.0, 2.0]]))
        net.head.bias.fill_(0.5)
    x = torch.tensor([[[9.0, 4.0], [9.0, -3.0], [9.0, 1.0]]])
    expected = 0.5 + math.log(1.0) + 2.0 * math.log(math.sqrt((9.0 + 1.0) / 2))
    assert net(x).item() == pytest.approx(expected, rel=1e-6)


def test_registry_errors_name_the_problem():
    with pytest.raises(UnknownArchitectureError, match="gru"):
        build_network("gru", {}, 3, 5)
    with pytest.raises(ArchitectureConfigError, match="hiden"):
        build_network("mlp", {"hiden": 3}, 3, 5)
    with pytest.raises(ArchitectureConfigError, match="receptive"):
        build_network("tcn", {"levels": 1, "kernel": 2}, 3, 30)
    with pytest.raises(ArchitectureConfigError, match="lags"):
        build_network("har_vol", {"lags": [1, 40]}, 3, 20)
    with pytest.raises(ArchitectureConfigError, match="divide"):
        build_network("transformer", {"d_model": 10, "heads": 3}, 3, 5)
    with pytest.raises(ArchitectureConfigError, match="activation"):
        build_network("mlp", {"activation": "swish"}, 3, 5)
    assert hyperparameter_names("lstm") == ("hidden", "layers", "dropout")
