"""The journal's health as a value the risk engine reads (journal lost data -> HALTED)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rrr_live.risk.state import TradingState


class JournalHealth(Enum):
    """How well the journal keeps what it is given.

    * ``OK`` – writing to PostgreSQL, nothing waiting on disk.
    * ``SPILLING`` – the database is unavailable or catching up; records wait in the spill
      buffer on disk; nothing lost.
    * ``REDUCING`` – the spill buffer passed its soft cap; loss is near.
    * ``LOST_DATA`` – the hard cap was reached and records were dropped (sticky until an
      operator acknowledges it).
    """

    OK = "ok"
    SPILLING = "spilling"
    REDUCING = "reducing"
    LOST_DATA = "lost_data"


_TRADING = {
    JournalHealth.OK: TradingState.ACTIVE,
    JournalHealth.SPILLING: TradingState.ACTIVE,
    JournalHealth.REDUCING: TradingState.REDUCING,
    JournalHealth.LOST_DATA: TradingState.HALTED,
}


@dataclass(frozen=True)
class JournalStatus:
    """A snapshot of the writer's state and counters (records, not bytes, unless named)."""

    health: JournalHealth
    database_up: bool
    queued: int
    received: int
    committed: int
    spilled: int
    replayed: int
    dropped: int
    spill_bytes: int

    @property
    def trading_state(self) -> TradingState:
        """The risk-engine input: lost data halts trading, a nearly full spill reduces it."""
        return _TRADING[self.health]
