"""Fault state of the replay exchange: sequence skips and handshake refusals.

The hooks that act at once (pause, disconnect, raw bytes, oversized frame) are methods of the
server; what has to wait for the next matching event or handshake is counted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rrr_live.exchange.tape import TapeEvent


@dataclass
class SkipRule:
    """Drop the next ``count`` events matching ``symbol``/``channel`` (None matches any)."""

    count: int
    channel: str | None
    symbol: str | None = None

    def matches(self, event: TapeEvent) -> bool:
        """Whether this rule applies to ``event``."""
        if self.channel is not None and event.channel != self.channel:
            return False
        return self.symbol is None or event.symbol == self.symbol


@dataclass
class Faults:
    """Pending skips and refusals, and what they did.

    ``skipped`` lists the events not sent (the server's book still moved: a client that
    resyncs from REST or a fresh snapshot gets a book that includes them).
    """

    skips: list[SkipRule] = field(default_factory=list)
    refusals: int = 0
    refusal_status: int = 503
    skipped: list[TapeEvent] = field(default_factory=list)

    def take_skip(self, event: TapeEvent) -> bool:
        """Consume one matching skip for ``event``; True when it must not be sent."""
        for rule in self.skips:
            if rule.matches(event):
                rule.count -= 1
                if rule.count <= 0:
                    self.skips.remove(rule)
                self.skipped.append(event)
                return True
        return False

    def take_refusal(self) -> int | None:
        """The HTTP status to refuse the next handshake with, or None to accept it."""
        if self.refusals <= 0:
            return None
        self.refusals -= 1
        return self.refusal_status
