"""The runner's state on its Prometheus metrics: what the alert rules and the dashboard watch.

Fed by the assembled runner's observer (:class:`~rrr_live.service.assemble.Observer`): every
decision batch (drawdown against its limit, equity, orders, risk denials, the time of the
batch) and every model lifecycle event (an alias pointing at a version this runner refused).
The trading state is read when Prometheus scrapes (a callback gauge), so a halt through the
control API shows at once, between batches too; reading an enum attribute from the metrics
thread is safe, while the drawdown (array arithmetic) is computed on the event loop.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

from rrr_live.inference.lifecycle import LifecycleEvent
from rrr_live.metrics import Metrics
from rrr_live.models.verdict import CHAMPION, SHADOW
from rrr_live.risk.limits import RiskEngine
from rrr_live.risk.state import TradingState
from rrr_live.service.trader import BatchReport


class RunnerGauges:
    """Keeps the runner-state metrics of :class:`~rrr_live.metrics.Metrics` current.

    Args:
        metrics: The runner's metrics.
        wall_ns: Wall clock (epoch nanoseconds) for the last-batch timestamp.
    """

    def __init__(self, metrics: Metrics, wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.m = metrics
        self.wall_ns = wall_ns
        self.risk: RiskEngine | None = None
        for alias in (CHAMPION, SHADOW):
            metrics.model_refused.labels(alias).set(0)

    def watch_risk(self, risk: RiskEngine) -> None:
        """Expose ``risk``'s trading state (read at scrape time) and its drawdown limit."""
        self.risk = risk
        self.m.drawdown_limit.set(risk.limits.max_drawdown)
        for state in TradingState:
            self.m.trading_state.labels(state.value).set_function(_is_state(risk, state))

    def on_batch(self, r: BatchReport) -> None:
        """Count a decision batch, its orders and denials; update drawdown and equity."""
        m = self.m
        m.batches.inc()
        m.last_batch.set(self.wall_ns() / 1e9)
        if r.orders:
            m.orders.labels("accepted").inc(len(r.orders))
        if r.rejected:
            m.orders.labels("rejected").inc(len(r.rejected))
        for reason, n in Counter(reason for _symbol, reason in r.denied).items():
            m.risk_denials.labels(reason).inc(n)
        d = r.decision
        if d is not None and math.isfinite(d.equity):
            m.equity.set(d.equity)
            if self.risk is not None:
                m.drawdown.set(self.risk.portfolio.drawdown(d.equity))

    def on_event(self, e: LifecycleEvent) -> None:
        """Track refusals: 1 from a refusal until the alias moves again."""
        if e.kind == "alias_seen":
            self.m.model_refused.labels(e.alias).set(0)
        elif e.kind == "refused":
            self.m.model_refused.labels(e.alias).set(1)


def _is_state(risk: RiskEngine, state: TradingState) -> Callable[[], float]:
    return lambda: 1.0 if risk.state is state else 0.0
