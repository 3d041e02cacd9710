"""``live_risk_report``: VaR, ES and stress of the live runners' current positions.

Positions are the net quantities of each runner's journaled venue fills, valued at the latest
journaled close; the figures are those of ``var_report``/``stress_report`` (the same
``rrr_pipelines.lib.risk.report.portfolio_risk``) over the ``market_bars`` history of those
symbols (source and interval of the ``live_feedback`` resource).
"""

from typing import Any

import dagster as dg
from pydantic import Field

from rrr_pipelines.defs.live.resources import LiveFeedbackResource
from rrr_pipelines.defs.resources import DatabaseResource
from rrr_pipelines.lib.risk import render

GROUP = "live"


class LiveRiskConfig(dg.Config):
    """Risk report settings of the live book."""

    window: int = Field(default=250, description="return window of the VaR methods (bars)")
    n_paths: int = Field(default=100_000, description="Monte Carlo paths")
    seed: int = Field(default=0, description="Monte Carlo seed")


def live_book(url: str, runners: list[str]) -> dict[str, float]:
    """Market value per symbol of every runner's net filled position, summed over runners."""
    from rrr_pipelines.lib.live_feedback.journal import read_batches, read_fills
    from rrr_pipelines.lib.live_feedback.performance import (
        last_closes,
        net_positions,
        position_values,
    )

    book: dict[str, float] = {}
    for runner in runners:
        held = net_positions(read_fills(url, runner))
        if not held:
            continue
        values = position_values(held, last_closes(read_batches(url, runner, last=500)))
        for symbol, value in values.items():
            book[symbol] = book.get(symbol, 0.0) + value
    return book


@dg.asset(group_name=GROUP, kinds={"postgres"}, deps=["market_bars"])
def live_risk_report(
    config: LiveRiskConfig, database: DatabaseResource, live_feedback: LiveFeedbackResource
) -> dg.MaterializeResult[Any]:
    """VaR/ES (95/99 %, 1 and 10 bars) and stress of the live book (see the module doc)."""
    from rrr_live.risk.ewma import RiskInputError
    from rrr_pipelines.lib.risk.data import returns_from_bars
    from rrr_pipelines.lib.risk.report import portfolio_risk

    runners = live_feedback.runner_list(database)
    try:
        book = live_book(database.url, runners)
    except KeyError as exc:
        raise dg.Failure(str(exc)) from exc
    if not book:
        return dg.MaterializeResult(metadata={"runners": dg.MetadataValue.json(runners),
                                              "positions": dg.MetadataValue.json({}),
                                              "flat": True})  # fmt: skip
    bars = database.load_bars(source=live_feedback.source, interval=live_feedback.interval,
                              symbols=sorted(book))  # fmt: skip
    try:
        risk = portfolio_risk(returns_from_bars(bars), book, window=config.window,
                              n_paths=config.n_paths, seed=config.seed)  # fmt: skip
    except RiskInputError as exc:
        raise dg.Failure(f"live book {sorted(book)}: {exc}") from exc
    return dg.MaterializeResult(
        metadata={
            "runners": dg.MetadataValue.json(runners),
            "positions": dg.MetadataValue.json(book),
            "flat": False,
            "gross": sum(abs(v) for v in book.values()),
            "var_99_1d": risk.var_99_1d,
            "es_99_1d": risk.es_99_1d,
            "worst_stress_loss": risk.worst_stress_loss,
            "worst_stress_scenario": str(risk.stress.worst_scenario),
            "var_table": dg.MetadataValue.md(render.table_markdown(risk.var, ",.0f")),
            "stress_table": dg.MetadataValue.md(render.table_markdown(risk.stress.table, ",.4g")),
        }
    )
