"""The replay exchange server: one port on 127.0.0.1, websocket market data and REST.

One market timeline per server: a task walks the tape in event-time order, keeps the server's
books, and sends each event to the connections subscribed to it (``await send`` per frame, so a
client that does not read slows the market: backpressure, never an unbounded buffer). By
default the timeline waits while no connection is subscribed (a test never misses the start).

Clocks: ``speed=None`` sends as fast as the clients read; ``speed=N`` paces at N x event time
(injected monotonic clock and sleeper). ``lockstep=True``: after the frames that close bar ``t``
(the contiguous events with ``closes_bar == t``) the server sends a ``bar_closed`` control frame
to every connection and sends nothing more until a client answers ``{"type": "decision_done",
"bar_close_ns": t}`` (an ack for a later bar also covers earlier ones). Shards sharing one market
(``lockstep_clients=N``): see :mod:`rrr_live.exchange.lockstep`. Control frames are
``{"type": "bar_closed", "bar_close_ns": t, "symbols": [...]}`` on Coinbase and
``{"stream": "rrr@bar_closed", "data": {"e": "bar_closed", "bar_close_ns": t, "symbols": [...]}}``
on Binance (an extra stream clients that do not use it count and ignore).

``send_time=True`` adds ``"rrr_send_ns": <monotonic ns>`` as the last field of every frame (at
the top level; Binance combined frames carry it beside ``stream``/``data``), stamped when the
frame is queued for its socket: frames go out in per-connection batches (``wire.BATCH`` events at
most, and always before the server waits), see :mod:`rrr_live.exchange.wire`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rrr_live.errors import RRRError
from rrr_live.exchange.binance import BinanceProtocol
from rrr_live.exchange.coinbase import CoinbaseProtocol
from rrr_live.exchange.faults import Faults, SkipRule
from rrr_live.exchange.lockstep import Lockstep
from rrr_live.exchange.pacing import MIN_SLEEP_NS, MonotonicNs, Pacer, Sleeper
from rrr_live.exchange.paper.httpbody import BodyConnection
from rrr_live.exchange.paper.venue import WS_API_PATH, PaperConfig, PaperVenue
from rrr_live.exchange.tape import BOOK_ONLY, DEPTH, LEVEL2, PriceSize, Tape, TapeEvent
from rrr_live.exchange.venue import Market, RestHandler, SubKey, VenueProtocol, dumps
from rrr_live.exchange.wire import BATCH, Fanout, Peer
from rrr_live.metrics import Metrics

log = logging.getLogger(__name__)

_REPORT_EVERY = 8192


class ExchangeServer:
    """The replay exchange; use as ``async with ExchangeServer(tape) as ex: ex.ws_url ...``.

    Args:
        tape: what to replay (see ``rrr_live.exchange.recorded``, ``bars``, ``synthetic``).
        host: address to bind (loopback by default).
        port: TCP port; 0 picks a free one.
        speed: None = as fast as clients read; N = N x event time.
        lockstep: wait for ``decision_done`` after each bar-closing frame.
        lockstep_clients: how many connections' acks release a bar (see the module docstring).
        send_time: add ``rrr_send_ns`` (monotonic send time) to every frame.
        autostart: start the timeline on entry (else call :meth:`start`).
        hold_without_clients: the timeline waits while no connection is subscribed.
        clock: monotonic nanoseconds (pacing and send times).
        sleeper: async sleep (pacing).
        metrics: where to count frames, connections, faults, REST requests.
        max_size: largest client message accepted.
        control: serve the fault hooks over HTTP at ``/_rrr/*`` (see ``exchange.control``).
        paper: serve the paper venue's order API and user-data stream (Binance tapes only).
    """

    def __init__(
        self,
        tape: Tape,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float | None = None,
        lockstep: bool = False,
        lockstep_clients: int = 1,
        send_time: bool = False,
        autostart: bool = True,
        hold_without_clients: bool = True,
        clock: MonotonicNs = time.monotonic_ns,
        sleeper: Sleeper = asyncio.sleep,
        metrics: Metrics | None = None,
        max_size: int = 2**20,
        control: bool = False,
        paper: PaperConfig | None = None,
    ) -> None:
        self.tape = tape
        self.market = Market(tape)
        self.paper = PaperVenue(self.market, paper) if paper is not None else None
        if self.paper is not None and tape.protocol != "binance":
            raise RRRError("the paper venue speaks Binance: serve a Binance tape")
        self._events = self._seed_books(tape.events)
        self._factory: Callable[[Market], VenueProtocol] = (
            BinanceProtocol if tape.protocol == "binance" else CoinbaseProtocol
        )
        self._venue = self._factory(self.market)
        self._routes: dict[str, RestHandler] = self._venue.routes()
        if control:
            from rrr_live.exchange.control import Control

            self._routes.update(Control(self).routes())
        self._host, self._port, self._max_size = host, port, max_size
        self._pacer = Pacer(speed, clock, sleeper) if speed is not None else None
        self._lockstep, self._send_time, self._clock = lockstep, send_time, clock
        self._autostart, self._hold = autostart, hold_without_clients
        self.metrics = metrics if metrics is not None else Metrics()
        self.faults = Faults()
        self.events_emitted = 0
        self._reported = 0
        self._conns: set[Peer] = set()
        self._fanout = Fanout(send_time, clock, self._forget)
        self._next_id = 0
        self._blockers: set[str] = set()
        self._runnable = asyncio.Event()
        self._done = asyncio.Event()
        self._acks = Lockstep(lockstep_clients)
        self._bar_pending = 0
        self._bar_symbols: list[str] = []
        self._server: Server | None = None
        self._closing: set[asyncio.Task[None]] = set()  # strong refs to close tasks
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._timed = tape.protocol == "coinbase"
        self._default_skip = DEPTH if tape.protocol == "binance" else LEVEL2

    def _seed_books(self, events: Iterable[TapeEvent]) -> Iterator[TapeEvent]:
        """Apply the tape's leading book-only events now: REST depth works before the start."""
        it = iter(events)
        for event in it:
            if event.channel != BOOK_ONLY:
                return itertools.chain([event], it)
            self.market.books.get(event.symbol).push(event)
            self.market.now_ns = event.ts_ns
            if self.paper is not None:
                self.paper.on_tape(event)
        return it

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> ExchangeServer:
        """Start listening (and the timeline, when ``autostart``)."""
        self._server = await serve(
            self._handler, self._host, self._port, process_request=self._process_request,
            compression=None, max_size=self._max_size, create_connection=BodyConnection,
        )  # fmt: skip
        self._port = int(self._server.sockets[0].getsockname()[1])
        if self._hold:
            self._block("no-clients")
        if self._acks.clients > 1:
            self._block("clients-joining")
        if self._autostart:
            self.start()
        log.info("replay exchange (%s) on %s", self.tape.protocol, self.http_url)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the timeline and close every connection."""
        await self.close()

    async def close(self) -> None:
        """Stop the timeline and the listener (idempotent)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None  # a failure was logged and is raised by finished()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._report()

    def start(self) -> None:
        """Start walking the tape (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="exchange-timeline")
            self._task.add_done_callback(self._timeline_done)

    def _timeline_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self._failure = task.exception()
        log.error("replay exchange timeline failed", exc_info=self._failure)
        self._done.set()

    @property
    def is_finished(self) -> bool:
        """Whether the whole tape was emitted."""
        return self._done.is_set()

    async def finished(self) -> None:
        """Wait until every event of the tape was emitted (and, in lockstep, acknowledged).

        Raises:
            RRRError: the timeline failed (the cause is chained).
        """
        await self._done.wait()
        if self._failure is not None:
            raise RRRError(f"replay exchange timeline failed: {self._failure}") from self._failure

    @property
    def port(self) -> int:
        """The port listened on."""
        return self._port

    @property
    def ws_url(self) -> str:
        """Base websocket URL (Binance clients append ``/stream?streams=…`` or ``/ws``)."""
        return f"ws://{self._host}:{self._port}"

    @property
    def http_url(self) -> str:
        """Base URL of the REST endpoints (same port)."""
        return f"http://{self._host}:{self._port}"

    @property
    def connections(self) -> int:
        """Open websocket connections."""
        return len(self._conns)

    def book(
        self, symbol: str, depth: int | None = None
    ) -> tuple[list[PriceSize], list[PriceSize]]:
        """The server's book of ``symbol`` now: ``(bids, asks)`` best first."""
        return self.market.books.get(symbol).top(depth)

    # ---------------------------------------------------------------- fault hooks
    def pause(self) -> None:
        """Stop sending market data (connections stay open and silent)."""
        self._fault("pause")
        self._block("pause")

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        self._unblock("pause")

    def skip(self, count: int = 1, symbol: str | None = None, channel: str | None = None) -> None:
        """Do not send the next ``count`` matching events; the server's book still moves.

        ``channel`` defaults to the book channel (Binance depth: a gap in ``U``/``u``; Coinbase
        level 2). Pass ``"matches"`` on Coinbase for a ``trade_id`` gap.
        """
        self._fault("skip")
        rule = SkipRule(count, channel if channel is not None else self._default_skip, symbol)
        self.faults.skips.append(rule)

    def refuse_handshakes(self, count: int = 1, status: int = 503) -> None:
        """Answer the next ``count`` websocket handshakes with HTTP ``status``."""
        self._fault("refuse")
        self.faults.refusals, self.faults.refusal_status = count, status

    def disconnect(self, code: int | None = None) -> int:
        """Drop every connection: abort TCP (client sees 1006) or close with ``code``."""
        self._fault("disconnect")
        conns = list(self._conns)
        for conn in conns:
            if code is None:
                conn.ws.transport.abort()
            else:
                task = asyncio.create_task(conn.ws.close(code), name=f"close-{conn.ident}")
                task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        return len(conns)

    async def send_raw(self, data: bytes | str, framed: bool = True) -> int:
        """Send ``data`` to every connection as a frame (str: text, bytes: binary).

        With ``framed=False`` the bytes go straight onto the TCP stream (not a websocket frame).
        """
        self._fault("raw")
        await self._fanout.flush()  # frames already queued go first
        conns = list(self._conns)
        for conn in conns:
            if not framed:
                conn.ws.transport.write(data.encode() if isinstance(data, str) else data)
                continue
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(data)
        return len(conns)

    async def send_oversized(self, size: int = 2**20 + 1) -> int:
        """Send every connection one valid JSON text frame of exactly ``size`` bytes."""
        head, tail = b'{"type":"padding","pad":"', b'"}'
        pad = max(0, size - len(head) - len(tail))
        return await self.send_raw((head + b"x" * pad + tail).decode(), framed=True)

    def _fault(self, name: str) -> None:
        self.metrics.exchange_faults.labels(fault=name).inc()

    # ------------------------------------------------------------------- timeline
    def _block(self, reason: str) -> None:
        self._blockers.add(reason)
        self._runnable.clear()

    def _unblock(self, reason: str) -> None:
        self._blockers.discard(reason)
        if not self._blockers:
            self._runnable.set()

    async def _wait_runnable(self) -> None:
        while self._blockers:
            self._runnable.clear()
            await self._runnable.wait()
        if self._pacer is not None:
            self._pacer.reset()

    async def _run(self) -> None:
        pacer, fanout, n = self._pacer, self._fanout, 0
        for event in self._events:
            if self._blockers:
                await fanout.flush()
                await self._wait_runnable()
            if self._bar_pending and event.closes_bar != self._bar_pending:
                await self._close_bar()
            if pacer is not None and pacer.due_ns(event.ts_ns) - self._clock() >= MIN_SLEEP_NS:
                await fanout.flush()
                await pacer.wait(event.ts_ns)
            self._emit(event)
            n += 1
            if n >= BATCH:
                n = 0
                await fanout.flush()
                if fanout.sent - self._reported >= _REPORT_EVERY:
                    self._report()
        await fanout.flush()
        if self._bar_pending:
            await self._close_bar()
        self._report()
        self._done.set()
        log.info("tape finished: %d events, %d frames sent", self.events_emitted, self.frames_sent)

    def _emit(self, event: TapeEvent) -> None:
        self.events_emitted += 1
        self.market.now_ns = event.ts_ns
        if event.bids is not None or event.snapshot:
            self.market.books.get(event.symbol).push(event)
        if self.paper is not None:
            self.paper.on_tape(event)  # orders match before clients see the event
        if self._timed:
            for extra in self._venue.timed(event.ts_ns, self._fanout.subs.__contains__):
                self._fanout.deliver(extra)
            self._venue.observe(event)
        if self._lockstep and event.closes_bar:
            self._bar_pending = event.closes_bar
            self._bar_symbols.append(event.symbol)
        if event.channel == BOOK_ONLY or (self.faults.skips and self.faults.take_skip(event)):
            return
        self._fanout.deliver(event)

    async def _close_bar(self) -> None:
        bar, symbols = self._bar_pending, self._bar_symbols
        frame = self._venue.control("bar_closed", {"bar_close_ns": bar, "symbols": symbols})
        told = list(self._conns)
        for peer in told:
            self._fanout.queue(peer, frame)
        await self._fanout.flush()
        while not self._acks.released(bar, [p.ident for p in told if p in self._conns]):
            self._acks.changed.clear()
            await self._acks.changed.wait()
        self._bar_pending, self._bar_symbols = 0, []
        if self._pacer is not None:
            self._pacer.reset()

    @property
    def frames_sent(self) -> int:
        """Frames written to client sockets (market data, replies, control frames)."""
        return self._fanout.sent

    def _report(self) -> None:
        sent = self.frames_sent
        delta, self._reported = sent - self._reported, sent
        if delta:
            self.metrics.exchange_frames_sent.labels(protocol=self.tape.protocol).inc(delta)

    # ---------------------------------------------------------------- connections
    def _subscribe(self, conn: Peer, subs: dict[SubKey, bytes]) -> None:
        for key, prefix in subs.items():
            self._fanout.subs.setdefault(key, {})[conn] = prefix
            conn.keys.add(key)
        if subs:
            self._unblock("no-clients")
            if sum(1 for c in self._conns if c.keys) >= self._acks.clients:
                self._unblock("clients-joining")

    def _unsubscribe(self, conn: Peer, keys: list[SubKey]) -> None:
        for key in keys:
            self._fanout.subs.get(key, {}).pop(conn, None)
            conn.keys.discard(key)

    def _forget(self, conn: Peer) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        self._acks.forget(conn.ident)
        self._unsubscribe(conn, list(conn.keys))
        self.metrics.exchange_connections.set(len(self._conns))
        if self._hold and not any(c.keys for c in self._conns):
            self._block("no-clients")

    async def _handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        if self.paper is not None and path.startswith(WS_API_PATH):
            await self.paper.serve_ws(ws)
            return
        self._next_id += 1
        conn = Peer(self._next_id, ws, self._factory(self.market))
        self._conns.add(conn)
        self.metrics.exchange_connections.set(len(self._conns))
        path = ws.request.path if ws.request is not None else "/"
        self._subscribe(conn, conn.proto.accept_path(path) or {})
        try:
            async for raw in ws:
                await self._on_message(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            self._forget(conn)

    async def _on_message(self, conn: Peer, raw: str | bytes) -> None:
        try:
            msg: Any = json.loads(raw)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            msg = {"type": None, "method": None}
        if msg.get("type") == "decision_done":
            if isinstance(bar := msg.get("bar_close_ns"), int):
                self._acks.ack(conn.ident, bar)
            return
        reply = conn.proto.on_message(msg)
        self._unsubscribe(conn, reply.unsubscribe)
        self._subscribe(conn, reply.subscribe)
        # The timeline holds while the reply goes out: a snapshot and the diffs after it
        # reach the client in that order.
        hold = f"reply-{conn.ident}"
        self._block(hold)
        try:
            for frame in reply.frames:
                self._fanout.queue(conn, frame)
            await self._fanout.flush()  # what was queued before, then the reply
        finally:
            self._unblock(hold)

    # ----------------------------------------------------------------------- HTTP
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return self._handshake(request)
        if self.paper is not None:
            answer = self.paper.http(request, getattr(connection, "request_body", b""))
            if answer is not None:
                return self._response(*answer)
        parts = urlsplit(request.path)
        handler, tail = self._route(parts.path)
        if handler is None:
            return self._response(404, dumps({"code": -1, "msg": f"no route {parts.path}"}))
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        return self._response(*handler(query, tail))

    def _handshake(self, request: Request) -> Response | None:
        status = self.faults.take_refusal()
        if status is not None:
            return self._response(status, dumps({"msg": "handshake refused (fault hook)"}))
        if self.paper is not None and request.path.startswith(WS_API_PATH):
            return None
        if self._factory(self.market).accept_path(request.path) is None:
            return self._response(404, dumps({"msg": f"no stream at {request.path}"}))
        return None

    def _route(self, path: str) -> tuple[RestHandler | None, str]:
        handler = self._routes.get(path) or self._routes.get(path.rstrip("/"))
        if handler is not None:
            return handler, ""
        for prefix, candidate in self._routes.items():
            if prefix.endswith("/") and path.startswith(prefix):
                return candidate, path[len(prefix) :]
        return None, ""

    def _response(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> Response:
        self.metrics.exchange_http_requests.labels(status=str(status)).inc()
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
             ("Connection", "close"), *(extra or {}).items()]
        )  # fmt: skip
        return Response(status, http.HTTPStatus(status).phrase, headers, body)
