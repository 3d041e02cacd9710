"""Trading states, risk decisions and the saveable state of the risk engine.

* ``ACTIVE``   – every order that passes the pre-trade limits may go out.
* ``REDUCING`` – a limit is breached (by price movement alone, say), the portfolio VaR is over
  its limit or the journal is degraded; only orders that shrink a position without flipping it
  are allowed. Back to ``ACTIVE`` once nothing is breached. A single symbol can be REDUCING on
  its own (a stale, crossed or gapped book) while the rest trades.
* ``HALTED``   – drawdown from the high-water mark reached the limit, the journal lost data, or
  computing PnL or risk failed (fail closed). Entering HALTED cancels open orders and, with the
  ``flatten`` halt policy, closes every position with reduce-only orders; then nothing is sent
  until an operator resumes (:meth:`TradingStateMachine.reset`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rrr_live.risk.reasons import DenyReason


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
    """A pre-trade check failed; ``code`` names the limit."""

    code: DenyReason

    @property
    def ok(self) -> bool:
        """Return ``False``."""
        return False

    @property
    def reason(self) -> str:
        """Return the label of the denial reason."""
        return self.code.label


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
    """Moves between ACTIVE, REDUCING and HALTED (HALTED is sticky until :meth:`reset`)."""

    state: TradingState = TradingState.ACTIVE
    history: list[StateChange] = field(default_factory=list)

    def update(self, ts_ns: int, drawdown_hit: bool, breaches: list[str]) -> TradingState:
        """Evaluate the state after a mark at ``ts_ns``.

        Args:
            ts_ns: event time of the mark.
            drawdown_hit: drawdown from the high-water mark reached its limit.
            breaches: what currently asks for REDUCING (exceeded limits, a degraded journal).

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

    def halt(self, ts_ns: int, reason: str) -> None:
        """Move to HALTED now (journal lost data, a failed risk computation, an operator)."""
        self._move(ts_ns, TradingState.HALTED, reason)

    def reset(self, ts_ns: int, reason: str = "operator reset") -> None:
        """Return to ACTIVE (the only way out of HALTED)."""
        self._move(ts_ns, TradingState.ACTIVE, reason)

    def _move(self, ts_ns: int, new: TradingState, reason: str) -> None:
        if new is not self.state:
            self.history.append(StateChange(ts_ns, self.state, new, reason))
            self.state = new


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """Everything the risk engine's future decisions depend on, as a plain value.

    The runner persists it (:meth:`to_dict` is JSON-serialisable) and restores it with
    :meth:`~rrr_live.risk.limits.RiskEngine.restore`; the engine then decides exactly as the
    one it was taken from. Positions and cash are the portfolio's and are restored with it.

    Attributes:
        state: the trading state.
        high_water_mark: equity high-water mark of the drawdown halt.
        symbol_quality: per symbol, why its data is unusable (``""``: fine).
        flatten_pending: a halt asked for every position to be closed.
        journal: the last journal health reported (``"ok"``, ``"degraded"``, ``"lost"``).
        rate_window: ``(ts_ns, count)`` of recently approved orders (order-rate limit).
        var_cov: the EWMA covariance of mark returns (row-major), empty before any update.
        var_updates: how many return vectors the covariance has seen.
        var_marks: the marks the next returns are measured from (NaN: not marked yet).
    """

    state: TradingState
    high_water_mark: float
    symbol_quality: tuple[str, ...]
    flatten_pending: bool = False
    journal: str = "ok"
    rate_window: tuple[tuple[int, int], ...] = ()
    var_cov: tuple[float, ...] = ()
    var_updates: int = 0
    var_marks: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (NaN marks become ``None``)."""
        return {
            "state": self.state.value,
            "high_water_mark": self.high_water_mark,
            "symbol_quality": list(self.symbol_quality),
            "flatten_pending": self.flatten_pending,
            "journal": self.journal,
            "rate_window": [list(x) for x in self.rate_window],
            "var_cov": list(self.var_cov),
            "var_updates": self.var_updates,
            "var_marks": [None if m != m else m for m in self.var_marks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskSnapshot:
        """Rebuild a snapshot from :meth:`to_dict` output.

        Raises:
            ValueError: if a field is missing or malformed.
        """
        try:
            return cls(
                state=TradingState(data["state"]),
                high_water_mark=float(data["high_water_mark"]),
                symbol_quality=tuple(str(s) for s in data["symbol_quality"]),
                flatten_pending=bool(data["flatten_pending"]),
                journal=str(data["journal"]),
                rate_window=tuple((int(t), int(n)) for t, n in data["rate_window"]),
                var_cov=tuple(float(x) for x in data["var_cov"]),
                var_updates=int(data["var_updates"]),
                var_marks=tuple(float("nan") if m is None else float(m) for m in data["var_marks"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"malformed risk snapshot: {e}") from e
