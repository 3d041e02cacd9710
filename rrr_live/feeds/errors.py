"""Feed failures: a frame we reject (a value counted by reason) and feed-level errors."""

from __future__ import annotations

from rrr_live.errors import RRRError


class FeedError(RRRError):
    """A feed cannot continue on its own (bad configuration, the venue refused us)."""


class FatalFeedError(FeedError):
    """Retrying will not help: the URL, the credentials or the subscription is wrong."""


class Rejected(RRRError):
    """One frame was rejected; ``reason`` is a small closed label for the metric.

    Args:
        reason: the metric label (``invalid_json``, ``schema``, ``bad_number``, ...).
        detail: a human-readable explanation for the log.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
