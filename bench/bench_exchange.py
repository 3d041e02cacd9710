"""Replay exchange send rate: the synthetic universe, pre-encoded, to one client.

The server runs in its own process (as ``rrr exchange serve`` does) with the free clock at "as
fast as the client reads" and starts its timeline once the client has subscribed to every stream
of every symbol. Two clients, in this process:

* ``websockets``: a bare ``recv()`` loop (what a Python consumer can take);
* ``raw``: a hand-made handshake, then the TCP bytes are drained unparsed: the client costs
  almost nothing, so the rate is the sender's.

Prints the tape's encode rate (before serving), the server's send rate (timeline start to end,
wall clock), the client's receive rate, and each process's CPU seconds.

    python bench/bench_exchange.py [--symbols 1000] [--frames 200000] [--protocol binance]
                                   [--client websockets|raw] [--send-time]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import connect

from rrr_live.exchange.server import ExchangeServer
from rrr_live.exchange.synthetic import synthetic_tape


def _server(pipe: Connection, protocol: str, symbols: int, frames: int, send_time: bool) -> None:
    t0 = time.perf_counter()
    tape = synthetic_tape(protocol, symbols, frames, rate=100_000.0)  # type: ignore[arg-type]
    encode_s = time.perf_counter() - t0
    sendable = sum(1 for e in tape.events if e.channel)  # type: ignore[attr-defined]

    async def serve() -> None:
        async with ExchangeServer(tape, send_time=send_time, autostart=False) as ex:
            pipe.send({"port": ex.port, "symbols": tape.symbols, "expected": sendable})
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, pipe.recv)  # the client has subscribed
            c1, t1 = time.process_time(), time.perf_counter()
            ex.start()
            await ex.finished()
            pipe.send({"encode_s": encode_s, "frames_sent": ex.frames_sent,
                       "send_s": time.perf_counter() - t1,
                       "send_cpu_s": time.process_time() - c1})  # fmt: skip
            await loop.run_in_executor(None, pipe.recv)  # the client is done

    asyncio.run(serve())


def _subscribe_message(info: dict[str, Any], protocol: str) -> bytes:
    if protocol == "binance":
        streams = [f"{s.lower()}@{c}" for s in info["symbols"]
                   for c in ("depth@100ms", "trade", "aggTrade")]  # fmt: skip
        return json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}).encode()
    return json.dumps({"type": "subscribe", "product_ids": info["symbols"],
                       "channels": ["level2_batch", "matches"]}).encode()  # fmt: skip


async def _websockets_client(info: dict[str, Any], protocol: str, pipe: Connection) -> dict:
    url = f"ws://127.0.0.1:{info['port']}" + ("/stream" if protocol == "binance" else "")
    async with connect(url, max_size=2**22, compression=None) as ws:
        await ws.send(_subscribe_message(info, protocol).decode())
        await ws.recv()  # the subscription ack
        pipe.send("go")
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(info["expected"]):
            await ws.recv()
        return {"recv_s": time.perf_counter() - t0, "client_cpu_s": time.process_time() - c0}


async def _raw_client(info: dict[str, Any], protocol: str, pipe: Connection) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", info["port"])
    key = base64.b64encode(os.urandom(16)).decode()
    path = "/stream" if protocol == "binance" else "/"
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())  # fmt: skip
    await reader.readuntil(b"\r\n\r\n")
    body = _subscribe_message(info, protocol)
    n = len(body)  # a masked client text frame, mask key 0 (payload unchanged)
    header = b"\x81\xfe" + n.to_bytes(2, "big") if n < 65536 else b"\x81\xff" + n.to_bytes(8, "big")
    writer.write(header + b"\x00\x00\x00\x00" + body)
    await reader.read(4096)  # the subscription ack
    pipe.send("go")
    c0, t0 = time.process_time(), time.perf_counter()
    received = 0
    while chunk := await reader.read(1 << 20):  # until the server closes
        received += len(chunk)
    writer.close()
    return {"recv_s": time.perf_counter() - t0, "client_cpu_s": time.process_time() - c0,
            "bytes": received}  # fmt: skip


def main() -> None:
    """Run once and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--protocol", choices=["binance", "coinbase"], default="binance")
    parser.add_argument("--client", choices=["websockets", "raw"], default="websockets")
    parser.add_argument("--send-time", action="store_true")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_server, args=(theirs, args.protocol, args.symbols, args.frames,
                                              args.send_time))  # fmt: skip
    proc.start()
    info = ours.recv()
    client = _raw_client if args.client == "raw" else _websockets_client

    async def run() -> tuple[dict, dict]:
        task = asyncio.create_task(client(info, args.protocol, ours))
        loop = asyncio.get_running_loop()
        server = await loop.run_in_executor(None, ours.recv)
        if args.client == "raw":
            ours.send("done")  # the server closes: the raw client sees EOF
        got = await task
        if args.client != "raw":
            ours.send("done")
        return got, server

    got, server = asyncio.run(run())
    proc.join(60)
    frames = info["expected"]  # market frames (the subscription ack not counted)
    print(f"{args.protocol}, {args.symbols} symbols, {frames:,} frames, {args.client} client"
          f"{', with rrr_send_ns' if args.send_time else ''}:")  # fmt: skip
    print(f"  encode  {args.frames / server['encode_s']:>10,.0f} frames/s "
          f"({server['encode_s']:.1f} s, before serving)")  # fmt: skip
    print(f"  send    {frames / server['send_s']:>10,.0f} frames/s (server wall, "
          f"{server['send_s']:.2f} s; server CPU {server['send_cpu_s']:.2f} s = "
          f"{frames / server['send_cpu_s']:,.0f} frames per CPU second)")  # fmt: skip
    if args.client != "raw":
        print(f"  receive {frames / got['recv_s']:>10,.0f} frames/s (client wall; client CPU "
              f"{got['client_cpu_s']:.2f} s)")  # fmt: skip
    os_load = os.getloadavg()[0]
    print(f"  load average {os_load:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
