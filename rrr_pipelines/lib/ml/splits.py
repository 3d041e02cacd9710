"""Purged, embargoed walk-forward segments: train, validation, stacking and a final holdout.

Positions are counted on the *grid*: the sorted distinct timestamps of the rows. The grid is cut
at three boundaries ``b1 < b2 < b3`` into raw ranges ``[0, b1)`` train, ``[b1, b2)``
validation, ``[b2, b3)`` stacking and ``[b3, N)`` holdout. Then, for every segment:

* **purge** - a row is kept only if its label window ``(t, t+h]`` ends before the next raw
  boundary (grid position ``g + h < hi``, or the row's ``label_end`` before ``grid[hi]`` when
  label end times are given); rows whose label window is incomplete are dropped everywhere;
* **embargo** - the first ``embargo`` grid steps after each boundary are dropped from the later
  segment.

So every kept row's label window lies inside its own segment, and at least ``embargo + 1`` grid
steps separate the last training label's end from the first later row. Walk-forward folds cut
the development part ``[0, b2)`` into expanding (or rolling) train windows, each followed by a
validation block as long as the validation segment; the last fold is the main train/validation
split. No tuning may touch the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from rrr_live.errors import RRRError

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class SplitError(RRRError, ValueError):
    """Segments cannot be formed as configured; the message names the segment and the numbers."""


@dataclass(frozen=True)
class SplitConfig:
    """How the grid is cut.

    Attributes:
        horizon: label horizon ``h`` in grid steps (>= 1); used when no ``label_end`` is given.
        embargo: grid steps dropped after each boundary (>= 0).
        validation_fraction, stacking_fraction, holdout_fraction: shares of the grid when the
            matching ``*_start`` timestamp is not given.
        n_folds: walk-forward folds over train + validation (>= 1).
        max_train_size: grid steps of a rolling train window; ``None`` = expanding.
        validation_start, stacking_start, holdout_start: explicit tz-aware boundaries
            (the first timestamp of the segment); all three or none.
    """

    horizon: int = 1
    embargo: int = 0
    validation_fraction: float = 0.15
    stacking_fraction: float = 0.15
    holdout_fraction: float = 0.15
    n_folds: int = 3
    max_train_size: int | None = None
    validation_start: datetime | None = None
    stacking_start: datetime | None = None
    holdout_start: datetime | None = None

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.embargo < 0 or self.n_folds < 1:
            raise SplitError(
                f"need horizon >= 1, embargo >= 0, n_folds >= 1; got {self.horizon}, "
                f"{self.embargo}, {self.n_folds}"
            )
        fractions = (self.validation_fraction, self.stacking_fraction, self.holdout_fraction)
        if any(not 0.0 < f < 1.0 for f in fractions) or sum(fractions) >= 1.0:
            raise SplitError(f"segment fractions must be in (0, 1) and sum below 1: {fractions}")
        starts = (self.validation_start, self.stacking_start, self.holdout_start)
        given = [s is not None for s in starts]
        if any(given) and not all(given):
            raise SplitError("give validation_start, stacking_start and holdout_start together")
        if any(s is not None and s.tzinfo is None for s in starts):
            raise SplitError("segment start timestamps must be tz-aware")


@dataclass(frozen=True)
class Segment:
    """Rows of one segment: positions into the timestamp array given to :func:`make_segments`."""

    name: str
    rows: IntArray
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    raw_range: tuple[int, int]

    def mask(self, n_rows: int) -> BoolArray:
        """Boolean mask of length ``n_rows`` selecting the segment's rows."""
        out = np.zeros(n_rows, dtype=bool)
        out[self.rows] = True
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (rows, first and last kept timestamp, raw grid range)."""
        return {
            "rows": len(self.rows),
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "grid_range": list(self.raw_range),
        }


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold of the development part."""

    index: int
    train: Segment
    validation: Segment


@dataclass(frozen=True)
class Segments:
    """The four segments, the walk-forward folds and the grid they were cut on."""

    train: Segment
    validation: Segment
    stacking: Segment
    holdout: Segment
    folds: tuple[Fold, ...]
    grid: pd.DatetimeIndex
    config: SplitConfig

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of every segment and fold, e.g. for asset metadata."""
        out: dict[str, Any] = {
            s.name: s.summary() for s in (self.train, self.validation, self.stacking, self.holdout)
        }
        out["folds"] = [
            {"train": f.train.summary(), "validation": f.validation.summary()} for f in self.folds
        ]
        out["horizon"] = self.config.horizon
        out["embargo"] = self.config.embargo
        return out


class _Layout:
    """Grid positions of rows and of their label ends."""

    def __init__(self, ts: pd.DatetimeIndex, horizon: int, label_end: Any) -> None:
        self.ts = ts
        self.grid = ts.unique().sort_values()
        self.pos = self.grid.get_indexer(ts).astype(np.int64)
        n = len(self.grid)
        if label_end is None:
            end = self.pos + horizon
            self.end = np.where(end < n, end, np.iinfo(np.int64).max)
        else:
            ends = _as_utc_index(label_end, "label_end")
            if len(ends) != len(ts):
                raise SplitError(f"label_end has {len(ends)} entries for {len(ts)} timestamps")
            if (ends[ends.notna()] <= ts[ends.notna()]).any():
                raise SplitError("every label_end must be later than its row's timestamp")
            # first grid position at or after label_end; a label ending between grid points
            # counts as reaching the next one
            pos = self.grid.searchsorted(ends, side="left").astype(np.int64)
            self.end = np.where(ends.notna(), pos, np.iinfo(np.int64).max)

    def segment(self, name: str, lo: int, hi: int, embargo: int) -> Segment:
        keep = (self.pos >= lo + embargo) & (self.pos < hi) & (self.end < hi)
        rows = np.flatnonzero(keep).astype(np.int64)
        if rows.size == 0:
            raise SplitError(
                f"segment {name!r} (grid [{lo}, {hi}), embargo {embargo}) is empty after "
                "purging and embargo; use more data or smaller horizon/embargo/folds"
            )
        kept = self.ts[rows]
        return Segment(name, rows, kept.min(), kept.max(), (lo, hi))


def _as_utc_index(values: Any, what: str) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(values)
    if index.tz is None:
        raise SplitError(f"{what} must be tz-aware timestamps")
    return index.tz_convert("UTC")


def _boundaries(grid: pd.DatetimeIndex, config: SplitConfig) -> tuple[int, int, int]:
    n = len(grid)
    if config.holdout_start is not None:
        cuts = [config.validation_start, config.stacking_start, config.holdout_start]
        b1, b2, b3 = (int(grid.searchsorted(pd.Timestamp(c), side="left")) for c in cuts)
    else:
        b3 = n - round(n * config.holdout_fraction)
        b2 = b3 - round(n * config.stacking_fraction)
        b1 = b2 - round(n * config.validation_fraction)
    if not 0 < b1 < b2 < b3 < n:
        raise SplitError(f"segment boundaries {b1}, {b2}, {b3} do not cut a grid of {n} steps")
    return b1, b2, b3


def make_segments(timestamps: Any, config: SplitConfig, label_end: Any = None) -> Segments:
    """Cut rows into purged, embargoed train/validation/stacking/holdout segments and folds.

    Args:
        timestamps: tz-aware timestamp per row (a DatetimeIndex, Series or array; repeated
            across symbols for panel data, e.g. the ``ts`` level of a feature frame).
        config: boundaries, horizon, embargo and folds.
        label_end: optional per-row end of the label window (``make_labels(...)["label_end"]``);
            when given it decides purging, otherwise ``grid position + horizon`` does.

    Returns:
        The :class:`Segments`; row positions index into ``timestamps``.

    Raises:
        SplitError: on naive timestamps, boundaries that do not cut the grid, or a segment or
            fold left empty.
    """
    ts = _as_utc_index(timestamps, "timestamps")
    layout = _Layout(ts, config.horizon, label_end)
    b1, b2, b3 = _boundaries(layout.grid, config)
    e = config.embargo
    folds = []
    width = b2 - b1
    for k in range(config.n_folds):
        v_lo = b1 - (config.n_folds - 1 - k) * width
        if v_lo <= 0:
            raise SplitError(f"{config.n_folds} folds of {width} steps do not fit before {b1}")
        t_lo = 0 if config.max_train_size is None else max(0, v_lo - config.max_train_size)
        folds.append(
            Fold(
                k,
                layout.segment(f"fold{k}_train", t_lo, v_lo, 0),
                layout.segment(f"fold{k}_validation", v_lo, v_lo + width, e),
            )
        )
    return Segments(
        train=replace(folds[-1].train, name="train"),
        validation=replace(folds[-1].validation, name="validation"),
        stacking=layout.segment("stacking", b2, b3, e),
        holdout=layout.segment("holdout", b3, len(layout.grid), e),
        folds=tuple(folds),
        grid=layout.grid,
        config=config,
    )
