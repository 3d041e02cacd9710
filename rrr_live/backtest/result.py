"""The output of a backtest: orders, fills, equity curve, statistics, and content hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

from rrr_live.risk.state import StateChange


def frame_hash(frame: pd.DataFrame) -> str:
    """Return a SHA-256 of a frame's values (stable across processes and runs)."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, frame.columns)).encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest produced.

    Attributes:
        orders: one row per order (``order_id, ts, symbol, side, qty, ref_price, status,
            reason``); ``ts`` is the decision time (bar close).
        fills: one row per fill (``ts, order_id, symbol, side, qty, price, fee, notional``).
        equity: one row per decision batch (``ts, equity, cash, gross_exposure,
            net_exposure, drawdown, state``), recorded after fills and marks at ``ts``.
        stats: statistics from :func:`~rrr_live.backtest.stats.compute_stats` plus counts.
        state_changes: transitions of the trading state.
        signal_name: label of the signal provider.
    """

    orders: pd.DataFrame
    fills: pd.DataFrame
    equity: pd.DataFrame
    stats: dict[str, float]
    state_changes: list[StateChange] = field(default_factory=list)
    signal_name: str = ""

    def hashes(self) -> dict[str, str]:
        """Return SHA-256 hashes of the orders, fills and equity frames."""
        return {
            "orders": frame_hash(self.orders),
            "fills": frame_hash(self.fills),
            "equity": frame_hash(self.equity),
        }

    def stats_frame(self) -> pd.DataFrame:
        """Return the statistics as a one-column frame indexed by statistic name."""
        return pd.DataFrame({"value": pd.Series(self.stats, dtype="float64")}).rename_axis("stat")
