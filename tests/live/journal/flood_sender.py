"""The replay exchange as a separate process flooding a synthetic Coinbase universe.

``python -m tests.live.journal.flood_sender --frames N --symbols S`` prints one line
``<ws_url> <http_url>`` once listening, sends as fast as the client reads (frames encoded lazily,
so a million frames need no upfront encoding time or memory) and exits when the tape is done.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rrr_live.exchange.app import run_exchange
from rrr_live.exchange.encode import TickEncoder
from rrr_live.exchange.synthetic import synthetic_events, synthetic_symbols
from rrr_live.exchange.tape import Tape


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, required=True)
    ap.add_argument("--symbols", type=int, default=20)
    args = ap.parse_args()
    specs = synthetic_symbols("coinbase", args.symbols)
    events = synthetic_events(TickEncoder("coinbase", specs), specs, args.frames, rate=1e6)
    tape = Tape("coinbase", events, instruments=specs, symbols=[s.symbol for s in specs])

    def ready(server: object, _endpoint: object) -> None:
        sys.stdout.write(f"{server.ws_url} {server.http_url}\n")  # type: ignore[attr-defined]
        sys.stdout.flush()

    asyncio.run(run_exchange(tape, exit_when_done=True, on_ready=ready, speed=None))


if __name__ == "__main__":
    main()
