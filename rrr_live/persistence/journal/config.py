"""Tuning of the journal writer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WriterConfig:
    """Tuning of a :class:`JournalWriter`.

    Args:
        queue_max: records the buffer holds before ``put`` waits.
        batch_max: records per database transaction.
        linger_s: how long a partial batch waits for more records.
        ready_max: batches waiting for the database stage before new ones spill.
        spill_after_s: how long a batch waits for the database stage before it spills.
        write_timeout_s: limit on one batch transaction (beyond the pool's own timeouts).
        soft_cap_bytes: spill size that turns the health to ``REDUCING`` (logged WARNING).
        hard_cap_bytes: spill size past which records are dropped (counted, CRITICAL).
        segment_bytes: size of one spill segment file.
        probe_initial_s: first delay before probing a failed database; doubles, full jitter.
        probe_max_s: the longest delay between probes.
        retention_days: keep journal partitions of this many days (None: keep all).
        retention_check_s: how often (injected clock) to apply the retention.
    """

    queue_max: int = 20_000
    batch_max: int = 5_000
    linger_s: float = 0.02
    ready_max: int = 2
    spill_after_s: float = 1.0
    write_timeout_s: float = 15.0
    soft_cap_bytes: int = 512 << 20
    hard_cap_bytes: int = 2 << 30
    segment_bytes: int = 64 << 20
    probe_initial_s: float = 0.05
    probe_max_s: float = 1.0
    retention_days: int | None = None
    retention_check_s: float = 3600.0
