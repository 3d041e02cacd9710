"""The capture process's GC tuning: applied, then undone by the context manager."""

from __future__ import annotations

import gc

from rrr_live.feeds.gc_tuning import GEN0, tuned_gc


def test_tuned_gc_freezes_start_up_and_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    with tuned_gc():
        assert gc.get_threshold()[0] == GEN0
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
