"""An exactly linear network: one affine map of the standardized feature vector.

Baselines (ridge regression, momentum, buy-and-hold) are linear in the features, so they can be
stored in the same pickle-free model format as the ensemble and served by the same loader:

* ridge: the fitted coefficients and intercept;
* momentum: weight 1 on the matching momentum/return feature, bias 0 (the ensemble's
  standardization set to mean 0, std 1 so the raw feature passes through unchanged);
* buy-and-hold: zero weights and a constant positive bias.

Registered in :mod:`rrr_live.models.architecture_registry` under ``"linear"``; it has no
hyper-parameters.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from rrr_live.models.architectures import InputKind, RegressorNet
from rrr_live.models.errors import ArchitectureConfigError


class LinearRegressor(RegressorNet):
    """``y = x @ w + b`` on the decision bar's (standardized) feature vector.

    Args:
        n_features: Number of input features.
    """

    input_kind: ClassVar[InputKind] = "flat"

    def __init__(self, n_features: int) -> None:
        super().__init__()
        if isinstance(n_features, bool) or int(n_features) != n_features or n_features < 1:
            raise ArchitectureConfigError(f"n_features must be a positive int, got {n_features}")
        self.linear = nn.Linear(int(n_features), 1)

    def forward(self, x: Tensor) -> Tensor:
        """Predict from ``x`` of shape ``(batch, n_features)``; returns ``(batch,)``."""
        out: Tensor = self.linear(x)
        return out.squeeze(-1)
