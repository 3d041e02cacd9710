"""What the trader asks of a portfolio-wide risk authority (the risk ledger implements it)."""

from __future__ import annotations

from typing import Protocol

from rrr_live.risk.limits import RiskEngine
from rrr_live.strategy.decision import Decision, DecisionStep


class PortfolioGate(Protocol):
    """A portfolio-wide risk check around one shard's decision step.

    :meth:`sync` runs before the step (it may halt or restrict ``risk``), :meth:`reserve`
    after it and before any order is sent (it may deny approved orders in place). Neither
    raises for an unreachable authority: they fail closed instead.
    """

    async def sync(self, ts_ns: int, risk: RiskEngine) -> None:
        """Publish this shard's exposure and carry the account state into ``risk``."""

    async def reserve(self, ts_ns: int, decision: Decision, step: DecisionStep) -> None:
        """Deny, in ``decision.codes``, approved orders past the portfolio-wide limits."""
