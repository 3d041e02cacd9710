"""Binance request signing: HMAC-SHA256 over the query string and body, timestamp windows.

The secret never leaves this module's objects: it is not in any repr, log or error message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from rrr_live.errors import RRRError

KEY_ENV, SECRET_ENV = "RRR_VENUE_API_KEY", "RRR_VENUE_API_SECRET"


@dataclass(frozen=True)
class ApiKeys:
    """One API key pair of the paper venue's account.

    Args:
        api_key: the public key clients send as ``X-MBX-APIKEY``.
        secret: the HMAC secret (never shown).
    """

    api_key: str
    secret: str = field(repr=False)

    @classmethod
    def from_env(cls, key_file: Path | None = None, secret_file: Path | None = None) -> ApiKeys:
        """Read ``RRR_VENUE_API_KEY``/``RRR_VENUE_API_SECRET``, or the given files.

        Raises:
            RRRError: when a key or secret is missing or empty.
        """
        key = key_file.read_text().strip() if key_file else os.environ.get(KEY_ENV, "")
        secret = secret_file.read_text().strip() if secret_file else os.environ.get(SECRET_ENV, "")
        if not key or not secret:
            raise RRRError(
                f"paper venue needs an API key and secret: set {KEY_ENV} and {SECRET_ENV} "
                "(or pass key/secret files)"
            )
        return cls(key, secret)


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload`` under ``secret`` (Binance's ``signature``)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def strip_signature(params: str) -> tuple[str, str]:
    """Split ``a=1&b=2&signature=ff`` into (``a=1&b=2``, ``ff``); the signature may be anywhere."""
    kept, found = [], ""
    for part in params.split("&") if params else []:
        if part.startswith("signature="):
            found = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), found


def signature_ok(secret: str, query: str, body: str) -> bool:
    """Whether the ``signature`` in ``query`` or ``body`` signs query + body (Binance's rule).

    Binance signs ``totalParams``: the query string concatenated with the body, no separator,
    without the ``signature`` parameter itself.
    """
    q, sig_q = strip_signature(query)
    b, sig_b = strip_signature(body)
    given = sig_q or sig_b
    if not given:
        return False
    return hmac.compare_digest(sign(secret, q + b), given.lower())


def timestamp_error(timestamp: int, recv_window: int, server_ms: int) -> str:
    """Binance's timing rule: the reason a request is outside its window, or "" when inside."""
    if timestamp >= server_ms + 1000:
        return "Timestamp for this request was 1000ms ahead of the server's time."
    if server_ms - timestamp > recv_window:
        return "Timestamp for this request is outside of the recvWindow."
    return ""
