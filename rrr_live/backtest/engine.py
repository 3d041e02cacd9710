"""Event-driven bar backtest on a simulated clock.

Time moves from one decision batch to the next: batch ``k`` is every bar that closes at the same
time ``t`` (symbols sorted). At each ``t``, in this order:

1. **Fills.** Orders decided earlier fill on this bar if it opened at or after their decision
   time and closes after their arrival (decision + latency). The synthesized book: a market
   order fills at this bar's **open** plus (buys) or minus (sells) the modelled half-spread and
   square-root impact (ADV from bars up to the decision), rounded to the tick *against* us, and
   pays the taker fee. So a decision made at the close ``t`` of bar ``i`` fills at the open of
   the symbol's next bar, whose open time is ``>= t``: never at a price from before the
   decision (no look-ahead). With a latency longer than a bar the order waits for the first bar
   still open at its arrival and fills at that bar's open.
2. **Marks.** The batch symbols are marked at their close; equity, exposures and the
   high-water mark are updated; the risk monitor moves ACTIVE/REDUCING/HALTED.
3. **Decision.** Unless HALTED: scores for the batch (only data up to ``t``), target weights,
   order sizes, pre-trade risk checks; approved orders wait for step 1 of a later batch. A new
   decision sizes against position plus unfilled orders; if it wants a change, the symbol's
   unfilled order is replaced by one for the whole difference to the position (cancel/replace),
   otherwise it is kept. Entering HALTED cancels every unfilled order.

**Ticks.** When ``run_backtest`` is also given a tick stream (book updates and public trades
per symbol, see :mod:`rrr_live.backtest.ticks`), step 1 changes and nothing else does: orders
decided at bar closes go to one :class:`~rrr_live.execution.matching.MatchingEngine` per
symbol, fed by those ticks in event time, and fill from the book there (price-time priority,
queue position, partial fills, maker/taker fees); the tick module's docstring has the exact
convention. Bars still drive marks, risk and decisions.

**One engine.** Every loop is :class:`~rrr_live.backtest.base.BacktestLoop`: the same driver
and the same :class:`~rrr_live.strategy.decision.DecisionStep` (marks, risk state, sizing,
cancel/replace, pre-trade risk, the halt policy) the live runner calls; a bars-only run plugs in
the :class:`~rrr_live.backtest.vectorized.BarVenue`, a tick run the
:class:`~rrr_live.backtest.tick_loop.TickVenue` (the venue simulation of the paper venue).

**Halts.** Entering HALTED cancels every unfilled order; under the default ``flatten`` halt
policy (``RiskLimits.on_halt``) the same decision sends reduce-only market orders closing every
position, which fill like any order (bars: at each symbol's next open); then nothing is sent
until the end of the run. ``"freeze"`` keeps the positions.
"""

from __future__ import annotations

import pandas as pd

from rrr_live.backtest.config import BacktestConfig
from rrr_live.backtest.data import panel_from_bars
from rrr_live.backtest.result import BacktestResult
from rrr_live.backtest.tick_loop import TickBacktest
from rrr_live.backtest.vectorized import BarBacktest
from rrr_live.strategy.history import BarPanel
from rrr_live.strategy.signals import SignalProvider

__all__ = ["BarBacktest", "TickBacktest", "make_loop", "run_backtest"]


def make_loop(panel: BarPanel, signal: SignalProvider, config: BacktestConfig) -> BarBacktest:
    """Return the bars-only backtest of ``panel`` (not yet run)."""
    return BarBacktest(panel, signal, config)


def run_backtest(
    bars: pd.DataFrame,
    signal: SignalProvider,
    config: BacktestConfig | None = None,
    ticks: pd.DataFrame | None = None,
) -> BacktestResult:
    """Backtest ``signal`` on canonical ``bars`` (one interval) and return the result.

    Args:
        bars: canonical bar frame; decisions happen at bar closes.
        signal: the score provider.
        config: costs, limits, sizing (default :class:`BacktestConfig`).
        ticks: optional book updates and trades (:mod:`rrr_live.backtest.ticks`); when given,
            orders fill from tick-fed matching engines instead of at the next bar's open.

    Raises:
        BacktestInputError: if the bars or ticks are unusable.
    """
    panel = panel_from_bars(bars)
    cfg = config or BacktestConfig()
    if ticks is not None:
        return TickBacktest(panel, signal, cfg, ticks).run()
    return make_loop(panel, signal, cfg).run()
