"""Batch predictions of an ensemble on training-style data (stacking, evaluation, backtests).

Windows are rebuilt from ``(ts, symbol)`` with :func:`window_rows`, the same windows training
used; rows without a full window get NaN from window members.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rrr_live.models import Ensemble
from rrr_pipelines.lib.ml.lightning_modules import window_rows

if TYPE_CHECKING:
    from rrr_pipelines.lib.ml.training import TrainingData


def member_predictions(
    ensemble: Ensemble,
    data: TrainingData,
    names: Sequence[str],
    rows: npt.NDArray[np.bool_] | None = None,
    batch_rows: int = 8192,
) -> dict[str, npt.NDArray[np.float64]]:
    """Batch predictions of members on rows of ``data`` (NaN where a window is incomplete).

    Args:
        ensemble: The ensemble.
        data: The data (windows are rebuilt from its ``ts``/``symbols``).
        names: Members to run.
        rows: Boolean mask of rows to predict (all by default).
        batch_rows: Rows per inference batch.

    Returns:
        ``{member: (k,) predictions}`` for the ``k`` selected rows, in row order.
    """
    sel = np.flatnonzero(rows) if rows is not None else np.arange(data.X.shape[0])
    x = np.asarray(data.X, dtype=np.float32)
    wins = None
    if ensemble.window and data.ts is not None and data.symbols is not None:
        wins = window_rows(data.ts, data.symbols, ensemble.window)
    out = {n: np.full(sel.size, np.nan) for n in names}
    has_win = wins[sel, -1] >= 0 if wins is not None else np.zeros(sel.size, dtype=bool)
    flat_names = [n for n in names if ensemble.member(n).input_kind == "flat"]
    win_names = [n for n in names if ensemble.member(n).input_kind == "window"]
    for start in range(0, sel.size, batch_rows):
        part = slice(start, start + batch_rows)
        idx = sel[part]
        if flat_names:
            res = ensemble.predict_members(x[idx], None, flat_names)
            for n in flat_names:
                out[n][part] = res[n]
        ok = has_win[part]
        if win_names and ok.any():
            assert wins is not None
            res = ensemble.predict_members(None, x[wins[idx[ok]]], win_names)
            for n in win_names:
                out[n][np.flatnonzero(ok) + start] = res[n]
    return out


def predict_rows(
    ensemble: Ensemble, data: TrainingData, rows: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.float64]:
    """Stacked forecast for rows of ``data`` (NaN where a weighted window member has no window).

    Args:
        ensemble: The ensemble.
        data: The data.
        rows: Boolean row mask (all rows by default).

    Returns:
        ``(k,)`` forecasts in row order.
    """
    weights = ensemble.stacking_weights(ensemble.live_members)
    preds = member_predictions(ensemble, data, list(weights), rows)
    return np.asarray(sum(w * preds[n] for n, w in weights.items()), dtype=np.float64)
