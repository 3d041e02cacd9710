"""Venue timestamps to integer nanoseconds since the epoch (UTC), exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from rrr_live.feeds.errors import Rejected

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_to_ns(text: str) -> int:
    """Parse an ISO-8601 UTC time such as ``2021-04-17T16:43:37.075687Z`` to nanoseconds.

    Fractions beyond microseconds (nanosecond feeds) are kept exactly.

    Raises:
        Rejected: ``bad_time`` if the text is not an ISO-8601 time with a zone.
    """
    head, dot, rest = text.partition(".")
    extra_ns = 0
    if dot:
        digits = rest.rstrip("Z")
        if not (digits.isascii() and digits.isdigit()) or len(rest) - len(digits) != 1:
            raise Rejected("bad_time", repr(text))
        extra_ns = int(digits[:9].ljust(9, "0")) if digits else 0
        text = head + "Z"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as e:
        raise Rejected("bad_time", repr(text)) from e
    if dt.tzinfo is None:
        raise Rejected("bad_time", f"{text!r} has no time zone")
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + extra_ns


def ms_to_ns(ms: int) -> int:
    """Return epoch milliseconds (Binance ``E``/``T``) as nanoseconds."""
    return ms * 1_000_000
