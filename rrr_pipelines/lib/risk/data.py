"""Returns for the risk maths: loading bundled prices and turning bar frames into returns.

Convention: a return is ``100 * (adj_close_t / adj_close_{t-1} - 1)`` (percent), indexed by the
bar's date as a tz-aware UTC timestamp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import pandas as pd

from rrr_live.risk.ewma import RiskInputError


def _load_sp500() -> pd.DataFrame:
    import arch.data.sp500  # lazy: arch is slow to import

    return arch.data.sp500.load()


def _load_nasdaq() -> pd.DataFrame:
    import arch.data.nasdaq

    return arch.data.nasdaq.load()


BUNDLED_LOADERS: Final[dict[str, Callable[[], pd.DataFrame]]] = {
    "SP500": _load_sp500,
    "NASDAQ": _load_nasdaq,
}


def load_prices(source: str, symbol: str) -> pd.Series:
    """Return the adjusted close of one symbol, indexed by tz-aware UTC date.

    Only ``source="bundled"`` (arch's S&P 500 and NASDAQ data) exists today; a database-backed
    source plugs in here later.

    Raises:
        RiskInputError: on an unknown source or symbol.
    """
    if source != "bundled":
        raise RiskInputError(f"unknown price source {source!r}; expected 'bundled'")
    try:
        loader = BUNDLED_LOADERS[symbol]
    except KeyError:
        raise RiskInputError(
            f"unknown bundled symbol {symbol!r}; expected one of {sorted(BUNDLED_LOADERS)}"
        ) from None
    frame = loader()
    prices = frame["Adj Close"].astype("float64")
    prices.index = pd.DatetimeIndex(prices.index).tz_localize("UTC")
    prices.index.name = "ts"
    prices.name = symbol
    return prices


def percent_returns(prices: pd.Series) -> pd.Series:
    """Percent returns ``100 * pct_change`` of a price series, first (undefined) value dropped.

    Raises:
        RiskInputError: if a price is missing, non-positive, or the index is not increasing.
    """
    if prices.size < 2:
        raise RiskInputError(f"need at least 2 prices for a return, got {prices.size}")
    if prices.isna().any():
        first = prices.index[prices.isna().to_numpy()][0]
        raise RiskInputError(f"price series {prices.name!r} has missing values (first at {first})")
    if (prices <= 0).any():
        raise RiskInputError(f"price series {prices.name!r} has non-positive prices")
    if not prices.index.is_monotonic_increasing or prices.index.has_duplicates:
        raise RiskInputError(f"price series {prices.name!r} index must be strictly increasing")
    return (100.0 * prices.pct_change()).iloc[1:]


def load_returns(source: str, symbol: str) -> pd.Series:
    """Percent returns of ``symbol`` from ``source`` (see :func:`load_prices`)."""
    return percent_returns(load_prices(source, symbol))


def returns_from_bars(bars: pd.DataFrame, how: str = "inner") -> pd.DataFrame:
    """Wide percent-return frame (index ``ts``, one column per symbol) from a canonical bar frame.

    Args:
        bars: Canonical bars (``rrr_live.domain.bars``) of one interval.
        how: ``"inner"`` keeps dates where every symbol traded; ``"outer"`` keeps all dates
            (returns are then NaN where a symbol is missing).

    Raises:
        RiskInputError: if the frame is empty or mixes intervals.
    """
    if bars.empty:
        raise RiskInputError("bar frame is empty; nothing to compute returns from")
    intervals = bars["interval"].unique()
    if len(intervals) != 1:
        raise RiskInputError(f"bar frame mixes intervals {sorted(intervals)}; select one")
    prices = bars.pivot_table(index="ts", columns="symbol", values="adj_close", aggfunc="last")
    prices = prices.sort_index()
    cols = {}
    for sym in prices.columns:
        cols[str(sym)] = percent_returns(prices[sym].dropna().rename(str(sym)))
    wide = pd.concat(cols, axis=1, join="outer" if how == "outer" else "inner").sort_index()
    wide.columns.name = "symbol"
    return wide
