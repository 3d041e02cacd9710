"""Fakes for tests: a clock that never sleeps, and venues speaking the documented REST shapes.

A fake venue serves candles from a canonical bar frame, either in-process
(:meth:`FakeVenue.transport`, an ``httpx.MockTransport``) or as a real HTTP server on
127.0.0.1, port 0 (:meth:`FakeVenue.serve`). Faults queued with :meth:`FakeVenue.inject` are
answered before normal responses (429 with ``Retry-After``, 5xx, malformed bodies …).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
import pandas as pd

from rrr_pipelines.lib.sources.rest_binance import MAX_KLINES
from rrr_pipelines.lib.sources.rest_coinbase import GRANULARITY_S, MAX_CANDLES


class FakeClock:
    """Monotonic seconds that only move when someone sleeps (or :meth:`advance` is called)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        """Start at ``start`` seconds."""
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        """Return the current time."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Record the wait and advance time by it."""
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep."""
        self.now += seconds


@dataclass
class Reply:
    """One HTTP answer: status, headers and raw body."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Reply:
        """Return a JSON reply."""
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


class FakeVenue:
    """Base fake: request log, fault queue, in-process and real-socket serving."""

    def __init__(self, bars: pd.DataFrame) -> None:
        """Serve ``bars`` (canonical frame; symbols as the venue spells them)."""
        self.bars = {s: g.sort_values("ts") for s, g in bars.groupby("symbol")}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._faults: deque[Reply] = deque()
        self._lock = threading.Lock()

    def inject(self, *replies: Reply) -> None:
        """Queue replies returned (in order) before any normal answer."""
        self._faults.extend(replies)

    def handle(self, path: str, query: dict[str, str]) -> Reply:
        """Answer one GET request."""
        with self._lock:
            self.requests.append((path, query))
            if self._faults:
                return self._faults.popleft()
        return self.route(path, query)

    def route(self, path: str, query: dict[str, str]) -> Reply:
        """Answer a request with data (implemented by each venue)."""
        raise NotImplementedError

    def transport(self) -> httpx.MockTransport:
        """Return an in-process httpx transport backed by this venue."""

        def handler(request: httpx.Request) -> httpx.Response:
            reply = self.handle(request.url.path, dict(request.url.params))
            return httpx.Response(reply.status, headers=reply.headers, content=reply.body)

        return httpx.MockTransport(handler)

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Run a real HTTP server on 127.0.0.1 (ephemeral port); yield its base URL."""
        venue = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                reply = venue.handle(parts.path, dict(parse_qsl(parts.query)))
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, name="fake-venue", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def _s(value: float) -> str:
    """Binance sends decimals as strings; ``repr`` of a float round-trips exactly."""
    return repr(float(value))


def _epoch_s(ts: pd.Series) -> np.ndarray:
    return np.asarray(ts.dt.as_unit("ns").astype("int64").to_numpy() // 1_000_000_000)


class FakeCoinbase(FakeVenue):
    """``GET /products/{id}/candles``: newest first, ``[time, low, high, open, close, volume]``."""

    def route(self, path: str, query: dict[str, str]) -> Reply:
        """Serve candles with ``start <= time <= end``; reject > 300 buckets like the venue."""
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "products" or parts[2] != "candles":
            return Reply.json({"message": "NotFound"}, 404)
        product, g = parts[1], int(query.get("granularity", "0"))
        if g not in GRANULARITY_S.values():
            return Reply.json({"message": "Unsupported granularity"}, 400)
        start = int(datetime.fromisoformat(query["start"].replace("Z", "+00:00")).timestamp())
        end = int(datetime.fromisoformat(query["end"].replace("Z", "+00:00")).timestamp())
        if (end - start) // g + 1 > MAX_CANDLES:
            return Reply.json(
                {"message": "granularity too small for the requested time range"}, 400
            )
        if product not in self.bars:
            return Reply.json({"message": "NotFound"}, 404)
        frame = self.bars[product]
        t = _epoch_s(frame["ts"])
        sel = frame[(t >= start) & (t <= end)].iloc[::-1]
        rows = [
            [int(ts), float(lo), float(hi), float(op), float(cl), float(vol)]
            for ts, lo, hi, op, cl, vol in zip(
                _epoch_s(sel["ts"]), sel["low"], sel["high"], sel["open"], sel["close"],
                sel["volume"], strict=True,
            )
        ]  # fmt: skip
        return Reply.json(rows)


class FakeBinance(FakeVenue):
    """``GET /api/v3/klines``: oldest first, 12-field rows with string prices."""

    def route(self, path: str, query: dict[str, str]) -> Reply:
        """Serve klines with ``startTime <= openTime <= endTime``, at most ``limit``."""
        if path != "/api/v3/klines":
            return Reply.json({"code": -1000, "msg": "Unknown path"}, 404)
        symbol = query.get("symbol", "")
        if symbol not in self.bars:
            return Reply.json({"code": -1121, "msg": "Invalid symbol."}, 400)
        limit = int(query.get("limit", "500"))
        if not 1 <= limit <= MAX_KLINES:
            return Reply.json({"code": -1100, "msg": "Illegal characters found in 'limit'."}, 400)
        frame = self.bars[symbol]
        ms = frame["ts"].dt.as_unit("ns").astype("int64").to_numpy() // 1_000_000
        lo, hi = int(query.get("startTime", "0")), int(query.get("endTime", str(2**62)))
        sel = frame[(ms >= lo) & (ms <= hi)].iloc[:limit]
        step_ms = int(np.diff(ms).min()) if len(ms) > 1 else 60_000
        rows = []
        for t, op, hi_, lo_, cl, vol in zip(
            sel["ts"].dt.as_unit("ns").astype("int64").to_numpy() // 1_000_000,
            sel["open"], sel["high"], sel["low"], sel["close"], sel["volume"], strict=True,
        ):  # fmt: skip
            rows.append(
                [int(t), _s(op), _s(hi_), _s(lo_), _s(cl), _s(vol), int(t) + step_ms - 1,
                 _s(vol * cl), 100, _s(vol / 2), _s(vol * cl / 2), "0"]
            )  # fmt: skip
        return Reply.json(rows)
