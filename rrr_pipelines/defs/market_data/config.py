"""Run configuration of the bars pipeline: which source feeds ``market_bars_staging``."""

from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field


class MarketBarsConfig(dg.Config):
    """Which source feeds the bars pipeline (bundled real data by default)."""

    source: str = Field(
        default="bundled", description="bundled | files | coinbase | binance | synthetic"
    )
    interval: str = Field(default="1d", description="bar interval of this asset's partitions")
    symbols: list[str] = Field(
        default_factory=list,
        description="symbols, also the symbols every partition must hold (empty = the "
        "source's instruments)",
    )
    path: str = Field(default="", description="files source: directory of CSV/Parquet files")
    calendar: str = Field(
        default="", description="files/synthetic sources: trading calendar ('24/7', 'XNYS', …)"
    )
    n_symbols: int = Field(default=0, description="synthetic source: universe size")
    seed: int = Field(default=0, description="synthetic source: random seed")
    base_url: str = Field(default="", description="exchange sources: REST base URL override")
    window_start: str = Field(
        default="",
        description="only bars at or after this UTC time (ISO) in each partition; empty = the "
        "partition's start (an intraday backfill of a few days, not a whole year of 1m bars)",
    )
    window_end: str = Field(
        default="", description="only bars before this UTC time (ISO); empty = the partition's end"
    )

    def window(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """Clip a partition's ``[start, end)`` to ``[window_start, window_end)`` when set.

        Raises:
            ValueError: for a bound that is not an ISO timestamp (Dagster shows it on the run).
        """
        lo = max(start, _utc(self.window_start)) if self.window_start else start
        hi = min(end, _utc(self.window_end)) if self.window_end else end
        return lo, max(lo, hi)

    def source_params(self) -> dict[str, Any]:
        """Return only the parameters that were set, as keyword arguments for the source."""
        params = {
            "interval": self.interval,
            "symbols": self.symbols or None,
            "path": self.path or None,
            "calendar": self.calendar or None,
            "n_symbols": self.n_symbols or None,
            "seed": self.seed or None,
            "base_url": self.base_url or None,
        }
        return {k: v for k, v in params.items() if v is not None}


def _utc(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
