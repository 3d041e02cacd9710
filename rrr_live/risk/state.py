"""Trading states and risk decisions (business outcomes are values, not exceptions).

* ``ACTIVE``   – every order that passes the pre-trade limits may go out.
* ``REDUCING`` – a limit is breached (by price movement alone, say); only orders that shrink a
  position without flipping it are allowed. Back to ``ACTIVE`` once no limit is breached.
* ``HALTED``   – drawdown from the high-water mark reached the limit; nothing is sent until an
  operator calls :meth:`TradingStateMachine.reset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class TradingState(Enum):
    """Risk state of the trading process."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class Approved:
    """A pre-trade check passed."""

    @property
    def ok(self) -> bool:
        """Return ``True``."""
        return True


@dataclass(frozen=True, slots=True)
class Denied:
    """A pre-trade check failed; ``reason`` names the limit."""

    reason: str

    @property
    def ok(self) -> bool:
        """Return ``False``."""
        return False


RiskDecision = Approved | Denied


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition of the trading state."""

    ts_ns: int
    old: TradingState
    new: TradingState
    reason: str


@dataclass(slots=True)
class TradingStateMachine:
    """Moves between ACTIVE, REDUCING and HALTED from drawdown and limit breaches."""

    state: TradingState = TradingState.ACTIVE
    history: list[StateChange] = field(default_factory=list)

    def update(self, ts_ns: int, drawdown_hit: bool, breaches: list[str]) -> TradingState:
        """Evaluate the state after a mark at ``ts_ns``.

        Args:
            ts_ns: event time of the mark.
            drawdown_hit: drawdown from the high-water mark reached its limit.
            breaches: names of exposure limits currently exceeded.

        Returns:
            The new state (HALTED is sticky until :meth:`reset`).
        """
        if self.state is TradingState.HALTED:
            return self.state
        if drawdown_hit:
            self._move(ts_ns, TradingState.HALTED, "max drawdown reached")
        elif breaches:
            self._move(ts_ns, TradingState.REDUCING, ", ".join(breaches))
        elif self.state is TradingState.REDUCING:
            self._move(ts_ns, TradingState.ACTIVE, "limits clear")
        return self.state

    def reset(self, ts_ns: int, reason: str = "operator reset") -> None:
        """Return to ACTIVE (the only way out of HALTED)."""
        self._move(ts_ns, TradingState.ACTIVE, reason)

    def _move(self, ts_ns: int, new: TradingState, reason: str) -> None:
        if new is not self.state:
            self.history.append(StateChange(ts_ns, self.state, new, reason))
            self.state = new
