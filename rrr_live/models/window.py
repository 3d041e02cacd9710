"""Vectorized per-symbol ring buffer of the last T feature vectors.

Window members are served with exactly the windows they were trained on: after each bar close
the batcher pushes the new feature vectors of the symbols whose bar closed, then reads their
windows (oldest first) and runs the network over the whole window again.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rrr_live.models.errors import InferenceInputError

IntArray = npt.NDArray[np.intp]


class RingWindow:
    """Ring buffer of shape ``(n_symbols, T, n_features)``.

    Each symbol has its own write position and fill count, so symbols whose bars close at
    different times are updated independently.

    Args:
        n_symbols: Number of symbol slots.
        window: Window length T.
        n_features: Width of a feature vector.
        dtype: Storage dtype.
    """

    def __init__(
        self, n_symbols: int, window: int, n_features: int, dtype: npt.DTypeLike = np.float32
    ) -> None:
        if n_symbols < 1 or window < 1 or n_features < 1:
            raise InferenceInputError(
                f"RingWindow needs positive sizes, got ({n_symbols}, {window}, {n_features})"
            )
        self.n_symbols = n_symbols
        self.window = window
        self.n_features = n_features
        self._buf = np.zeros((n_symbols, window, n_features), dtype=dtype)
        self._pos = np.zeros(n_symbols, dtype=np.intp)
        self._count = np.zeros(n_symbols, dtype=np.intp)
        self._offsets = np.arange(window, dtype=np.intp)

    def _rows(self, rows: npt.ArrayLike | None) -> IntArray:
        if rows is None:
            return np.arange(self.n_symbols, dtype=np.intp)
        idx = np.asarray(rows, dtype=np.intp).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_symbols):
            raise InferenceInputError(f"symbol rows must lie in [0, {self.n_symbols})")
        return idx

    def push(self, values: npt.ArrayLike, rows: npt.ArrayLike | None = None) -> None:
        """Append one feature vector per symbol in ``rows`` (all symbols by default).

        Args:
            values: ``(len(rows), n_features)`` new feature vectors.
            rows: Symbol slots to update; each at most once per call.
        """
        idx = self._rows(rows)
        vals = np.asarray(values, dtype=self._buf.dtype)
        if vals.shape != (idx.size, self.n_features):
            raise InferenceInputError(
                f"push expects values of shape ({idx.size}, {self.n_features}), got {vals.shape}"
            )
        if np.unique(idx).size != idx.size:
            raise InferenceInputError("push got the same symbol row twice in one call")
        self._buf[idx, self._pos[idx]] = vals
        self._pos[idx] = (self._pos[idx] + 1) % self.window
        self._count[idx] = np.minimum(self._count[idx] + 1, self.window)

    def windows(self, rows: npt.ArrayLike | None = None) -> npt.NDArray[np.floating]:
        """Return the windows of ``rows`` in time order (oldest first), ``(k, T, n_features)``.

        Slots of a symbol that has seen fewer than T vectors hold zeros at the oldest end; use
        :meth:`ready` to know which windows are full.

        Args:
            rows: Symbol slots to read (all by default).

        Returns:
            A new array (safe to keep or modify).
        """
        idx = self._rows(rows)
        order = (self._pos[idx, None] + self._offsets[None, :]) % self.window
        out: npt.NDArray[np.floating] = self._buf[idx[:, None], order]
        return out

    def ready(
        self, rows: npt.ArrayLike | None = None, length: int | None = None
    ) -> npt.NDArray[np.bool_]:
        """Whether each symbol in ``rows`` holds ``length`` vectors (default: a full window).

        Args:
            rows: Symbol slots (all by default).
            length: Vectors needed (a model may use the last ``length`` of a longer ring).

        Returns:
            Boolean mask of shape ``(k,)``.
        """
        need = self.window if length is None else min(length, self.window)
        mask: npt.NDArray[np.bool_] = self._count[self._rows(rows)] >= need
        return mask

    def reset(self, rows: npt.ArrayLike | None = None) -> None:
        """Forget the history of ``rows`` (e.g. after a data gap).

        Args:
            rows: Symbol slots (all by default).
        """
        idx = self._rows(rows)
        self._buf[idx] = 0
        self._pos[idx] = 0
        self._count[idx] = 0
