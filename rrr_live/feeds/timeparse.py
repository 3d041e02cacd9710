"""Venue timestamps to integer nanoseconds since the epoch (UTC), exactly."""

from __future__ import annotations

from datetime import UTC, datetime

from rrr_live.feeds.errors import Rejected

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECONDS: dict[str, int] = {}  # "2021-04-17T16:43:37" -> its epoch nanoseconds (UTC "Z" times)


def iso_to_ns(text: str) -> int:
    """Parse an ISO-8601 UTC time such as ``2021-04-17T16:43:37.075687Z`` to nanoseconds.

    Fractions beyond microseconds (nanosecond feeds) are kept exactly.

    Raises:
        Rejected: ``bad_time`` if the text is not an ISO-8601 time with a zone.
    """
    head, dot, rest = text.partition(".")
    seconds = _SECONDS.get(head)
    if seconds is not None and rest[-1:] == "Z" and rest[:-1].isdigit() and rest[:-1].isascii():
        return seconds + int(rest[:-1][:9].ljust(9, "0"))
    return _slow(text, head, dot, rest)


def _slow(text: str, head: str, dot: str, rest: str) -> int:
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
    seconds = (delta.days * 86_400 + delta.seconds) * 1_000_000_000
    if dot and len(_SECONDS) < 4096:  # the whole-second prefix repeats for a second
        _SECONDS[head] = seconds
    elif len(_SECONDS) >= 4096:
        _SECONDS.clear()
    return seconds + extra_ns


def ms_to_ns(ms: int) -> int:
    """Return epoch milliseconds (Binance ``E``/``T``) as nanoseconds."""
    return ms * 1_000_000
