"""``market_bars``: bars from any source into PostgreSQL, one yearly partition at a time."""

from typing import Any

import dagster as dg
from pydantic import Field

from rrr_pipelines.defs.market_data.partitions import yearly_partitions
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.charts import price_chart_markdown
from rrr_pipelines.lib.sources.catalog import make_source


class MarketBarsConfig(dg.Config):
    """Which source feeds ``market_bars`` (bundled real data by default)."""

    source: str = Field(
        default="bundled", description="bundled | files | coinbase | binance | synthetic"
    )
    interval: str = Field(default="1d", description="bar interval of this asset's partitions")
    symbols: list[str] = Field(default_factory=list, description="symbols (empty = source default)")
    path: str = Field(default="", description="files source: directory of CSV/Parquet files")
    n_symbols: int = Field(default=0, description="synthetic source: universe size")
    seed: int = Field(default=0, description="synthetic source: random seed")
    base_url: str = Field(default="", description="exchange sources: REST base URL override")

    def source_params(self) -> dict[str, Any]:
        """Return only the parameters that were set, as keyword arguments for the source."""
        params = {
            "interval": self.interval,
            "symbols": self.symbols or None,
            "path": self.path or None,
            "n_symbols": self.n_symbols or None,
            "seed": self.seed or None,
            "base_url": self.base_url or None,
        }
        return {k: v for k, v in params.items() if v is not None}


@dg.asset(
    partitions_def=yearly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="market_data",
    kinds={"postgres", "pandas"},
    description="Daily OHLCV bars in PostgreSQL table market_bars (natural key source, symbol, "
    "interval, ts). Re-materializing a partition is idempotent.",
)
def market_bars(
    context: dg.AssetExecutionContext, config: MarketBarsConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """Fetch the partition range from the configured source and load it idempotently."""
    source = make_source(config.source, **config.source_params())
    window = context.partition_time_window
    context.log.info(
        f"fetching {source.name} bars {window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d}"
    )
    bars = source.fetch(window.start, window.end)

    def progress(done: int, total: int) -> None:
        context.log.info(f"loaded {done}/{total} rows")

    stats = database.write_bars(bars, progress) if len(bars) else None
    if stats is None:
        context.log.warning("source returned no bars for this range")
    metadata: dict[str, Any] = {
        "source": source.name,
        "interval": config.interval,
        "keeps_updating": bool(source.keeps_updating),
        "synthetic": source.synthetic,
        "rows": len(bars),
        "rows_inserted": stats.rows_inserted if stats else 0,
        "symbols": int(bars["symbol"].nunique()) if len(bars) else 0,
        "first_ts": str(bars["ts"].min()) if len(bars) else "",
        "last_ts": str(bars["ts"].max()) if len(bars) else "",
    }
    if len(bars):
        metadata["chart"] = dg.MetadataValue.md(price_chart_markdown(bars))
    return dg.MaterializeResult(metadata=metadata)
