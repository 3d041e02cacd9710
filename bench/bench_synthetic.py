"""Synthetic universe generation rate: 1000 symbols x 5 days of 1-minute bars.

Crypto-style 24/7 bars (1440 per day) -> 7.2 M bars; equity-style XNYS (390 per session) is
also timed for comparison (5 sessions -> 1.95 M bars). Prints bars/s for each (best of N runs,
the full canonical DataFrame included).

    python bench/bench_synthetic.py [--repeat 3] [--symbols 1000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from rrr_pipelines.lib.sources.synthetic import SyntheticSource


def run(calendar: str, n_symbols: int, repeat: int) -> None:
    start = datetime(2024, 1, 8, tzinfo=UTC)  # Monday: 5 XNYS sessions Mon-Fri
    end = datetime(2024, 1, 13, tzinfo=UTC)
    src = SyntheticSource(n_symbols=n_symbols, interval="1m", seed=7, calendar=calendar)
    src.fetch(start, datetime(2024, 1, 9, tzinfo=UTC))  # warm-up (imports, calendar build)
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        frame = src.fetch(start, end)
        best = min(best, time.perf_counter() - t0)
        rows = len(frame)
        del frame
    style = "crypto 24/7, 1440 bars/day" if calendar == "24/7" else f"{calendar}, 390 bars/session"
    print(
        f"synthetic 1m, {n_symbols} symbols x 5 days ({style}): {rows:,} bars in {best:.2f} s "
        f"-> {rows / best:,.0f} bars/s (best of {repeat})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=1000)
    args = parser.parse_args()
    run("24/7", args.symbols, args.repeat)
    run("XNYS", args.symbols, args.repeat)


if __name__ == "__main__":
    main()
