"""The canonical bar table shared by sources, storage, features, backtests and the live runner.

A bar frame is a pandas DataFrame with exactly ``BAR_COLUMNS``:

* ``source``   – where the bars came from (``bundled``, ``files``, ``coinbase``, ``binance``,
  ``synthetic``); synthetic data is always labelled ``synthetic``.
* ``symbol``   – instrument symbol as the venue spells it.
* ``interval`` – bar length, e.g. ``1d``, ``1m``, ``1s`` (see ``INTERVAL_NS``).
* ``ts``       – bar *open* time, tz-aware UTC; the bar closes at ``ts + interval``.
* ``open``, ``high``, ``low``, ``close``, ``adj_close``, ``volume`` – float64
  (``adj_close`` equals ``close`` where the source has no adjustment).

Natural key: (source, symbol, interval, ts).
"""

from __future__ import annotations

from typing import Final

BAR_COLUMNS: Final[tuple[str, ...]] = (
    "source",
    "symbol",
    "interval",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
)
PRICE_COLUMNS: Final[tuple[str, ...]] = ("open", "high", "low", "close", "adj_close")
BAR_KEY: Final[tuple[str, ...]] = ("source", "symbol", "interval", "ts")

_NS_PER_S: Final[int] = 1_000_000_000
INTERVAL_NS: Final[dict[str, int]] = {
    "1s": _NS_PER_S,
    "5s": 5 * _NS_PER_S,
    "1m": 60 * _NS_PER_S,
    "5m": 300 * _NS_PER_S,
    "15m": 900 * _NS_PER_S,
    "1h": 3600 * _NS_PER_S,
    "1d": 86400 * _NS_PER_S,
}


def interval_ns(interval: str) -> int:
    """Return the length of a bar interval in integer nanoseconds.

    Raises:
        ValueError: if the interval is not one of ``INTERVAL_NS``.
    """
    try:
        return INTERVAL_NS[interval]
    except KeyError as e:
        raise ValueError(
            f"unknown bar interval {interval!r}; expected one of {sorted(INTERVAL_NS)}"
        ) from e
