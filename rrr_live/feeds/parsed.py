"""What a parser makes of one frame: normalized events, or a control message."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import msgspec

from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import MarketEvent
from rrr_live.feeds.errors import Rejected
from rrr_live.feeds.units import InstrumentScales, Scale

T = TypeVar("T")


@dataclass(slots=True)
class Parsed:
    """The result of parsing one frame.

    Args:
        events: the normalized events it carried (possibly none).
        control: ``""`` for market data, else what it was (``"subscriptions"``,
            ``"heartbeat"``, ``"ack"``, ``"error"``, ``"ignored"``).
        detail: the stream or message type (for ``ignored``) or the venue's error text.
    """

    events: list[MarketEvent] = field(default_factory=list)
    control: str = ""
    detail: str = ""


class ScaledSymbols:
    """Per-symbol scales for a parser; an unknown symbol is a rejected frame.

    Args:
        instruments: the venue's instruments by symbol.
    """

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        shared: dict[Decimal, Scale] = {}
        self._scales = {s: InstrumentScales(i, shared) for s, i in instruments.items()}

    def __getitem__(self, symbol: str) -> InstrumentScales:
        """Return the scales of ``symbol``.

        Raises:
            Rejected: ``unknown_symbol``.
        """
        try:
            return self._scales[symbol]
        except KeyError:
            raise Rejected("unknown_symbol", repr(symbol)) from None


def decode_or_reject(decoder: msgspec.json.Decoder[T], frame: str | bytes) -> T:
    """Decode ``frame`` with ``decoder``, turning msgspec errors into rejections.

    Raises:
        Rejected: ``invalid_json`` (not JSON, or NaN/Infinity) or ``schema``.
    """
    try:
        return decoder.decode(frame)
    except msgspec.ValidationError as e:
        raise Rejected("schema", str(e)) from e
    except msgspec.DecodeError as e:
        raise Rejected("invalid_json", str(e)) from e
