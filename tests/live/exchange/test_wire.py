"""The server's own websocket framing equals the library's, and metrics bind loopback."""

from __future__ import annotations

import httpx
import pytest
from websockets.frames import Frame, Opcode

from rrr_live.exchange.wire import _text_frame
from rrr_live.metrics import Metrics, serve_metrics


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_bytes_equal_websockets_serialisation(size: int) -> None:
    payload = b"x" * size
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert _text_frame(payload) == expected


def test_metrics_endpoint_binds_loopback_and_serves_the_registry() -> None:
    metrics = Metrics()
    metrics.exchange_frames_sent.labels(protocol="binance").inc(3)
    endpoint = serve_metrics(metrics, 0)
    assert endpoint.host == "127.0.0.1"
    try:
        body = httpx.get(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=5).text
    finally:
        endpoint.close()
        endpoint.close()  # idempotent
    assert 'rrr_exchange_frames_sent_total{protocol="binance"} 3.0' in body
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=2)
