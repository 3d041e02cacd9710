"""Scores -> target weights -> target positions -> order sizes, vectorized over a batch.

Pipeline for the symbols of one decision batch:

1. **Score to raw weight**: ``sign`` mode gives ``sign(score)``; ``linear`` gives
   ``clip(score * score_scale, -1, 1)``. ``|score| <= entry_threshold`` gives 0; ``long_only``
   clips negatives to 0; NaN scores are not traded.
2. **Volatility targeting** (if ``target_vol``): ``w = raw * target_vol / sigma_annual`` with
   ``sigma_annual = sigma_bar * sqrt(periods_per_year)``; unknown volatility gives weight 0.
3. **Caps**: ``|w| <= max_weight``; the batch is scaled so that the batch weights plus the
   other symbols' current weights stay within ``max_gross_leverage``.
4. **Turnover control**: resizing an existing position by less than ``rebalance_threshold``
   (in weight) is skipped; entries, exits and flips always go through (so ``inf`` gives pure
   buy-and-hold). If the batch's total ``|dw|`` exceeds ``max_turnover`` every move is scaled
   down proportionally.
5. **Sizes**: ``target_lots = trunc(w * equity / price / lot)`` (toward zero, after snapping
   a relative 1e-12 of float noise), order
   ``delta = target_lots - position_lots``; deltas below the instrument's minimum notional are
   dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from rrr_live.portfolio.numeric import fsum

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """How scores become positions (see the module docstring for the exact rules)."""

    mode: Literal["sign", "linear"] = "sign"
    score_scale: float = 1.0
    entry_threshold: float = 0.0
    long_only: bool = False
    target_vol: float | None = None
    vol_lookback: int = 20
    periods_per_year: float = 252.0
    max_weight: float = 1.0
    max_gross_leverage: float = 1.0
    rebalance_threshold: float = 0.0
    max_turnover: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("sign", "linear"):
            raise ValueError(f"StrategyConfig.mode must be 'sign' or 'linear', got {self.mode!r}")
        if self.target_vol is not None and self.target_vol <= 0:
            raise ValueError(f"target_vol must be > 0 or None, got {self.target_vol}")
        if self.max_weight <= 0 or self.max_gross_leverage <= 0:
            raise ValueError("max_weight and max_gross_leverage must be > 0")
        if self.rebalance_threshold < 0 or self.entry_threshold < 0:
            raise ValueError("rebalance_threshold and entry_threshold must be >= 0")
        if self.vol_lookback < 2:
            raise ValueError(f"vol_lookback must be >= 2, got {self.vol_lookback}")


class Strategy:
    """Vectorized target sizing and order generation for one decision batch.

    Args:
        config: the sizing rules.
    """

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config

    def raw_weights(self, scores: F64) -> F64:
        """Step 1: scores to raw weights in ``[-1, 1]`` (NaN stays NaN)."""
        cfg = self.config
        if cfg.mode == "sign":
            raw = np.sign(scores)
        else:
            raw = np.clip(scores * cfg.score_scale, -1.0, 1.0)
        raw = np.where(np.abs(scores) <= cfg.entry_threshold, 0.0, raw)
        if cfg.long_only:
            raw = np.maximum(raw, 0.0)
        return np.where(np.isnan(scores), np.nan, raw)

    def base_weights(self, scores: F64, bar_vol: F64 | None) -> F64:
        """Steps 1-2 and the per-symbol cap: weights that depend on the score and volatility only.

        These do not depend on the portfolio, so a backtest may compute them for every bar at
        once; NaN scores stay NaN.
        """
        cfg = self.config
        w = self.raw_weights(scores)
        if cfg.target_vol is not None:
            if bar_vol is None:
                raise ValueError("target_vol is set but no volatility was given")
            annual = bar_vol * math.sqrt(cfg.periods_per_year)
            ok = np.isfinite(annual) & (annual > 0)
            scaled = np.divide(w * cfg.target_vol, annual, out=np.zeros_like(w), where=ok)
            w = np.where(np.isnan(w), np.nan, scaled)
        return np.clip(w, -cfg.max_weight, cfg.max_weight)

    def target_weights(
        self, scores: F64, bar_vol: F64 | None, current_w: F64, others_gross: float = 0.0
    ) -> F64:
        """Steps 1-4: target weights (NaN where the score is NaN: keep the position).

        Args:
            scores: batch scores.
            bar_vol: per-bar volatility of each symbol (needed when ``target_vol`` is set).
            current_w: current signed weights (position notional / equity) of the batch.
            others_gross: sum of ``|w|`` of the symbols outside the batch.
        """
        return self.portfolio_weights(self.base_weights(scores, bar_vol), current_w, others_gross)

    def portfolio_weights(self, base_w: F64, current_w: F64, others_gross: float = 0.0) -> F64:
        """Steps 3-4 on :meth:`base_weights`: gross-leverage cap and turnover control."""
        w = base_w
        gross = float(fsum(np.abs(np.where(w == w, w, current_w))))
        room = max(0.0, self.config.max_gross_leverage - others_gross)
        if gross > room:
            w = w * (room / gross)
        return self._turnover(w, current_w)

    def _turnover(self, w: F64, current_w: F64) -> F64:
        cfg = self.config
        dw = w - current_w  # NaN where w is NaN
        if cfg.rebalance_threshold > 0:
            # the band only holds back resizing of an existing position; entries, exits and
            # flips always go through
            # (as a mask product: a held-back move becomes +-0.0, and current + -0.0 == current)
            dw = dw * ~((w * current_w > 0) & (np.abs(dw) < cfg.rebalance_threshold))
        if cfg.max_turnover is not None:
            total = float(np.nansum(np.abs(dw)))
            if total > cfg.max_turnover:
                dw = dw * (cfg.max_turnover / total)
        return current_w + dw

    @staticmethod
    def order_lots(
        target_w: F64,
        equity: float,
        price: F64,
        position_lots: I64,
        lot: F64,
        min_notional: F64,
    ) -> I64:
        """Step 5: signed order sizes in lots (0 = no order; NaN target = no order).

        ``price`` must be positive and finite (the backtest validates bars); an order of zero
        lots is never produced even when ``min_notional`` is 0.
        """
        raw = target_w * (equity / lot) / price
        # snap float noise away from zero (a weight recomputed from a position must give that
        # position back), then truncate toward zero
        target_lots = np.trunc(raw * (1.0 + 1e-12) + np.copysign(1e-9, raw))
        delta = target_lots - position_lots
        if min_notional.any():
            skip = ~(np.abs(delta) * (lot * price) >= min_notional)
        else:  # the same test without a minimum: only a NaN delta fails it
            skip = np.isnan(delta)
        return np.where(skip, 0.0, delta).astype(np.int64)
