"""Binance's error answer: an HTTP status and ``{"code": …, "msg": …}``."""

from __future__ import annotations

from rrr_live.errors import RRRError


class BinanceError(RRRError):
    """A request answered with Binance's error shape.

    Args:
        status: HTTP status (400 for most, 401 bad key, 429/418 rate limits).
        code: Binance's error code (``-1022`` bad signature, ``-2013`` no such order, ...).
        msg: Binance's message.
        retry_after: seconds for a ``Retry-After`` header (rate limits), or 0.
    """

    def __init__(self, status: int, code: int, msg: str, retry_after: int = 0) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.retry_after = status, code, msg, retry_after
