"""Inference-only fast paths of member networks (same function, less work).

:class:`Ensemble` serves each member through a *plan*: a callable mapping standardized inputs to
the network's standardized output, built from the network's current weights. A plan computes the
same mathematical function as ``network(x)`` in eval mode; only float rounding differs (the
tests compare plans with ``network(x)`` within 1e-6 on random inputs and on the canary).

* ``transformer``: the last encoder layer, whose only used output is the last token, is
  rewritten exactly (see :class:`TransformerLastTokenPlan`); earlier layers run as trained.
* ``lstm``: ``nn.LSTM`` itself (oneDNN on CPU); the head reads the final hidden state.
* ``har_vol``: the trailing means of squared returns as one matrix product.
* ``mlp``: the Linear/activation chain as ``addmm`` calls without module dispatch.
* anything else, and any network in training mode: the network itself.

Plans read weights when they are built; :class:`PlanCache` rebuilds a plan whenever a
parameter of its network changed (in-place updates bump a tensor's version counter) or the
network moved or switched to training mode. Plans are built in memory, never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rrr_live.models.architectures import (
    MLP,
    HARVolatility,
    LSTMRegressor,
    RegressorNet,
    TransformerRegressor,
    _PreNormEncoderLayer,
)

Plan = Callable[[Tensor], Tensor]
_Signature = tuple[bool, tuple[tuple[int, int], ...]]

_F64 = torch.float64


def build_plan(network: RegressorNet) -> Plan:
    """Return the fastest exact inference callable for ``network``.

    Args:
        network: A member network.

    Returns:
        A callable with the same input/output contract as ``network.forward`` (call it under
        ``torch.inference_mode()`` or ``torch.no_grad()``).
    """
    if network.training:
        return network
    if isinstance(network, TransformerRegressor):
        return TransformerLastTokenPlan(network)
    if isinstance(network, LSTMRegressor):
        return LSTMPlan(network)
    if isinstance(network, MLP):
        return MLPPlan(network)
    if isinstance(network, HARVolatility):
        return HARPlan(network)
    return network


class HARPlan:
    """``HARVolatility`` with the trailing means of squared returns as one matrix product.

    ``sum_{s > T - lag_k} r_s^2`` for every lag is ``r^2 @ S`` with a 0/1 matrix ``S`` of shape
    ``(T, n_lags)``; the ``0.5`` of ``log(rms) = 0.5 * log(mean)`` is folded into the head
    (multiplying by 0.5 is exact in binary floating point).

    Args:
        network: The HAR member.
    """

    def __init__(self, network: HARVolatility) -> None:
        weight = network.head.weight.detach()
        self.network = network
        self.return_index = network.return_index
        self.lags = network.lags
        self.eps = network.eps
        self.lag_sizes = torch.tensor(self.lags, dtype=weight.dtype, device=weight.device)
        self.head_weight = (0.5 * weight).t().contiguous()
        self.head_bias = network.head.bias.detach().clone()
        self._selectors: dict[int, Tensor] = {}

    def _selector(self, window: int) -> Tensor:
        sel = self._selectors.get(window)
        if sel is None:
            steps = torch.arange(window)[:, None]
            lags = torch.tensor(self.lags)[None, :]
            sel = (steps >= window - lags).to(self.lag_sizes)
            self._selectors[window] = sel
        return sel

    def __call__(self, x: Tensor) -> Tensor:
        """Predict log volatility from standardized windows ``(batch, T, F)``."""
        if x.shape[1] < max(self.lags):
            short: Tensor = self.network(x)
            return short
        r2 = x[:, :, self.return_index].square()
        means = torch.mm(r2, self._selector(x.shape[1])).div_(self.lag_sizes)
        out = torch.addmm(self.head_bias, means.add_(self.eps).log_(), self.head_weight)
        return out.squeeze(-1)


class LSTMPlan:
    """``LSTMRegressor`` read from the LSTM's final hidden state (no output-sequence slice).

    The recurrence itself stays ``nn.LSTM`` (oneDNN on CPU): measured faster than a hand-written
    loop, the non-oneDNN kernel, TorchScript freezing and a thread pool over batch halves.

    Args:
        network: The LSTM member.
    """

    def __init__(self, network: LSTMRegressor) -> None:
        self.lstm = network.lstm
        self.head_weight = network.head.weight.detach().t()
        self.head_bias = network.head.bias.detach()

    def __call__(self, x: Tensor) -> Tensor:
        """Predict from standardized windows ``(batch, T, F)``; returns ``(batch,)``."""
        _, (h_n, _) = self.lstm(x)
        out = torch.addmm(self.head_bias, h_n[-1], self.head_weight)
        return out.squeeze(-1)


class MLPPlan:
    """``MLP`` as a chain of ``addmm`` + activation (dropout is the identity in eval mode).

    Args:
        network: The MLP member.
    """

    def __init__(self, network: MLP) -> None:
        self.steps: list[tuple[Tensor, Tensor, Callable[[Tensor], Tensor] | None]] = []
        modules = [m for m in network.net if not isinstance(m, nn.Dropout)]
        for i, module in enumerate(modules):
            if not isinstance(module, nn.Linear):
                continue
            nxt = modules[i + 1] if i + 1 < len(modules) else None
            act = _activation_fn(nxt) if nxt is not None else None
            self.steps.append((module.weight.detach().t(), module.bias.detach(), act))

    def __call__(self, x: Tensor) -> Tensor:
        """Predict from standardized features ``(batch, F)``; returns ``(batch,)``."""
        h = x
        for weight_t, bias, act in self.steps:
            h = torch.addmm(bias, h, weight_t)
            if act is not None:
                h = act(h)
        return h.squeeze(-1)


def _activation_fn(module: nn.Module) -> Callable[[Tensor], Tensor]:
    if isinstance(module, nn.GELU):
        approximate = module.approximate
        return lambda t: nn.functional.gelu(t, approximate=approximate)
    if isinstance(module, nn.ReLU):
        return torch.relu_
    if isinstance(module, nn.Tanh):
        return torch.tanh_
    raise TypeError(f"no fast path for activation {type(module).__name__}")


@dataclass(frozen=True)
class _LastLayerWeights:
    """Folded float32 weights of the last encoder layer (derivation in the plan docstring)."""

    heads: int
    d_model: int
    eps: float
    gamma: Tensor  # (d,) norm1 weight
    beta: Tensor  # (d,) norm1 bias
    query_key: Tensor  # (d, heads*d): n_last -> per-head key-side query vectors
    query_key_bias: Tensor  # (heads*d,)
    value_out: Tensor  # (heads*d, d): pooled centered states -> attention block output
    value_out_bias: Tensor  # (d,)


def _fold_last_layer(layer: _PreNormEncoderLayer) -> _LastLayerWeights:
    """Fold q/k/v/out and the first LayerNorm's affine map into two matrices (in float64)."""
    d, heads = layer.q.in_features, layer.heads
    blocks = layer.get_buffer("head_blocks").to(_F64)  # (d, heads): dim j belongs to head h
    gamma, beta = layer.norm1.weight.detach().to(_F64), layer.norm1.bias.detach().to(_F64)
    w_q, b_q = layer.q.weight.detach().to(_F64), layer.q.bias.detach().to(_F64)
    w_k = layer.k.weight.detach().to(_F64)
    w_v, b_v = layer.v.weight.detach().to(_F64), layer.v.bias.detach().to(_F64)
    w_o, b_o = layer.out.weight.detach().to(_F64), layer.out.bias.detach().to(_F64)
    scale = layer.head_dim**-0.5
    # key side: score_h(t) = scale * sum_{j in h} q_j (W_k n_t)_j + (terms constant in t)
    key = (blocks.T[:, :, None] * (w_k * gamma[None, :])[None]).permute(1, 0, 2)  # (j, h, i)
    key = key.reshape(d, heads * d) * scale
    # value side: ctx_j = sum_i W_v[j, i] gamma_i P_h(i) + (W_v beta + b_v)_j for j in head h
    value = (w_v[None] * blocks.T[:, :, None]).transpose(1, 2) * gamma[None, :, None]  # (h,i,j)
    value_out = value.reshape(heads * d, d) @ w_o.T

    def f32(t: Tensor) -> Tensor:
        return t.to(device=layer.q.weight.device, dtype=layer.q.weight.dtype).contiguous()

    return _LastLayerWeights(
        heads=heads,
        d_model=d,
        eps=layer.norm1.eps,
        gamma=f32(gamma),
        beta=f32(beta),
        query_key=f32(w_q.T @ key),
        query_key_bias=f32(b_q @ key),
        value_out=f32(value_out),
        value_out_bias=f32((w_v @ beta + b_v) @ w_o.T + b_o),
    )


class TransformerLastTokenPlan:
    """``TransformerRegressor`` whose last layer is computed for the last token only, exactly.

    The last layer's output is read at the last token only, so only that token's query is
    needed (the class already exploits this). This plan further avoids computing keys and values
    for all ``T`` tokens. With ``c_t`` the centered input of token ``t``, ``r_t`` its inverse
    LayerNorm scale, ``n_t = gamma * c_t * r_t + beta`` and ``q`` the last token's query:

    * ``score_h(t) = scale * q_h . (W_k n_t + b_k)_h = r_t * (u_h . c_t) + const_h``, with
      ``u_h = scale * (W_k diag(gamma))_h^T q_h``; constants over ``t`` cancel in the softmax.
    * ``ctx_h = sum_t p_h(t) v_h(t) = (W_v diag(gamma))_h P_h + (W_v beta + b_v)_h`` with
      ``P_h = sum_t p_h(t) r_t c_t`` (the probabilities sum to one).

    So the ``(batch, T, d)`` work is the centering, one norm and two tiny batched products
    instead of three LayerNorm/Linear passes; ``q -> u`` and ``P -> W_out ctx`` are each one
    matrix folded (in float64) when the plan is built. For one layer the embedding is centered
    through its weights (``c = x @ (W_e - mean) + centered(b_e + position)``).

    Args:
        network: The transformer member (eval mode).
    """

    def __init__(self, network: TransformerRegressor) -> None:
        self.network = network
        last = network.layers[-1]
        assert isinstance(last, _PreNormEncoderLayer)
        self.last = last
        self.w = _fold_last_layer(last)
        self.single_layer = len(network.layers) == 1
        w_e = network.embed.weight.detach().to(_F64).T  # (F, d)
        shift = network.embed.bias.detach().to(_F64) + network.position.detach().to(_F64)
        dtype, device = network.embed.weight.dtype, network.embed.weight.device
        self.embed_t = w_e.to(device=device, dtype=dtype).contiguous()
        self.last_shift = shift[-1].to(device=device, dtype=dtype).contiguous()
        self.centered_embed = (w_e - w_e.mean(dim=1, keepdim=True)).to(device=device, dtype=dtype)
        self.centered_shift = (shift - shift.mean(dim=1, keepdim=True)).to(device, dtype)
        ff_in, ff_out = last.ff[0], last.ff[-1]
        assert isinstance(ff_in, nn.Linear) and isinstance(ff_out, nn.Linear)
        self.ff_act = _activation_fn(last.ff[1])
        self.ff_in_t, self.ff_in_bias = ff_in.weight.detach().t(), ff_in.bias.detach()
        self.ff_out_t, self.ff_out_bias = ff_out.weight.detach().t(), ff_out.bias.detach()
        self.head_t, self.head_bias = network.head.weight.detach().t(), network.head.bias.detach()

    def _centered_input(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Centered input tokens of the last layer ``(b, T, d)`` and its last token uncentered."""
        if self.single_layer:
            c = torch.matmul(x, self.centered_embed)
            c += self.centered_shift
            return c, torch.addmm(self.last_shift, x[:, -1], self.embed_t)
        net = self.network
        h: Tensor = net.embed(x) + net.position
        mask = net.get_buffer("causal_mask")
        for layer in list(net.layers)[:-1]:
            h = layer(h, mask, False)
        return h - h.mean(dim=-1, keepdim=True), h[:, -1]

    def __call__(self, x: Tensor) -> Tensor:
        """Predict from standardized windows ``(batch, T, F)``; returns ``(batch,)``."""
        net, w = self.network, self.w
        if x.shape[1] != net.window:
            mismatch: Tensor = net(x)  # the network raises its own clear error
            return mismatch
        c, h_last = self._centered_input(x)
        b = c.shape[0]
        r = torch.rsqrt(c.square().mean(dim=-1) + w.eps)  # (b, T)
        r_row = r.unsqueeze(1)  # (b, 1, T)
        n_last = torch.addcmul(w.beta, c[:, -1] * r[:, -1:], w.gamma)
        u = torch.addmm(w.query_key_bias, n_last, w.query_key).view(b, w.heads, w.d_model)
        scores = torch.bmm(u, c.transpose(1, 2))
        scores *= r_row
        probs = scores.softmax(dim=-1)
        probs *= r_row
        pooled = torch.bmm(probs, c).view(b, w.heads * w.d_model)
        h = h_last + torch.addmm(w.value_out_bias, pooled, w.value_out)
        return self._tail(h)

    def _tail(self, h: Tensor) -> Tensor:
        """Feed-forward block, final norm and head on the last token ``(b, d)``."""
        norm2, norm = self.last.norm2, self.network.norm
        d = (self.w.d_model,)
        y = nn.functional.layer_norm(h, d, norm2.weight, norm2.bias, norm2.eps)
        y = self.ff_act(torch.addmm(self.ff_in_bias, y, self.ff_in_t))
        h = h + torch.addmm(self.ff_out_bias, y, self.ff_out_t)
        h = nn.functional.layer_norm(h, d, norm.weight, norm.bias, norm.eps)
        return torch.addmm(self.head_bias, h, self.head_t).squeeze(-1)


class PlanCache:
    """Per-network plans, rebuilt when a parameter, the device or the mode changes.

    The staleness check reads each parameter's data pointer and in-place version counter (a
    few microseconds); a parameter *replaced* by a new ``nn.Parameter`` object is not seen, so
    call :meth:`clear` after such surgery.
    """

    def __init__(self) -> None:
        self._plans: dict[int, tuple[list[Tensor], _Signature, Plan]] = {}

    @staticmethod
    def _signature(network: nn.Module, params: list[Tensor]) -> _Signature:
        version = "_version"  # the in-place update counter (not in torch's type stubs)
        state = tuple((p.data_ptr(), int(getattr(p, version))) for p in params)
        return network.training, state

    def get(self, network: RegressorNet) -> Plan:
        """Return the plan of ``network``, building it when missing or stale.

        Args:
            network: A member network.

        Returns:
            The plan (the network itself where no fast path applies).
        """
        cached = self._plans.get(id(network))
        if cached is not None:
            params, sig, plan = cached
            if self._signature(network, params) == sig:
                return plan
        params = list(network.parameters())
        plan = build_plan(network)
        self._plans[id(network)] = (params, self._signature(network, params), plan)
        return plan

    def clear(self) -> None:
        """Forget every plan (e.g. after the networks moved to another device)."""
        self._plans.clear()
