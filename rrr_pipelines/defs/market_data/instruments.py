"""``instruments``: the universe and its metadata, upserted into PostgreSQL ``instruments``."""

import dagster as dg
import pandas as pd

from rrr_pipelines.defs.market_data.config import MarketBarsConfig
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.pg import connect
from rrr_pipelines.lib.sources.base import SourceInstrument
from rrr_pipelines.lib.sources.catalog import make_source

_COLUMNS = ("source", "symbol", "asset_class", "calendar", "currency", "description", "synthetic")


def write_instruments(url: str, instruments: list[SourceInstrument], synthetic: bool) -> int:
    """Upsert instruments on (source, symbol); return the number of rows written.

    Args:
        url: ``rrr`` database URL.
        instruments: Instruments of one source.
        synthetic: Whether the source is synthetic (stored per row).
    """
    from psycopg2.extras import execute_values

    rows = [
        (i.source, i.symbol, i.asset_class, i.calendar, i.currency, i.description, synthetic)
        for i in instruments
    ]
    if not rows:
        return 0
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            execute_values(
                cur,
                f"INSERT INTO instruments ({', '.join(_COLUMNS)}) VALUES %s "
                "ON CONFLICT (source, symbol) DO UPDATE SET asset_class = EXCLUDED.asset_class, "
                "calendar = EXCLUDED.calendar, currency = EXCLUDED.currency, "
                "description = EXCLUDED.description, synthetic = EXCLUDED.synthetic, "
                "updated_at = now()",
                rows,
            )
    finally:
        conn.close()
    return len(rows)


def load_instruments(url: str, source: str | None = None) -> pd.DataFrame:
    """Read the instruments table (optionally one source), sorted by (source, symbol).

    Args:
        url: ``rrr`` database URL.
        source: Only this source's instruments, if given.
    """
    query = f"SELECT {', '.join(_COLUMNS)} FROM instruments"
    params: tuple[str, ...] = ()
    if source is not None:
        query += " WHERE source = %s"
        params = (source,)
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query + " ORDER BY source, symbol", params)
            rows = cur.fetchall()
    finally:
        conn.close()
    return pd.DataFrame(rows, columns=list(_COLUMNS))


def calendars_for(url: str, source: str) -> dict[str, str]:
    """Return symbol -> trading calendar for ``source`` from the instruments table.

    Args:
        url: ``rrr`` database URL.
        source: Source name.
    """
    table = load_instruments(url, source)
    return dict(zip(table["symbol"], table["calendar"], strict=True))


@dg.asset(
    group_name="market_data",
    kinds={"postgres"},
    description="Universe and instrument metadata (asset class, trading calendar, currency, "
    "synthetic flag) in PostgreSQL table instruments; the quality gates read calendars here.",
)
def instruments(
    context: dg.AssetExecutionContext, config: MarketBarsConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """Ask the configured source for its instruments and upsert them."""
    source = make_source(config.source, **config.source_params())
    found = source.instruments()
    written = write_instruments(database.url, found, source.synthetic)
    context.log.info(f"{written} {source.name} instruments upserted")
    preview = pd.DataFrame([i.__dict__ for i in found[:20]])
    return dg.MaterializeResult(
        metadata={
            "source": source.name,
            "synthetic": source.synthetic,
            "instruments": written,
            "calendars": sorted({i.calendar for i in found}),
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False) if written else ""),
        }
    )
