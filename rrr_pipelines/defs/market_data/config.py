"""Run configuration of the bars pipeline: which source feeds ``market_bars_staging``."""

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
