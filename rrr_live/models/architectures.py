"""Network architectures of the ensemble, as plain ``torch.nn.Module`` classes.

Every network maps standardized inputs to one standardized prediction per row:

* ``input_kind == "flat"``: input ``(batch, n_features)``;
* ``input_kind == "window"``: input ``(batch, window, n_features)``, oldest row first, the last
  row being the decision bar.

The output always has shape ``(batch,)``. Constructors take ``n_features`` (and ``window`` for
window networks) from the ensemble's input schema; every other argument is a hyper-parameter
that comes from configuration (see :mod:`rrr_live.models.architecture_registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from rrr_live.models.errors import ArchitectureConfigError

InputKind = Literal["flat", "window"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def _activation(name: str) -> nn.Module:
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ArchitectureConfigError(
            f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}"
        ) from None


def _require_positive(**values: int) -> None:
    for key, value in values.items():
        if int(value) != value or value < 1:
            raise ArchitectureConfigError(
                f"hyper-parameter {key} must be a positive int, got {value}"
            )


def _require_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ArchitectureConfigError(f"dropout must be in [0, 1), got {dropout}")


class RegressorNet(nn.Module):
    """Base class: one scalar prediction per row; subclasses set ``input_kind``."""

    input_kind: ClassVar[InputKind] = "flat"


class MLP(RegressorNet):
    """Multi-layer perceptron on the feature vector of the decision bar.

    Args:
        n_features: Number of input features.
        hidden: Width of each hidden layer.
        layers: Number of hidden layers.
        dropout: Dropout after each hidden activation.
        activation: ``relu``, ``gelu`` or ``tanh``.
    """

    input_kind: ClassVar[InputKind] = "flat"

    def __init__(
        self,
        n_features: int,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        _require_positive(n_features=n_features, hidden=hidden, layers=layers)
        _require_dropout(dropout)
        blocks: list[nn.Module] = []
        width = n_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), _activation(activation), nn.Dropout(dropout)]
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        """Predict from ``x`` of shape ``(batch, n_features)``; returns ``(batch,)``."""
        out: Tensor = self.net(x)
        return out.squeeze(-1)


class LSTMRegressor(RegressorNet):
    """LSTM over the window; the last hidden state feeds a linear head.

    Args:
        n_features: Number of input features.
        window: Window length T (the LSTM itself accepts any length).
        hidden: LSTM hidden size.
        layers: Number of stacked LSTM layers.
        dropout: Dropout between stacked layers (only used when ``layers > 1``).
    """

    input_kind: ClassVar[InputKind] = "window"

    def __init__(
        self, n_features: int, window: int, hidden: int = 32, layers: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        _require_positive(n_features=n_features, window=window, hidden=hidden, layers=layers)
        _require_dropout(dropout)
        self.lstm = nn.LSTM(
            n_features,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Predict from ``x`` of shape ``(batch, T, n_features)``; returns ``(batch,)``."""
        out, _ = self.lstm(x)
        last: Tensor = out[:, -1, :]
        pred: Tensor = self.head(last)
        return pred.squeeze(-1)


class _CausalConvBlock(nn.Module):
    """Dilated causal convolution with a residual connection (left padding only)."""

    def __init__(self, channels_in: int, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(channels_in, channels, kernel, dilation=dilation)
        self.act = nn.GELU()
        self.skip: nn.Module = (
            nn.Identity() if channels_in == channels else nn.Conv1d(channels_in, channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply to ``x`` of shape ``(batch, channels_in, T)``."""
        y: Tensor = self.act(self.conv(nn.functional.pad(x, (self.pad, 0))))
        skip: Tensor = self.skip(x)
        return y + skip


class CausalTCN(RegressorNet):
    """Temporal convolutional network with dilations 1, 2, 4, ...; reads the last time step.

    Args:
        n_features: Number of input features.
        window: Window length T; the receptive field must cover it.
        channels: Channels of every convolution.
        kernel: Kernel size.
        levels: Number of dilated blocks (dilation doubles per block).
    """

    input_kind: ClassVar[InputKind] = "window"

    def __init__(
        self, n_features: int, window: int, channels: int = 32, kernel: int = 3, levels: int = 4
    ) -> None:
        super().__init__()
        _require_positive(
            n_features=n_features, window=window, channels=channels, kernel=kernel, levels=levels
        )
        receptive = 1 + (kernel - 1) * (2**levels - 1)
        if receptive < window:
            raise ArchitectureConfigError(
                f"tcn receptive field {receptive} < window {window}; raise levels or kernel"
            )
        blocks = [
            _CausalConvBlock(n_features if i == 0 else channels, channels, kernel, 2**i)
            for i in range(levels)
        ]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Predict from ``x`` of shape ``(batch, T, n_features)``; returns ``(batch,)``."""
        h: Tensor = self.blocks(x.transpose(1, 2))
        pred: Tensor = self.head(h[:, :, -1])
        return pred.squeeze(-1)


class _PreNormEncoderLayer(nn.Module):
    """Pre-norm encoder layer; with ``last_only`` it computes the last token's output only.

    Attention is written with batched matmuls: for many short windows (1000 symbols x 24
    bars) this is several times faster on CPU than ``nn.MultiheadAttention``.
    """

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = d_model // heads
        self.norm1 = nn.LayerNorm(d_model)
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        head_of_dim = torch.arange(d_model) // self.head_dim
        blocks = (head_of_dim[:, None] == torch.arange(heads)[None, :]).float()
        self.register_buffer("head_blocks", blocks, persistent=False)  # (d_model, heads) 0/1
        self.out = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d_model)
        )
        self.dropout = dropout
        self.drop = nn.Dropout(dropout)

    def _split(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return (
            x.reshape(b, t, self.heads, self.head_dim).transpose(1, 2).reshape(-1, t, self.head_dim)
        )

    def _attend(self, x: Tensor, mask: Tensor, last_only: bool) -> Tensor:
        b, t, d = x.shape
        k, v = self.k(x), self.v(x)
        if last_only:  # one query per row: block-diagonal matmuls, no per-head reshuffles
            blocks = self.get_buffer("head_blocks")
            q = self.q(x[:, -1]).unsqueeze(-1) * blocks  # (b, d, heads)
            scores = torch.bmm(k, q) * self.head_dim**-0.5  # (b, t, heads)
            probs = nn.functional.dropout(scores.softmax(dim=1), self.dropout, self.training)
            per_head = torch.bmm(probs.transpose(1, 2), v)  # (b, heads, d)
            ctx = (per_head * blocks.T).sum(dim=1)  # keep each head's own dims
            last: Tensor = self.out(ctx.unsqueeze(1))
            return last
        q = self._split(self.q(x))
        scores = torch.bmm(q, self._split(k).transpose(1, 2)) * self.head_dim**-0.5 + mask
        probs = nn.functional.dropout(scores.softmax(dim=-1), self.dropout, self.training)
        ctx = torch.bmm(probs, self._split(v))
        merged = ctx.reshape(b, self.heads, t, self.head_dim).transpose(1, 2).reshape(b, t, d)
        out: Tensor = self.out(merged)
        return out

    def forward(self, h: Tensor, mask: Tensor, last_only: bool) -> Tensor:
        """Apply to ``h`` ``(batch, T, d_model)``; returns ``(batch, T or 1, d_model)``."""
        attn = self._attend(self.norm1(h), mask, last_only)
        h = (h[:, -1:] if last_only else h) + self.drop(attn)
        out: Tensor = h + self.drop(self.ff(self.norm2(h)))
        return out


class TransformerRegressor(RegressorNet):
    """Small pre-norm transformer encoder over the window; reads the last token.

    Attention is causal (a token sees only itself and older bars). Only the last token's output
    is used, so the final layer computes that token alone (about ``T`` times cheaper), in
    training and in serving alike.

    Args:
        n_features: Number of input features.
        window: Window length T (size of the learned position embedding).
        d_model: Token width.
        heads: Attention heads (must divide ``d_model``).
        layers: Encoder layers.
        ff: Width of the feed-forward sub-layer.
        dropout: Dropout inside the encoder.
    """

    input_kind: ClassVar[InputKind] = "window"

    def __init__(
        self,
        n_features: int,
        window: int,
        d_model: int = 32,
        heads: int = 4,
        layers: int = 2,
        ff: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _require_positive(
            n_features=n_features, window=window, d_model=d_model, heads=heads, layers=layers, ff=ff
        )
        _require_dropout(dropout)
        if d_model % heads:
            raise ArchitectureConfigError(f"heads={heads} must divide d_model={d_model}")
        self.window = window
        self.embed = nn.Linear(n_features, d_model)
        self.position = nn.Parameter(torch.zeros(window, d_model))
        nn.init.normal_(self.position, std=0.02)
        self.layers = nn.ModuleList(
            _PreNormEncoderLayer(d_model, heads, ff, dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)
        mask = torch.triu(torch.full((window, window), float("-inf")), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def encode(self, x: Tensor, last_only: bool = True) -> Tensor:
        """Token states after the encoder: ``(batch, 1, d_model)`` or all ``T`` tokens."""
        if x.shape[1] != self.window:
            raise ArchitectureConfigError(
                f"transformer built for window {self.window}, got {x.shape[1]}"
            )
        h: Tensor = self.embed(x) + self.position
        mask = self.get_buffer("causal_mask")
        for i, layer in enumerate(self.layers):
            h = layer(h, mask, last_only and i == len(self.layers) - 1)
        return h

    def forward(self, x: Tensor) -> Tensor:
        """Predict from ``x`` of shape ``(batch, T, n_features)``; returns ``(batch,)``."""
        last: Tensor = self.norm(self.encode(x)[:, -1, :])
        pred: Tensor = self.head(last)
        return pred.squeeze(-1)


class HARVolatility(RegressorNet):
    """HAR-RV volatility model (Corsi 2009) on the return column of the window.

    Predicts log realized volatility as ``b0 + sum_k b_k * log(rv_k)``, where ``rv_k`` is the
    root-mean-square of the return feature over the last ``lags[k]`` bars. The coefficients are
    fitted by gradient descent like any other member. The return column arrives standardized;
    the affine head absorbs the scale.

    Args:
        n_features: Number of input features.
        window: Window length T; must be at least ``max(lags)``.
        return_index: Column of the one-bar return feature.
        lags: Horizons of the HAR components (daily/weekly/monthly by default).
        eps: Floor inside the logarithm.
    """

    input_kind: ClassVar[InputKind] = "window"

    def __init__(
        self,
        n_features: int,
        window: int,
        return_index: int = 0,
        lags: Sequence[int] = (1, 5, 20),
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        _require_positive(n_features=n_features, window=window)
        lag_tuple = tuple(int(lag) for lag in lags)
        if not lag_tuple or min(lag_tuple) < 1 or max(lag_tuple) > window:
            raise ArchitectureConfigError(f"HAR lags {lag_tuple} must lie in [1, window={window}]")
        if not 0 <= return_index < n_features:
            raise ArchitectureConfigError(
                f"return_index {return_index} outside [0, n_features={n_features})"
            )
        self.return_index = return_index
        self.lags = lag_tuple
        self.eps = eps
        self.head = nn.Linear(len(lag_tuple), 1)

    def forward(self, x: Tensor) -> Tensor:
        """Predict log volatility from ``x`` of shape ``(batch, T, n_features)``."""
        r2 = x[:, :, self.return_index].square()
        comps = [0.5 * torch.log(r2[:, -lag:].mean(dim=1) + self.eps) for lag in self.lags]
        pred: Tensor = self.head(torch.stack(comps, dim=1))
        return pred.squeeze(-1)
