"""The runner's intake: feed events → trades → event-time bars → decision batches.

Every symbol whose bar closes at the same ``end_ns`` forms ONE decision batch (what the backtest
decides at a bar close). A batch is released, in ``end_ns`` order, when

* every universe symbol's bar for ``end_ns`` has closed (each traded past its end), or
* event time (of any event) passes ``end_ns + watermark``: quiet symbols' bars are closed by
  the watermark and join the batch, or
* the replay exchange's lockstep ``bar_closed`` control frame for ``end_ns`` (or a later bar)
  arrives: every trade up to that time was sent, so every bar ending there is closed; such a
  batch is marked ``ack`` and the service answers ``decision_done`` once it is decided.

Feed gaps: a new feed session (the adapter reconnected) means frames may be missing between the
last event of the old session and the first of the new one; that interval is reported to the bar
builder as a gap of every symbol, so a bar spanning it is skipped (the gap policy of
:mod:`rrr_live.service.bars`).

A batch's ``closing_send_ns`` is the ``rrr_send_ns`` stamp (the replay exchange's
``--send-time``) of the frame whose arrival released it (0 when frames carry no stamp): the
start of ARCHITECTURE's tick → decision latency.

The feed adapters are used as they are, with :meth:`parse` tapped (:class:`TappedBinanceFeed`,
:class:`TappedCoinbaseFeed`): the tap reads the send stamp of every frame and turns the
``bar_closed`` control frame into a :class:`BarClosedSignal` event, so it reaches the intake in
order with the market data (the exchange sends nothing more until it is answered).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import MarketEvent, Received
from rrr_live.feeds.binance import BinanceFeed
from rrr_live.feeds.coinbase import CoinbaseFeed
from rrr_live.feeds.connection import ReconnectingFeed
from rrr_live.feeds.parsed import Parsed
from rrr_live.service.bars import BarBuilder, ClosedBar

SEND_STAMP = '"rrr_send_ns":'
_BINANCE_CONTROL = '{"stream":"rrr@bar_closed"'
_COINBASE_CONTROL = '{"type":"bar_closed"'


@dataclass(frozen=True, slots=True)
class BarClosedSignal:
    """The replay exchange's lockstep control frame: every trade up to ``bar_close_ns`` was sent.

    Attributes:
        bar_close_ns: The bar close time.
        symbols: Symbols whose closing frames preceded it.
    """

    bar_close_ns: int
    symbols: tuple[str, ...]


def send_ns_of(frame: str) -> int:
    """Return a frame's trailing ``rrr_send_ns`` stamp (0 when it has none)."""
    i = frame.rfind(SEND_STAMP, max(0, len(frame) - 48))
    if i < 0:
        return 0
    digits = frame[i + len(SEND_STAMP) : frame.rfind("}")]
    return int(digits) if digits.isdigit() else 0


def control_signal(frame: str) -> BarClosedSignal | None:
    """Return the ``bar_closed`` signal a control frame carries (``None`` for any other frame)."""
    if frame.startswith(_BINANCE_CONTROL):
        body = json.loads(frame)["data"]
    elif frame.startswith(_COINBASE_CONTROL):
        body = json.loads(frame)
    else:
        return None
    return BarClosedSignal(int(body["bar_close_ns"]), tuple(body.get("symbols", ())))


class _Tap(ReconnectingFeed):
    """Reads every frame's send stamp and turns the lockstep control frame into an event.

    Mixed in before a concrete adapter, so ``super()`` reaches that adapter's parser.
    """

    last_send_ns = 0
    ws: ClientConnection | None = None

    def parse(self, frame: str) -> Parsed:
        """Parse a frame; a ``bar_closed`` control frame becomes a :class:`BarClosedSignal`."""
        self.last_send_ns = send_ns_of(frame)
        signal = control_signal(frame)
        if signal is not None:
            return Parsed([cast(MarketEvent, signal)])
        return super().parse(frame)  # type: ignore[safe-super]  # MRO: the adapter

    async def _on_open(self, ws: ClientConnection) -> list[MarketEvent]:
        self.ws = ws
        return await super()._on_open(ws)  # type: ignore[safe-super]  # MRO: the adapter


class TappedBinanceFeed(_Tap, BinanceFeed):
    """:class:`BinanceFeed` that also reports send stamps and lockstep control frames."""


class TappedCoinbaseFeed(_Tap, CoinbaseFeed):
    """:class:`CoinbaseFeed` that also reports send stamps and lockstep control frames."""


TappedFeed = TappedBinanceFeed | TappedCoinbaseFeed


async def answer_decision_done(feed: TappedFeed, bar_close_ns: int) -> None:
    """Tell the replay exchange the batch of ``bar_close_ns`` was decided (lockstep).

    A connection already closed (intake stopped, or a reconnect) needs no answer: the exchange
    waits on the connections it still has.
    """
    if feed.ws is None:
        return
    try:
        await feed.ws.send(json.dumps({"type": "decision_done", "bar_close_ns": bar_close_ns}))
    except ConnectionClosed:
        return


@dataclass
class Batch:
    """One decision batch released by the intake.

    Attributes:
        end_ns: The bar close time of every bar in it.
        bars: The closed bars (any order; the trader sorts them).
        closing_send_ns: Send stamp of the frame that released it (0: unstamped).
        closing_recv_ns: Local receive time of that frame.
        ack: A lockstep ``bar_closed`` released it: answer ``decision_done`` after deciding.
    """

    end_ns: int
    bars: list[ClosedBar]
    closing_send_ns: int = 0
    closing_recv_ns: int = 0
    ack: bool = False


@dataclass
class Intake:
    """Turns feed events into decision batches (see the module docstring).

    Args:
        bars: The event-time bar builder.
        universe: The traded symbols (bars of other symbols are not built).
        instruments: Tick and lot sizes, to turn trades into prices and quantities.
        watermark_ns: How long after its end (event time) a quiet symbol's bar is closed.
    """

    bars: BarBuilder
    universe: Sequence[str]
    instruments: Mapping[str, Instrument]
    watermark_ns: int
    frames: int = 0
    trades: int = 0
    _pending: dict[int, list[ClosedBar]] = field(default_factory=dict)
    gaps: int = 0
    _boundary: int = -1
    _event_ns: int = 0
    _session: str = ""

    def __post_init__(self) -> None:
        self._members = frozenset(self.universe)
        self._n = len(self._members)

    def on_received(self, rec: Received, send_ns: int = 0) -> list[Batch]:
        """Take one feed event; return the batches it released (oldest first)."""
        self.frames += 1
        event: Any = rec.event
        if rec.session != self._session:
            self._new_session(rec.session, int(getattr(event, "ts_ns", 0)))
        if isinstance(event, BarClosedSignal):
            self._close_through(event.bar_close_ns)
            return self._release(event.bar_close_ns, send_ns, rec.recv_ns, ack=True)
        out: list[Batch] = []
        if isinstance(event, TradeTick) and event.symbol in self._members:
            out = self._on_trade(event, send_ns, rec.recv_ns)
        ts = int(getattr(event, "ts_ns", 0))
        if ts > self._event_ns:
            self._event_ns = ts
            out += self._watermark(ts, send_ns, rec.recv_ns)
        return out

    def _new_session(self, session: str, ts_ns: int) -> None:
        if self._session:
            self.gaps += 1
            self.bars.feed_gap(None, self._event_ns, max(ts_ns, self._event_ns))
        self._session = session

    def drain(self) -> list[Batch]:
        """Batches of bars already closed (at the end of the feed; open bars are not decided)."""
        return self._release(max(self._pending, default=-1), 0, 0, ack=False)

    def _on_trade(self, t: TradeTick, send_ns: int, recv_ns: int) -> list[Batch]:
        self.trades += 1
        inst = self.instruments[t.symbol]
        closed = self.bars.on_trade(
            t.symbol, t.ts_ns, inst.ticks_to_price(t.price_ticks), inst.lots_to_size(t.size_lots)
        )
        if closed is None:
            return []
        group = self._pending.setdefault(closed.end_ns, [])
        group.append(closed)
        if len(group) < self._n:
            return []
        return self._release(closed.end_ns, send_ns, recv_ns, ack=False)

    def _watermark(self, ts: int, send_ns: int, recv_ns: int) -> list[Batch]:
        # the latest bar end the watermark has passed (strictly: a trade at the end is the bar's)
        cutoff = ts - self.watermark_ns - 1
        boundary = cutoff - cutoff % self.bars.interval_ns
        if boundary <= self._boundary:
            return []
        self._close_through(boundary)
        return self._release(boundary, send_ns, recv_ns, ack=False)

    def _close_through(self, end_ns: int) -> None:
        self._boundary = max(self._boundary, end_ns)
        for bar in self.bars.watermark(end_ns):
            self._pending.setdefault(bar.end_ns, []).append(bar)

    def _release(self, through: int, send_ns: int, recv_ns: int, *, ack: bool) -> list[Batch]:
        ends = sorted(e for e in self._pending if e <= through)
        out = [Batch(e, self._pending.pop(e), send_ns, recv_ns) for e in ends]
        if ack:
            if out and out[-1].end_ns == through:
                out[-1].ack = True
            else:
                out.append(Batch(through, [], send_ns, recv_ns, ack=True))
        return out
