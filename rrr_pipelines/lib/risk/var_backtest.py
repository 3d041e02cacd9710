"""One entry point for a VaR backtest run: forecast with a method, then test the hits."""

from __future__ import annotations

import pandas as pd

from rrr_live.risk.ewma import RiskInputError
from rrr_pipelines.lib.risk.backtest import VarBacktestResult, backtest_var
from rrr_pipelines.lib.risk.garch import garch_skewt_forecasts
from rrr_pipelines.lib.risk.rolling import ALL_METHODS, rolling_var_forecasts


def forecast_var(
    returns: pd.Series,
    method: str,
    alpha: float,
    start: pd.Timestamp,
    end: pd.Timestamp,
    window: int = 250,
    fit_until: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Out-of-sample 1-day VaR forecasts for ``[start, end]`` (columns ``ret``, ``var``, ...).

    For ``garch-skewt`` the model is fitted through ``fit_until`` (default: the last day before
    ``start``) and ``window`` is the minimum estimation sample; the other methods roll a window of
    ``window`` returns that ends the day before each forecast day.

    Raises:
        RiskInputError: on an unknown method or invalid ranges.
    """
    if method not in ALL_METHODS:
        raise RiskInputError(f"unknown VaR method {method!r}; expected one of {ALL_METHODS}")
    if method == "garch-skewt":
        if fit_until is None:
            fit_until = start - pd.Timedelta(days=1)
        frame, _ = garch_skewt_forecasts(returns, alpha, fit_until, start, end, min_obs=window)
        return frame
    return rolling_var_forecasts(returns, method, alpha, start, end, window=window)


def run_var_backtest(
    returns: pd.Series,
    method: str,
    alpha: float,
    start: pd.Timestamp,
    end: pd.Timestamp,
    window: int = 250,
    fit_until: pd.Timestamp | None = None,
) -> tuple[VarBacktestResult, pd.DataFrame]:
    """Forecast VaR with ``method`` and backtest it; returns the result and the forecast frame."""
    frame = forecast_var(returns, method, alpha, start, end, window, fit_until)
    result = backtest_var(frame["ret"], frame["var"], alpha, model=method)
    return result, frame
