"""The replay exchange: ``rrr exchange serve`` as a library.

One process, one port on 127.0.0.1: market data over a websocket in the Coinbase Exchange or the
Binance spot protocol, and the venue's public REST endpoints on the same port. Sources: recorded
sessions (:mod:`rrr_live.exchange.recorded`), published bars expanded into ticks
(:mod:`rrr_live.exchange.bars`), the synthetic universe (:mod:`rrr_live.exchange.synthetic`).
Clocks, lockstep and fault hooks: :mod:`rrr_live.exchange.server`.

Lockstep protocol (both venues): after the frames that close bar ``t`` the server sends a
``bar_closed`` control frame and waits for the client's ``{"type": "decision_done",
"bar_close_ns": t}`` text frame on the same websocket before it sends anything newer.
"""

from rrr_live.exchange.recorded import RecordingError, load_recording
from rrr_live.exchange.server import ExchangeServer
from rrr_live.exchange.tape import InstrumentSpec, Tape, TapeEvent

__all__ = [
    "ExchangeServer",
    "InstrumentSpec",
    "RecordingError",
    "Tape",
    "TapeEvent",
    "load_recording",
]
