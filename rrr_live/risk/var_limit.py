"""Portfolio VaR for the pre-trade limit: parametric normal VaR from an EWMA covariance.

Returns are measured from one mark to the next for every symbol (a symbol not re-marked at an
event has a zero return there: its mark did not move), folded into
:class:`~rrr_live.risk.ewma.EwmaCovariance` once per mark event. The 1-event VaR of signed
position notionals ``n`` is ``z(1 - alpha) * sqrt(n' S n)`` in the quote currency (zero until
the covariance has data). Orders are checked in batch order, each against the book left by
the orders approved before it, with the quadratic form updated incrementally.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from rrr_live.risk.ewma import RISKMETRICS_LAMBDA, EwmaCovariance
from rrr_live.risk.var import check_alpha, norm_ppf

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


class _Covariance(EwmaCovariance):
    """:class:`EwmaCovariance` whose state can be set from a saved snapshot."""

    def load(self, cov: F64, count: int) -> None:
        """Replace the covariance and update count (a restored snapshot)."""
        self._cov = cov.copy()
        self._count = count


class PortfolioVar:
    """EWMA covariance of mark returns and the VaR of a notional vector.

    Args:
        n_symbols: the universe size.
        alpha: tail probability (0.01 = 99 % VaR).
        lam: EWMA decay.
    """

    def __init__(self, n_symbols: int, alpha: float = 0.01, lam: float = RISKMETRICS_LAMBDA):
        self.z = norm_ppf(1.0 - check_alpha(alpha))
        self.cov = _Covariance(n_symbols, lam)
        self.marks: F64 = np.full(n_symbols, np.nan)

    def on_marks(self, marks: F64) -> None:
        """Fold the returns from the previous marks to ``marks`` into the covariance."""
        prev = self.marks
        known = np.isfinite(prev) & np.isfinite(marks) & (prev > 0)
        if known.any():
            returns = np.zeros(len(marks))
            returns[known] = marks[known] / prev[known] - 1.0
            self.cov.update(returns)
        self.marks = marks.copy()

    def value(self, notional: F64) -> float:
        """Return the VaR of signed position notionals (0 before any return)."""
        if self.cov.n_updates == 0:
            return 0.0
        return self.z * math.sqrt(max(0.0, self.cov.portfolio_variance(notional)))

    def deny(self, notional: F64, live: B, idx: I64, d_notional: F64, limit: float) -> B:
        """Return which of the ``live`` orders would take the VaR past ``limit`` (in order).

        An order that lowers the VaR is never denied; approved orders move the book.
        """
        out = np.zeros(len(idx), dtype=bool)
        if self.cov.n_updates == 0:
            return out
        cov = self.cov.covariance()
        cn = cov @ notional
        q = float(notional @ cn)
        cap = (limit / self.z) ** 2
        for j in np.flatnonzero(live).tolist():
            i, d = int(idx[j]), float(d_notional[j])
            q_new = q + 2.0 * d * cn[i] + d * d * cov[i, i]
            if q_new > cap and q_new > q:
                out[j] = True
            else:
                cn += d * cov[:, i]
                q = q_new
        return out

    def state(self) -> tuple[tuple[float, ...], int, tuple[float, ...]]:
        """Return ``(covariance row-major, updates, marks)`` for a snapshot."""
        if self.cov.n_updates == 0:
            return (), 0, tuple(self.marks.tolist())
        cov = tuple(self.cov.covariance().ravel().tolist())
        return cov, self.cov.n_updates, tuple(self.marks.tolist())

    def load(self, cov: tuple[float, ...], updates: int, marks: tuple[float, ...]) -> None:
        """Restore what :meth:`state` returned."""
        n = len(self.marks)
        if len(marks) != n or (updates and len(cov) != n * n):
            raise ValueError(f"VaR state does not fit a universe of {n} symbols")
        self.marks = np.array(marks, dtype=np.float64)
        matrix = np.array(cov, dtype=np.float64).reshape(n, n) if updates else np.zeros((n, n))
        self.cov.load(matrix, updates)
