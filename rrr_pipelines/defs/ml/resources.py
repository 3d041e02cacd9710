"""ML resources: the MLflow wrapper (no global MLflow state) and the promotion-gate thresholds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from rrr_pipelines.lib.ml.gate import GateCriteria
    from rrr_pipelines.lib.model_registry import ModelRegistry


class MlflowResource(dg.ConfigurableResource):
    """Access to the MLflow tracking server and the ``rrr-ensemble`` registry."""

    tracking_uri: str

    def registry(self) -> ModelRegistry:
        """Return a :class:`rrr_pipelines.lib.model_registry.ModelRegistry` bound to this server."""
        from rrr_pipelines.lib.model_registry import ModelRegistry

        return ModelRegistry(self.tracking_uri)


class PromotionGateResource(dg.ConfigurableResource):
    """Thresholds of the ``promotion_gate`` check; the defaults are ``GateCriteria``'s.

    Bound as ``gate`` (``defs/env.py``). Operators and tests inject other thresholds through
    it; the documented defaults (``docs/evaluation.md``) apply unless someone states otherwise
    in run config or resource binding. ``promotion_gate`` and the registration assets read the
    same resource, and every registered version records the thresholds and waivers it was
    judged with. ``GateCriteria`` validates the values (it refuses
    negative margins), so a criterion cannot be switched off by a threshold: ``waive`` names
    it instead, and the check reports it as waived.
    """

    min_ic_t_stat: float = Field(default=2.0, description="OOS IC Newey-West t must reach")
    min_ic_ci_low: float = Field(default=0.0, description="bootstrap CI lower bound must exceed")
    min_sharpe_margin: float = Field(
        default=0.0, description="Sharpe must exceed the best baseline's plus this margin"
    )
    max_drawdown: float = Field(default=0.25, description="largest OOS drawdown (fraction)")
    max_var_99_1d: float = Field(
        default=0.05, description="1-day 99 % VaR / portfolio value (strategy's book)"
    )
    max_worst_stress_loss: float = Field(
        default=0.10,
        description="worst dynamic stress loss / portfolio value (OOS scores, live limits)",
    )
    waive: list[str] = Field(
        default_factory=list,
        description="criterion keys judged and reported but not enforced (an operator's "
        "explicit, recorded override; e.g. ['sharpe'])",
    )

    def criteria(self) -> GateCriteria:
        """The thresholds as a validated :class:`rrr_pipelines.lib.ml.gate.GateCriteria`.

        Raises:
            rrr_pipelines.lib.ml.gate.GateError: on a non-finite or out-of-range threshold.
        """
        from rrr_pipelines.lib.ml.gate import GateCriteria

        return GateCriteria(
            min_ic_t_stat=self.min_ic_t_stat,
            min_ic_ci_low=self.min_ic_ci_low,
            min_sharpe_margin=self.min_sharpe_margin,
            max_drawdown=self.max_drawdown,
            max_var_99_1d=self.max_var_99_1d,
            max_worst_stress_loss=self.max_worst_stress_loss,
        )
