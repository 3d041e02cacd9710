"""Forward-return labels over a configurable horizon (Dagster-free).

The label at bar ``t`` of a symbol is the return of its price over ``(t, t+h]``: from the close
of bar ``t`` to the close of the ``h``-th next bar of the *same symbol* (bars are counted, as the
features count them). The price is ``adj_close`` when the column is present, else ``close``.
With ``vol_scale`` the return is divided by ``sigma_t * sqrt(h)``, where ``sigma_t`` is the
close-to-close realized volatility over the ``vol_window`` one-bar log returns ending at ``t``
(known at ``t``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from rrr_live.errors import RRRError


class LabelError(RRRError, ValueError):
    """Invalid label configuration or input frame; the message names the problem."""


@dataclass(frozen=True)
class LabelConfig:
    """How labels are built.

    Attributes:
        horizon: ``h``, bars ahead (>= 1).
        kind: ``"log"`` (``log(p_{t+h}/p_t)``) or ``"simple"`` (``p_{t+h}/p_t - 1``).
        vol_scale: divide by trailing volatility known at ``t`` times ``sqrt(h)``.
        vol_window: one-bar returns in the trailing volatility (>= 2).
    """

    horizon: int = 1
    kind: Literal["log", "simple"] = "log"
    vol_scale: bool = False
    vol_window: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or self.horizon < 1:
            raise LabelError(f"LabelConfig.horizon must be an int >= 1, got {self.horizon!r}")
        if self.kind not in ("log", "simple"):
            raise LabelError(f"LabelConfig.kind must be 'log' or 'simple', got {self.kind!r}")
        if not isinstance(self.vol_window, int) or self.vol_window < 2:
            raise LabelError(f"LabelConfig.vol_window must be an int >= 2, got {self.vol_window!r}")


def make_labels(bars: pd.DataFrame, config: LabelConfig) -> pd.DataFrame:
    """Compute labels for every bar of every symbol.

    Args:
        bars: canonical bar frame (needs ``symbol``, ``ts`` tz-aware, ``close``; ``adj_close``
            is used when present); any row order, one interval.
        config: the label configuration.

    Returns:
        A frame indexed by ``(ts, symbol)`` (sorted, aligned with ``compute_features``) with
        ``label`` (float64, NaN where fewer than ``h`` later bars exist or the volatility is
        not yet known or zero) and ``label_end`` (the ``ts`` of bar ``t+h``, NaT if none):
        the label window is ``(ts, label_end]`` in bar-open times.

    Raises:
        LabelError: on a missing column, a naive ``ts``, duplicate rows or a non-positive price.
    """
    _validate(bars)
    price_col = "adj_close" if "adj_close" in bars.columns else "close"
    frame = pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(bars["ts"]).tz_convert("UTC"),
            "symbol": bars["symbol"].astype(str).to_numpy(),
            "lp": np.log(bars[price_col].to_numpy(dtype=np.float64)),
        }
    ).sort_values(["symbol", "ts"], kind="stable")
    h = config.horizon
    groups = frame.groupby("symbol", sort=False)
    ahead = groups["lp"].shift(-h) - frame["lp"]
    label = np.expm1(ahead) if config.kind == "simple" else ahead
    if config.vol_scale:
        ret = groups["lp"].diff()
        mean_sq = (
            (ret**2)
            .groupby(frame["symbol"], sort=False)
            .rolling(config.vol_window, min_periods=config.vol_window)
            .mean()
            .reset_index(level=0, drop=True)
        )
        sigma = np.sqrt(mean_sq.reindex(frame.index))
        label = (label / (sigma * math.sqrt(h))).where(sigma > 0.0)
    out = pd.DataFrame(
        {
            "label": label.to_numpy(dtype=np.float64),
            "label_end": groups["ts"].shift(-h).to_numpy(),
        },
        index=pd.MultiIndex.from_arrays(
            [frame["ts"], pd.Index(frame["symbol"], dtype=str)], names=["ts", "symbol"]
        ),
    )
    return out.sort_index(level=["ts", "symbol"])


def forward_returns(bars: pd.DataFrame, config: LabelConfig) -> pd.Series:
    """The ``label`` column of :func:`make_labels` as a Series named ``"label"``."""
    return make_labels(bars, config)["label"]


def _validate(bars: pd.DataFrame) -> None:
    missing = {"symbol", "ts", "close"} - set(bars.columns)
    if missing:
        raise LabelError(f"bar frame lacks column(s) {sorted(missing)}")
    if not isinstance(bars["ts"].dtype, pd.DatetimeTZDtype):
        raise LabelError("bar column 'ts' must be tz-aware (UTC)")
    if bars.duplicated(["symbol", "ts"]).any():
        raise LabelError("bar frame has duplicate (symbol, ts) rows")
    for col in ("close", "adj_close"):
        if col in bars.columns:
            values = bars[col].to_numpy(dtype=np.float64)
            if not (np.isfinite(values) & (values > 0.0)).all():
                raise LabelError(f"bar column {col!r} has non-positive or non-finite prices")
