"""Bars from any source into PostgreSQL by write-audit-publish, one yearly partition at a time.

``market_bars_staging`` (write + audit) stages each partition exactly as the source returned it
and runs the blocking checks on that frame; ``market_bars`` (publish) copies the partitions
that passed into the table every reader uses.

Why two assets, not one asset that publishes after its own checks: a check belongs to the data
it judged. A failed check is recorded on ``market_bars_staging``, whose materialization is true
(the rows are in staging, quarantined, with their report), while ``market_bars`` keeps its last
good materialization, which is what readers still see. Dagster's blocking check then stops the
run before ``market_bars`` and everything downstream, so nothing downstream runs, no
``market_bars`` materialization is recorded and ``retrain_on_new_bars`` (an asset sensor on
``market_bars``) does not fire. A single asset would either record a materialization for data
it did not publish, or fail with the check results attached to a table that still holds the old
good rows. Publishing also refuses a batch whose recorded audit did not pass, so running
``market_bars`` on its own can never publish a quarantined partition.
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from rrr_pipelines.defs.live.policies import (
    DAILY_FRESHNESS,
    REST_RETRY,
    retry_only_remote_errors,
)
from rrr_pipelines.defs.market_data.checks import (
    GX_CHECK,
    known_calendars,
    staging_check_results,
    staging_check_specs,
)
from rrr_pipelines.defs.market_data.config import MarketBarsConfig
from rrr_pipelines.defs.market_data.partitions import yearly_partitions
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.charts import price_chart_markdown
from rrr_pipelines.lib.quality.audit import PartitionAudit, expected_calendars, stage_and_audit
from rrr_pipelines.lib.quality.suite import SOURCE_CALENDARS
from rrr_pipelines.lib.sources.base import BarSource
from rrr_pipelines.lib.sources.catalog import make_source

STAGING = "market_bars_staging"


def lineage_id(context: dg.AssetExecutionContext) -> str:
    """The run id batches are recorded under: the root run, so a re-execution finds them.

    Args:
        context: Asset execution context.
    """
    return context.run.root_run_id or context.run.run_id


def _calendars(
    source: BarSource, config: MarketBarsConfig, known: dict[str, str]
) -> dict[str, str]:
    """Expected symbol -> calendar.

    The symbols are the configured ones, else the universe on record (``instruments`` table)
    plus what the source declares: a symbol the source silently stopped returning is still
    expected. Calendars: the instruments table, else the source, else the source's default.
    """
    declared = {i.symbol: i.calendar for i in source.instruments()}
    symbols = config.symbols or sorted(set(declared) | set(known))
    default = config.calendar or SOURCE_CALENDARS.get(source.name, "24/7")
    return expected_calendars(symbols, {**declared, **known}, default)


@dg.asset(
    name=STAGING,
    partitions_def=yearly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="market_data",
    kinds={"postgres", "pandas"},
    check_specs=staging_check_specs(STAGING),
    retry_policy=REST_RETRY,  # the source may be a REST API (rate limits, outages)
    description="Write + audit: each partition as the source returned it, in PostgreSQL table "
    "market_bars_staging (batch per partition and run, status passed/quarantined with its "
    "report in bar_batches). Blocking checks run on that frame; readers never see it.",
)
def market_bars_staging(
    context: dg.AssetExecutionContext, config: MarketBarsConfig, database: DatabaseResource
) -> dg.MaterializeResult:
    """Fetch each partition's servable window, stage it, audit it and report the checks."""
    from rrr_pipelines.lib.quality.gx_suite import run_gx_suite_split  # GX import ~3 s

    with retry_only_remote_errors():
        source = make_source(config.source, **config.source_params())
        calendars = _calendars(source, config, known_calendars(database, source.name))
        windows = [
            (key, config.window(w.start, w.end))
            for key in context.partition_keys
            for w in [yearly_partitions.time_window_for_partition_key(key)]
        ]
        audits: list[PartitionAudit] = []
        for audit in stage_and_audit(
            database.url,
            source,
            partitions=windows,
            calendars=calendars,
            run_id=lineage_id(context),
            now=datetime.now(UTC),
            batch_gates=[(GX_CHECK, run_gx_suite_split)],
        ):
            failed = ", ".join(audit.failed_checks)
            verdict = "passed" if audit.passed else f"QUARANTINED ({failed})"
            context.log.info(
                f"{source.name} {audit.partition_key}: staged {audit.rows} rows as batch "
                f"{audit.batch_id} ({len(audits) + 1}/{len(windows)}); {verdict}"
            )
            audits.append(audit)
    quarantined = [a.partition_key for a in audits if not a.passed]
    extra = {"source": source.name, "interval": source.interval}
    return dg.MaterializeResult(
        metadata={
            **extra,
            "keeps_updating": bool(source.keeps_updating),
            "synthetic": source.synthetic,
            "rows": sum(a.rows for a in audits),
            "symbols_expected": dg.MetadataValue.json(sorted(calendars)),
            "batches": dg.MetadataValue.json({a.partition_key: a.batch_id for a in audits}),
            "quarantined_partitions": dg.MetadataValue.json(quarantined),
        },
        check_results=staging_check_results(audits, STAGING, extra),
    )


@dg.asset(
    partitions_def=yearly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[market_bars_staging],
    group_name="market_data",
    freshness_policy=DAILY_FRESHNESS,
    kinds={"postgres"},
    description="Publish: OHLCV bars in PostgreSQL table market_bars (natural key source, "
    "symbol, interval, ts), the table every reader uses. Each partition that passed its "
    "audit replaces its published rows atomically; re-publishing unchanged data changes nothing.",
)
def market_bars(
    context: dg.AssetExecutionContext, database: DatabaseResource
) -> dg.MaterializeResult:
    """Publish the partitions this run staged and audited (only those that passed)."""
    keys = context.partition_keys
    latest = {b.partition_key: b for b in database.staged_batches(lineage_id(context), keys)}
    missing = [k for k in keys if k not in latest]
    if missing:
        raise dg.Failure(
            f"nothing staged by this run for partition(s) {missing}: materialize "
            f"{STAGING} and market_bars together"
        )
    refused = [f"{k} ({', '.join(b.failed_checks) or b.status})" for k, b in latest.items()
               if b.status not in ("passed", "published")]  # fmt: skip
    if refused:
        raise dg.Failure(f"quarantined partition(s) not published: {'; '.join(refused)}")
    stats = [database.publish(latest[k].batch_id) for k in keys]
    for s in stats:
        context.log.info(
            f"published {s.partition_key}: {s.rows} rows, {s.rows_written} written, "
            f"{s.rows_deleted} deleted"
        )
    first = latest[keys[0]]
    source_info = first.report.get("source", {})
    window = context.partition_time_window
    bars = database.load_bars(
        source=first.source, interval=first.interval, start=window.start, end=window.end
    )
    metadata: dict[str, Any] = {
        "source": first.source,
        "interval": first.interval,
        "keeps_updating": bool(source_info.get("keeps_updating", False)),
        "synthetic": bool(source_info.get("synthetic", False)),
        "partitions": len(stats),
        "rows": sum(s.rows for s in stats),
        "rows_written": sum(s.rows_written for s in stats),
        "rows_deleted": sum(s.rows_deleted for s in stats),
        "batches": dg.MetadataValue.json({s.partition_key: s.batch_id for s in stats}),
        "symbols": int(bars["symbol"].nunique()) if len(bars) else 0,
        "first_ts": str(bars["ts"].min()) if len(bars) else "",
        "last_ts": str(bars["ts"].max()) if len(bars) else "",
    }
    if len(bars):
        metadata["chart"] = dg.MetadataValue.md(price_chart_markdown(bars))
    return dg.MaterializeResult(metadata=metadata)
