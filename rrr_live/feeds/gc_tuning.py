"""Garbage-collector settings for a process that captures a feed.

A feed at tens of thousands of events a second allocates a few objects per event, and the
journal's queue keeps up to ``queue_max`` records alive for a moment. With CPython's default
thresholds (700, 10, 10) those records are traversed again and again by young collections and,
once promoted, by full ones: a fifth of the capture process's CPU in the 1000-symbol bench.
Freezing what start-up built (modules, instruments, books: never garbage) and collecting the
young generation every ``gen0`` allocations instead of 700 removes most of it; cycles are still
collected, only less often, so memory stays bounded (the flood test measures it).

Call :func:`tune_gc` once when start-up is done (instruments loaded, books built), before the
capture loop; :func:`tuned_gc` undoes it on exit (tests, benches that run several phases).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GEN0 = 50_000
GEN1 = 20
GEN2 = 10


def tune_gc(gen0: int = GEN0, gen1: int = GEN1, gen2: int = GEN2) -> tuple[int, int, int]:
    """Collect, freeze the survivors, set the thresholds; return the previous thresholds."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, gen1, gen2)
    return previous


@contextmanager
def tuned_gc(gen0: int = GEN0, gen1: int = GEN1, gen2: int = GEN2) -> Iterator[None]:
    """:func:`tune_gc` for the duration of the block, then restore the thresholds and unfreeze."""
    previous = tune_gc(gen0, gen1, gen2)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
