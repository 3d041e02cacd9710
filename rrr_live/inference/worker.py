"""Batched inference off the event loop, in one dedicated thread.

Each decision batch first installs any staged model (:meth:`ModelLifecycle.apply_pending`, on
the event loop, so a batch never mixes versions), then scores the ``champion`` and, on the same
inputs, the ``shadow`` model in the inference thread under ``torch.inference_mode``. Staleness is
measured in data time: features older than ``max_staleness_ns`` at the batch's data time give no
prediction, so a fast replay is never "stale" and a stalled feed never trades.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from rrr_live.inference.lifecycle import LifecycleEvent, ModelLifecycle, Served
from rrr_live.models import verdict as rule
from rrr_live.models.errors import InferenceInputError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BatchScores:
    """The forecasts of one decision batch.

    Attributes:
        champion_version: Version that produced ``forecast`` ("" when none served).
        forecast: Trading forecast per batch row, or ``None`` (no model, or stale inputs).
        shadow_version: Version of the shadow model ("" when none).
        shadow_forecast: Shadow forecast on the same inputs (never traded), or ``None``.
        swaps: Model swaps installed just before this batch.
        skipped: Why no forecast was made ("" when one was).
    """

    champion_version: str
    forecast: FloatArray | None
    shadow_version: str
    shadow_forecast: FloatArray | None
    swaps: tuple[LifecycleEvent, ...] = ()
    skipped: str = ""


class InferenceWorker:
    """Runs model forward passes in one dedicated thread.

    Args:
        lifecycle: Source of the serving models.
        max_staleness_ns: Oldest feature data time (relative to the batch time) still scored.
    """

    def __init__(self, lifecycle: ModelLifecycle, max_staleness_ns: int) -> None:
        self.lifecycle = lifecycle
        self.max_staleness_ns = max_staleness_ns
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rrr-inference")

    def champion_window(self) -> int:
        """Window length the serving champion needs (0: none, or no champion)."""
        champ = self.lifecycle.serving(rule.CHAMPION)
        return champ.model.window_length if champ is not None else 0

    def close(self) -> None:
        """Stop the inference thread after the running forward pass."""
        self._pool.shutdown(wait=True)

    async def score(
        self,
        batch_ts_ns: int,
        features_ts_ns: int,
        features: npt.NDArray[np.floating],
        windows: npt.NDArray[np.floating] | None,
    ) -> BatchScores:
        """Score one batch with the champion and the shadow model.

        Args:
            batch_ts_ns: Data time of the decision (the bar close).
            features_ts_ns: Data time of the oldest feature row used.
            features: ``(n, F)`` raw features.
            windows: ``(n, T, F)`` windows, or ``None`` when no served model needs them.

        Returns:
            The forecasts (``forecast`` is ``None`` when nothing may be predicted).
        """
        swaps = tuple(self.lifecycle.apply_pending())
        champ = self.lifecycle.serving(rule.CHAMPION)
        shadow = self.lifecycle.serving(rule.SHADOW)
        cv, sv = (champ.version if champ else ""), (shadow.version if shadow else "")
        if batch_ts_ns - features_ts_ns > self.max_staleness_ns:
            return BatchScores(cv, None, sv, None, swaps, "stale features")
        if champ is None and shadow is None:
            return BatchScores(cv, None, sv, None, swaps, "no model")
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(self._pool, _forward, champ, shadow, features, windows)
        return BatchScores(cv, out[0], sv, out[1], swaps, "" if champ else "no champion")


def _forward(
    champ: Served | None,
    shadow: Served | None,
    features: npt.NDArray[np.floating],
    windows: npt.NDArray[np.floating] | None,
) -> tuple[FloatArray | None, FloatArray | None]:
    with torch.inference_mode():
        return _one(champ, features, windows), _one(shadow, features, windows)


def _one(
    served: Served | None,
    features: npt.NDArray[np.floating],
    windows: npt.NDArray[np.floating] | None,
) -> FloatArray | None:
    if served is None:
        return None
    model = served.model
    if not model.needs_windows:  # a features-only model (e.g. a linear baseline)
        ok = np.isfinite(features).all(axis=1)
        out = np.full(len(features), np.nan)
        if ok.any():
            out[ok] = model.predict(features[ok], None)
        return out
    if windows is None:
        raise InferenceInputError(f"v{served.version} needs feature windows; none were given")
    # The runner's ring may be longer than this model's window (it serves every alias).
    return np.asarray(model.predict(None, windows[:, -model.window_length :]), dtype=np.float64)
