"""Shared resources: the ``rrr`` database and the Parquet IO manager."""

from collections.abc import Sequence
from datetime import datetime

import dagster as dg
import pandas as pd

from rrr_pipelines.lib.bars_store import load_bars
from rrr_pipelines.lib.bars_wap import Batch, PublishStats, batches, publish_batch


class DatabaseResource(dg.ConfigurableResource):
    """The ``rrr`` database (market data, instruments, journal).

    Readers see published bars only (``load_bars`` reads ``market_bars``); ingestion writes
    through staging (``rrr_pipelines.lib.quality.audit.stage_and_audit``) and ``publish``.
    """

    url: str

    def load_bars(
        self,
        *,
        source: str,
        interval: str,
        symbols: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Read canonical bars with ``start <= ts < end``."""
        return load_bars(
            self.url, source=source, interval=interval, symbols=symbols, start=start, end=end
        )

    def staged_batches(self, run_id: str, partition_keys: Sequence[str]) -> list[Batch]:
        """Return the batches a (root) run staged for ``partition_keys``, oldest first."""
        return batches(self.url, run_id=run_id, partition_keys=partition_keys)

    def publish(self, batch_id: int) -> PublishStats:
        """Atomically replace the batch's partition in ``market_bars`` (passed batches only)."""
        return publish_batch(self.url, batch_id)


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrame outputs as Parquet under ``root`` (never pickle)."""

    root: str

    def _path(self, context: dg.OutputContext | dg.InputContext):
        from pathlib import Path

        parts = list(context.asset_key.path)
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            parts.append(keys[0] if len(keys) == 1 else f"{keys[0]}__{keys[-1]}")
        return Path(self.root).joinpath(*parts).with_suffix(".parquet")

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | None) -> None:
        """Write ``obj`` as Parquet; ``None`` (data lives elsewhere) writes nothing."""
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"ParquetIOManager stores DataFrames only, got {type(obj).__name__} "
                f"for {context.asset_key.to_user_string()}"
            )
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        obj.to_parquet(path)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "rows": len(obj)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """Read the upstream Parquet file."""
        return pd.read_parquet(self._path(context))
