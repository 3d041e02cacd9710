"""Replay exchange send rate: the synthetic universe, pre-encoded, to one raw websocket client.

The server runs in its own process (as ``rrr exchange serve`` does) with the free clock at "as
fast as the client reads"; the client, in this process, subscribes to every stream of every
symbol and counts frames with a bare ``recv()`` loop. Prints the tape's encode rate, the
server's send rate (first to last frame, its monotonic clock), the client's receive rate, and
each process's CPU seconds.

    python bench/bench_exchange.py [--symbols 1000] [--frames 300000] [--protocol binance]
                                   [--send-time]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import time
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import connect

from rrr_live.exchange.server import ExchangeServer
from rrr_live.exchange.synthetic import synthetic_tape


def _server(pipe: Connection, protocol: str, symbols: int, frames: int, send_time: bool) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    tape = synthetic_tape(protocol, symbols, frames, rate=100_000.0)  # type: ignore[arg-type]
    encode_s = time.perf_counter() - t0
    sendable = sum(1 for e in tape.events if e.channel)  # type: ignore[attr-defined]

    async def serve() -> None:
        async with ExchangeServer(tape, send_time=send_time) as ex:
            pipe.send({"port": ex.port, "symbols": tape.symbols, "expected": sendable})
            c1 = time.process_time()
            await ex.finished()
            pipe.send({"encode_s": encode_s, "encode_cpu_s": c1 - c0, "frames_sent": ex.frames_sent,
                       "send_cpu_s": time.process_time() - c1})  # fmt: skip
            pipe.recv()  # the client is done: close

    asyncio.run(serve())


async def _client(info: dict[str, Any], protocol: str) -> dict[str, float]:
    url = f"ws://127.0.0.1:{info['port']}"
    n, expected = 0, info["expected"]
    async with connect(url + ("/stream" if protocol == "binance" else ""), max_size=2**22,
                       compression=None) as ws:  # fmt: skip
        if protocol == "binance":
            streams = [f"{s.lower()}@{c}" for s in info["symbols"]
                       for c in ("depth@100ms", "trade", "aggTrade")]  # fmt: skip
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}))
            await ws.recv()
        else:
            await ws.send(json.dumps({"type": "subscribe", "product_ids": info["symbols"],
                                      "channels": ["level2_batch", "matches"]}))  # fmt: skip
            await ws.recv()
        c0 = time.process_time()
        await ws.recv()
        t0 = time.perf_counter()
        n = 1
        while n < expected:
            await ws.recv()
            n += 1
        elapsed = time.perf_counter() - t0
    return {"received": n, "recv_s": elapsed, "client_cpu_s": time.process_time() - c0}


def main() -> None:
    """Run once and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=300_000)
    parser.add_argument("--protocol", choices=["binance", "coinbase"], default="binance")
    parser.add_argument("--send-time", action="store_true")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_server, args=(theirs, args.protocol, args.symbols, args.frames,
                                              args.send_time))  # fmt: skip
    proc.start()
    info = ours.recv()
    got = asyncio.run(_client(info, args.protocol))
    server = ours.recv()
    ours.send("done")
    proc.join(30)
    frames = got["received"]
    print(f"{args.protocol}, {args.symbols} symbols, {frames:,} frames"
          f"{' with rrr_send_ns' if args.send_time else ''}:")  # fmt: skip
    print(f"  encode  {args.frames / server['encode_s']:>10,.0f} frames/s "
          f"({server['encode_s']:.1f} s, before serving)")  # fmt: skip
    print(f"  send    {frames / got['recv_s']:>10,.0f} frames/s end to end "
          f"(server CPU {server['send_cpu_s']:.1f} s, client CPU {got['client_cpu_s']:.1f} s, "
          f"wall {got['recv_s']:.1f} s)")  # fmt: skip
    print(f"  server  {frames / server['send_cpu_s']:>10,.0f} frames per server-CPU second")


if __name__ == "__main__":
    main()
