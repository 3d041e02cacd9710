"""``parity_report``: the live runner's latest session replayed through the tick backtest.

What the runner did (its journaled decisions, orders and fills) against what the tick backtest
does with the market data the runner captured, the same model version and configuration
(:mod:`rrr_live.service.parity`). The materialization carries the records compared and the
divergences per kind, and the first divergent event; the ``no_divergence`` check fails when
anything diverged.
"""

import asyncio
import os
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from rrr_live.errors import RRRError

CONFIG_ENV = "RRR_LIVE_CONFIG"


class ParityReportConfig(dg.Config):
    """Which runner and session to replay."""

    config_path: str = Field(default="", description=f"the runner's TOML file ('': ${CONFIG_ENV})")
    session: str = Field(default="", description="runner session id ('': its latest)")


@dg.asset(
    group_name="live",
    kinds={"python"},
    check_specs=[dg.AssetCheckSpec("no_divergence", asset="parity_report")],
    description="The live runner's captured ticks replayed through the tick backtest with the "
    "same model version and configuration; divergences from what the runner did (decisions, "
    "orders, fills, PnL) per kind, and the first divergent event.",
)
def parity_report(
    context: dg.AssetExecutionContext, config: ParityReportConfig
) -> dg.MaterializeResult:
    """Replay the session and compare; a divergence is a failed ``no_divergence`` check."""
    from rrr_live.service.parity import report_for_config
    from rrr_pipelines.cli.main import one_line

    path = config.config_path or os.environ.get(CONFIG_ENV, "")
    if not path:
        raise dg.Failure(f"no runner configuration: set config_path or ${CONFIG_ENV}")
    try:
        report = asyncio.run(report_for_config(Path(path), config.session))
    except RRRError as e:
        raise dg.Failure(one_line(e)) from e
    (context.log.info if report.ok else context.log.warning)(report.summary())
    first = report.first
    metadata: dict[str, Any] = {
        "summary": report.summary(),
        "notes": dg.MetadataValue.json(list(report.notes)),
        "first_divergence": dg.MetadataValue.json(first.__dict__ if first else {}),
        **{f"divergences_{k}": n for k, n in report.divergences.items()},
        **{f"compared_{k}": n for k, n in report.counts.items()},
    }
    check = dg.AssetCheckResult(
        check_name="no_divergence",
        passed=report.ok,
        metadata={"first_divergence": first.describe() if first else ""},
    )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])
